//! Browser-facing protections at the HTTP edge: security headers on every
//! response, CORS for the configured origins, the `Origin` check of `/ws`,
//! and the loopback check of demo-token minting.

use std::time::Duration;

use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, Method};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Origin;

/// The web app loads its script, styles and the client from Larder itself,
/// and talks to Larder only (`'self'` covers `ws:`/`wss:` to the same host
/// in CSP Level 3). No inline code, no plug-ins, no framing. API responses
/// are JSON; the policy costs them nothing and covers error pages too.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

type SetHeader = SetResponseHeaderLayer<HeaderValue>;

/// The security headers, each set unless a handler set its own.
pub type SecurityHeaders =
    Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Identity>>>>;

/// `Content-Security-Policy`, `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY` (older browsers' `frame-ancestors 'none'`) and
/// `Referrer-Policy: no-referrer` (URLs may carry `?access_token=`).
pub fn security_headers() -> ServiceBuilder<SecurityHeaders> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    ServiceBuilder::new()
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
}

/// CORS for the configured origins only. Preflights are answered for any
/// origin (so none gets a 405), but only a listed origin is told it may
/// send the request. With no origins listed, no other site may.
pub fn cors(origins: &[Origin]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.as_str()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("command-id"),
        ])
        .expose_headers([
            header::ETAG,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Whether a WebSocket upgrade's `Origin` may connect: none (a program, not
/// a browser page), the page's own host (the web app Larder serves), or a
/// configured origin. Browsers always send `Origin` on a WebSocket upgrade,
/// so another site's page cannot ride on a user's access.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[Origin]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().to_ascii_lowercase();
    if allowed.iter().any(|a| a.as_str() == origin) {
        return true;
    }
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// Whether a request was addressed to a loopback host (`localhost`,
/// `*.localhost`, `127.0.0.0/8`, `[::1]`), judged by its `Host` header. A
/// page on another site that resolves its own name to 127.0.0.1 (DNS
/// rebinding) still sends its own name as `Host`.
pub fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host.as_str()
            }
        })
    };
    let name = name.trim_end_matches('.');
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn loopback_hosts_are_recognised_and_others_are_not() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(is_loopback_host(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "192.168.1.10:8080",
            "[::2]:80",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!is_loopback_host(&headers(&[("host", host)])), "{host}");
        }
        assert!(!is_loopback_host(&HeaderMap::new()), "no Host header");
    }

    #[test]
    fn websocket_origins_are_same_host_or_listed() {
        let listed: Vec<Origin> = vec!["https://app.example".parse().unwrap()];
        let check =
            |pairs: &[(&'static str, &str)]| origin_allowed(&headers(pairs), listed.as_slice());
        assert!(check(&[("host", "127.0.0.1:8080")]), "no Origin: a program");
        assert!(check(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(check(&[
            ("host", "larder.example"),
            ("origin", "https://app.example")
        ]));
        assert!(!check(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999")
        ]));
        assert!(!check(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example")
        ]));
        assert!(!check(&[("host", "127.0.0.1:8080"), ("origin", "null")]));
    }
}
