//! What a handler and [`Handlers::dispatch`](super::Handlers::dispatch) answer: a handler's
//! failure, a handled event, or why it was not handled.

use std::fmt;

use crate::envelope::DecodeError;
use crate::transport::BoxError;

/// A handler's failure: any error or message, boxed. Retryable by definition (a consumer retries
/// the event); an event that can never be handled is a [`DispatchError::Poison`] instead.
///
/// `HandlerError` implements [`std::error::Error`], so it cannot also convert from every error
/// type with `?` (that blanket `From` would overlap with `From<HandlerError> for HandlerError`).
/// Convert explicitly: `.map_err(HandlerError::from_error)?`, or build one from a message with
/// [`HandlerError::msg`] (`String`, `&str` and boxed errors also convert with `?`/`into()`).
pub struct HandlerError {
    inner: BoxError,
}

impl HandlerError {
    /// A failure described by `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            inner: message.into().into(),
        }
    }

    /// A failure caused by `error`; its message and sources are kept.
    pub fn from_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }

    /// The underlying error.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The underlying error, owned.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        Self::msg(message)
    }
}

impl From<&str> for HandlerError {
    fn from(message: &str) -> Self {
        Self::msg(message)
    }
}

impl From<BoxError> for HandlerError {
    fn from(inner: BoxError) -> Self {
        Self { inner }
    }
}

/// What [`Handlers::dispatch`](super::Handlers::dispatch) did with a readable event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// This many handlers ran, all successfully.
    Handled(usize),
    /// No handler is registered for the event.
    NoHandler,
}

/// Why [`Handlers::dispatch`](super::Handlers::dispatch) did not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The event can never be handled here: its type is unknown (when an event set is known), its
    /// version is not declared, or its payload does not match its schema. Retrying cannot help;
    /// no handler ran.
    #[error("poison event: {0}")]
    Poison(#[source] DecodeError),
    /// A handler failed (or panicked). Retrying may help. Every matching handler ran; this is the
    /// first failure.
    #[error("handler failed: {0}")]
    Failed(#[source] HandlerError),
}

impl DispatchError {
    /// Whether retrying the event may help (a handler failed, the event itself is fine).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DispatchError::Failed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_errors_keep_their_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);

        let err = HandlerError::from_error(Outer(std::io::Error::other("inner")));
        assert_eq!(err.to_string(), "outer");
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "inner");
        assert!(err.as_error().is::<Outer>());
        assert_eq!(HandlerError::from("plain").to_string(), "plain");
        assert_eq!(
            HandlerError::from(String::from("owned"))
                .into_inner()
                .to_string(),
            "owned"
        );
    }
}
