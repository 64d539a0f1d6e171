//! The one place errors become HTTP responses.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use larder_app::AppError;
use larder_domain::DomainError;
use larder_projections::ProjectionError;
use larder_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: clients branch on it.
    #[schema(example = "insufficient_stock")]
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
    /// Structured context, e.g. the current version on a conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// A failure of ours: logged in full here, answered without internals.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, source = ?error.source(), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn unavailable(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, source = ?error.source(), "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; retry later",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            details: self.details,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let status = match &error {
            DomainError::StoreNotFound
            | DomainError::ItemNotFound { .. }
            | DomainError::ChangeNotFound { .. }
            | DomainError::MenuItemNotFound { .. }
            | DomainError::OrderNotFound { .. }
            | DomainError::LineNotFound { .. }
            | DomainError::NotificationNotFound { .. } => StatusCode::NOT_FOUND,
            DomainError::StoreAlreadyExists { .. }
            | DomainError::SkuAlreadyExists { .. }
            | DomainError::MenuItemAlreadyExists { .. }
            | DomainError::OrderAlreadyExists { .. }
            | DomainError::LineAlreadyExists { .. }
            | DomainError::AlreadyUndone { .. }
            | DomainError::NotUndone { .. }
            | DomainError::UndoConflict { .. }
            | DomainError::InboxMismatch => StatusCode::CONFLICT,
            DomainError::UndoNotAllowed => StatusCode::FORBIDDEN,
            e if e.field().is_some() => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let details = match &error {
            DomainError::InsufficientStock {
                available,
                requested,
            } => Some(serde_json::json!({ "available": available, "requested": requested })),
            DomainError::StoreAlreadyExists { store_id } => {
                Some(serde_json::json!({ "store_id": store_id }))
            }
            DomainError::AlreadyUndone {
                event_id,
                undone_by,
            } => Some(serde_json::json!({ "event_id": event_id, "undone_by": undone_by })),
            DomainError::UndoConflict { event_id, later } => {
                Some(serde_json::json!({ "event_id": event_id, "later": later }))
            }
            e => e.field().map(|field| serde_json::json!({ "field": field })),
        };
        Self {
            status,
            code: error.code(),
            message: error.to_string(),
            details,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Unavailable(_) | StoreError::Closed => Self::unavailable(&error),
            StoreError::Invalid(message) => Self::bad_request("invalid_request", message.clone()),
            StoreError::EventTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                error.to_string(),
            ),
            StoreError::WrongExpectedVersion { actual, .. } => {
                Self::new(StatusCode::CONFLICT, "version_conflict", error.to_string())
                    .with_details(serde_json::json!({ "current_version": actual }))
            }
            StoreError::DuplicateEventId { .. } => {
                Self::new(StatusCode::CONFLICT, "duplicate_event", error.to_string())
            }
            _ => Self::internal(&error),
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(error: ProjectionError) -> Self {
        match &error {
            ProjectionError::Unavailable(_) => Self::unavailable(&error),
            ProjectionError::Store(store) => store.clone().into(),
            _ => Self::internal(&error),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Rejected(error) => error.into(),
            AppError::NotFound(what) => Self::not_found(what),
            AppError::Conflict {
                current_version, ..
            } => Self::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!("the resource changed: it is at version {current_version}"),
            )
            .with_details(serde_json::json!({ "current_version": current_version })),
            AppError::TransferIdReused(id) => Self::new(
                StatusCode::CONFLICT,
                "transfer_id_reused",
                AppError::TransferIdReused(id).to_string(),
            ),
            AppError::IngredientNotInStore(item_id) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ingredient_not_in_store",
                AppError::IngredientNotInStore(item_id).to_string(),
            )
            .with_details(serde_json::json!({ "field": "recipe", "item_id": item_id })),
            AppError::IngredientRemoved(item_id) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ingredient_removed",
                AppError::IngredientRemoved(item_id).to_string(),
            )
            .with_details(serde_json::json!({ "field": "recipe", "item_id": item_id })),
            AppError::IdempotencyKeyReused(key) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                AppError::IdempotencyKeyReused(key).to_string(),
            ),
            AppError::Unavailable(error) => Self::unavailable(&error),
            AppError::Store(error) => error.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match &rejection {
            JsonRejection::JsonSyntaxError(_) => {
                Self::bad_request("invalid_json", rejection.body_text())
            }
            JsonRejection::JsonDataError(_) => {
                Self::bad_request("invalid_body", rejection.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a JSON body with Content-Type: application/json",
            ),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server accepts",
            ),
            _ => Self::bad_request("invalid_body", rejection.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid_parameter", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_parameter", rejection.body_text())
    }
}
