//! Who may call what: the bearer token on the API and `/metrics`, the actions flag and the
//! cross-site request checks on replay and delete; and the security headers of every answer.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::dashboard::Dashboard;
use crate::error::ApiError;

/// The header a replay or delete carries the per-process token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Checks, in this order: the bearer token (401), then for anything but `GET`/`HEAD`: actions
/// allowed (403), the CSRF token (403), the request's origin (403).
pub(crate) async fn guard(
    State(dashboard): State<Dashboard>,
    request: Request,
    next: Next,
) -> Response {
    let inner = &dashboard.inner;
    let headers = request.headers();
    if let Some(token) = &inner.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is required")
                    .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"domain-events\""),
            );
            return response;
        }
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if !inner.allow_actions {
            return forbidden(
                "the dashboard is read-only: start it with --allow-actions to replay or delete",
            );
        }
        let csrf = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes);
        if !csrf.is_some_and(|csrf| same(csrf, inner.csrf.as_bytes())) {
            return forbidden("missing or wrong x-csrf-token header (read it from api/session)");
        }
        if let Some(problem) = cross_site(headers) {
            tracing::warn!(problem, "dashboard: cross-site request refused");
            return forbidden(problem);
        }
    }
    next.run(request).await
}

fn forbidden(message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, message).into_response()
}

/// Why a request comes from another site, if it does: the browser says so (`Sec-Fetch-Site`),
/// or its `Origin` is not this host.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if text("sec-fetch-site").is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return Some("cross-site request refused (Sec-Fetch-Site)");
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let host = text(header::HOST.as_str()).unwrap_or_default();
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| !host.is_empty() && rest == host);
        if !own {
            return Some("cross-site request refused (Origin is not this host)");
        }
    }
    None
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The security headers of every answer: only the dashboard's own files may run, nothing may
/// frame it, no answer is cached or sniffed.
pub(crate) async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn only_requests_of_this_host_pass() {
        assert_eq!(cross_site(&headers(&[("host", "127.0.0.1:7474")])), None);
        assert_eq!(
            cross_site(&headers(&[
                ("host", "127.0.0.1:7474"),
                ("origin", "http://127.0.0.1:7474"),
                ("sec-fetch-site", "same-origin"),
            ])),
            None
        );
        for bad in [
            headers(&[
                ("host", "127.0.0.1:7474"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[
                ("host", "127.0.0.1:7474"),
                ("origin", "http://127.0.0.1:7474.evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:7474"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "127.0.0.1:7474"), ("sec-fetch-site", "same-site")]),
            headers(&[("origin", "http://127.0.0.1:7474")]),
        ] {
            assert!(cross_site(&bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"a"));
    }
}
