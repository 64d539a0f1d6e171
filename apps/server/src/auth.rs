//! Bearer-token authentication and the permissions it grants.

use std::collections::HashSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use larder_domain::TenantId;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::config::{KeyAlgorithm, Settings};
use crate::error::ApiError;
use crate::state::AppState;

/// What a user may do. Each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything visible to them.
    Viewer,
    /// Also adjusts stock, takes orders and runs the kitchen (start, bump,
    /// recall).
    Staff,
    /// Also adds, renames and removes items, sets thresholds, transfers stock, renames stores,
    /// edits menus.
    Manager,
    /// Also creates and closes stores.
    Admin,
}

/// Which stores a token may see: all of its tenant's (`"*"`) or a list of ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StoreAccess {
    /// `"*"`: every store of the tenant.
    #[schema(value_type = String, example = "*")]
    All(AllStores),
    /// These store ids only.
    Only(Vec<String>),
}

/// The `"*"` marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AllStores(#[serde(serialize_with = "star")] ());

fn star<S: serde::Serializer>(_: &(), serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("*")
}

impl StoreAccess {
    pub const ALL: Self = Self::All(AllStores(()));
}

impl<'de> Deserialize<'de> for StoreAccess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::One(s) if s == "*" => Self::ALL,
            Raw::One(s) => Self::Only(vec![s]),
            Raw::Many(list) if list.iter().any(|s| s == "*") => Self::ALL,
            Raw::Many(list) => Self::Only(list),
        })
    }
}

/// The claims Larder reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The tenant whose data the token may touch.
    pub tenant: String,
    /// Visible stores.
    pub stores: StoreAccess,
    /// Roles; the highest one counts.
    pub roles: Vec<Role>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The login session: every tab of one sign-in shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience: one string or an array of them (RFC 7519, section 4.1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// The `aud` claim: a single audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    /// Token expiry, unix seconds.
    pub expires_at: u64,
    pub session: Option<String>,
    pub tenant: TenantId,
    pub role: Role,
    stores: Option<HashSet<String>>,
}

impl Principal {
    /// Whether the caller may see `store_id`. Stores they may not see are
    /// answered 404, as if they did not exist.
    pub fn can_see(&self, store_id: &str) -> bool {
        self.stores
            .as_ref()
            .is_none_or(|stores| stores.contains(store_id))
    }

    /// The stores the token lists (`None`: every store of the tenant).
    pub fn stores(&self) -> Option<&HashSet<String>> {
        self.stores.as_ref()
    }

    /// Whether the token covers every store of the tenant.
    pub fn sees_all_stores(&self) -> bool {
        self.stores.is_none()
    }

    /// Refuses with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role",
                serde_json::to_value(role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )))
        }
    }
}

/// Verifies tokens, and in demo mode mints them.
pub struct Authenticator {
    decoding: DecodingKey,
    validation: Validation,
    /// Present in demo mode only.
    minting: Option<EncodingKey>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("demo", &self.is_demo())
            .finish_non_exhaustive()
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the JWT public key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWT public key is not a valid PEM key: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("cannot generate a demo secret: {0}")]
    Random(String),
}

impl Authenticator {
    pub fn from_settings(settings: &Settings) -> Result<Self, KeyError> {
        let (decoding, algorithm, minting) = if let Some(secret) = &settings.jwt_secret {
            (
                DecodingKey::from_secret(secret.0.as_bytes()),
                Algorithm::HS256,
                None,
            )
        } else if let Some(path) = &settings.jwt_public_key {
            let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            match settings.jwt_algorithm {
                KeyAlgorithm::Rs256 => (DecodingKey::from_rsa_pem(&pem)?, Algorithm::RS256, None),
                KeyAlgorithm::Eddsa => (DecodingKey::from_ed_pem(&pem)?, Algorithm::EdDSA, None),
            }
        } else {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
            (
                DecodingKey::from_secret(&secret),
                Algorithm::HS256,
                Some(EncodingKey::from_secret(&secret)),
            )
        };
        Ok(Self {
            decoding,
            validation: validation(algorithm, settings),
            minting,
        })
    }

    /// Whether the server made up its own secret and mints tokens.
    pub fn is_demo(&self) -> bool {
        self.minting.is_some()
    }

    /// Checks a token and returns who it is for.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "the token has expired")
                }
                ErrorKind::ImmatureSignature => {
                    ApiError::unauthorized("invalid_token", "the token is not valid yet (nbf)")
                }
                ErrorKind::MissingRequiredClaim(claim) => ApiError::unauthorized(
                    "invalid_token",
                    format!("the token has no {claim} claim"),
                ),
                ErrorKind::InvalidIssuer => {
                    ApiError::unauthorized("invalid_token", "the token's issuer is not accepted")
                }
                ErrorKind::InvalidAudience => {
                    ApiError::unauthorized("invalid_token", "the token's audience is not accepted")
                }
                _ => ApiError::unauthorized("invalid_token", "the token is not valid"),
            })?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "the token's subject (sub) is empty",
            ));
        }
        // The tenant must already be in its canonical form: "ACME" or
        // " acme " are not another spelling of acme, they are invalid.
        let tenant = TenantId::parse(&claims.tenant)
            .ok()
            .filter(|tenant| tenant.as_str() == claims.tenant)
            .ok_or_else(|| {
                ApiError::unauthorized("invalid_token", "the token's tenant is not valid")
            })?;
        let role = claims
            .roles
            .iter()
            .copied()
            .max()
            .ok_or_else(|| ApiError::unauthorized("invalid_token", "the token has no role"))?;
        Ok(Principal {
            expires_at: claims.exp,
            session: claims.sid.filter(|s| !s.is_empty() && s.len() <= 200),
            user: claims.sub,
            tenant,
            role,
            stores: match claims.stores {
                StoreAccess::All(_) => None,
                StoreAccess::Only(list) => Some(list.into_iter().collect()),
            },
        })
    }

    /// Signs `claims` (demo mode only).
    pub fn mint(&self, claims: &Claims) -> Option<String> {
        let key = self.minting.as_ref()?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, key).ok()
    }
}

/// How tokens are checked. Exactly one algorithm: a token signed any other
/// way (including `alg: none`) is refused. `exp` and `sub` are always
/// required, `nbf` is honoured when present (RFC 7519, 4.1.5), and a
/// configured issuer or audience makes `iss` or `aud` required too (a token
/// without them is not "for us"). `aud` may be an array: it must contain
/// ours. 5 s of leeway for clock skew on `exp` and `nbf`.
fn validation(algorithm: Algorithm, settings: &Settings) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 5;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    match &settings.jwt_audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &settings.jwt_issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The bearer token of the `Authorization` header, if the header is there.
fn bearer(parts: &Parts) -> Option<Result<&str, ApiError>> {
    let header = parts.headers.get(header::AUTHORIZATION)?;
    Some(
        header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("unauthorized", "send Authorization: Bearer <token>")
            }),
    )
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).unwrap_or_else(|| {
            Err(ApiError::unauthorized(
                "unauthorized",
                "send Authorization: Bearer <token>",
            ))
        })?;
        let principal = state.auth.verify(token)?;
        state.directory.seen(&principal).await;
        Ok(principal)
    }
}

/// The caller of an event-stream request (SSE, long-poll): the
/// `Authorization` header, or else `?access_token=`, because a browser's
/// `EventSource` cannot send headers. Only the real-time transports take a
/// token in the URL (URLs end up in logs and histories); the rest of the API
/// wants the header.
#[derive(Debug, Clone)]
pub struct StreamPrincipal(pub Principal);

impl FromRequestParts<AppState> for StreamPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            let principal = state.auth.verify(token?)?;
            state.directory.seen(&principal).await;
            return Ok(Self(principal));
        }
        let token = query_token(&parts.uri).ok_or_else(|| {
            ApiError::unauthorized(
                "unauthorized",
                "send Authorization: Bearer <token> or ?access_token=<token>",
            )
        })?;
        let principal = state.auth.verify(&token)?;
        state.directory.seen(&principal).await;
        Ok(Self(principal))
    }
}

/// `access_token` from a request's query string (percent-decoded), if
/// present and not empty.
fn query_token(uri: &axum::http::Uri) -> Option<String> {
    #[derive(Deserialize)]
    struct Params {
        access_token: Option<String>,
    }
    axum::extract::Query::<Params>::try_from_uri(uri)
        .ok()
        .and_then(|axum::extract::Query(p)| p.access_token)
        .filter(|token| !token.trim().is_empty())
}

/// Refuses a request that is not in demo mode (the dev endpoints do not exist then).
pub fn require_demo(state: &AppState) -> Result<(), ApiError> {
    if state.auth.is_demo() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        ))
    }
}
