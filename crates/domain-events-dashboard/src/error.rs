//! Why the dashboard could not start or serve, and how a failed API call answers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The dashboard could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis: an invalid URL or configuration. The message never shows the password.
    #[error(transparent)]
    Redis(#[from] domain_events_redis::Error),

    /// The address to listen on could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address as given.
        addr: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },

    /// Serving failed.
    #[error("the dashboard stopped serving")]
    Serve(#[source] std::io::Error),

    /// A setting is unusable, e.g. an empty bearer token.
    #[error("{0}")]
    Config(String),
}

/// A failed API call: its status and a message, answered as `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<domain_events_redis::Error> for ApiError {
    /// Redis failed: 502, with the client's message (it never holds the password).
    fn from(error: domain_events_redis::Error) -> Self {
        tracing::warn!(%error, "dashboard: Redis failed");
        Self::new(StatusCode::BAD_GATEWAY, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}
