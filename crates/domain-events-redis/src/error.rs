//! The crate's [`Error`]: every message is free of passwords (they are scrubbed before an error is
//! built) and of payload data.

use domain_events::TransportError;

use crate::config::RedisConfig;

/// What went wrong talking to Redis or setting this crate up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The connection URL does not parse or names something this build cannot connect to. The URL
    /// is shown with its password replaced.
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidUrl {
        /// The redacted URL.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A setting is unusable (an empty group name, no handler registered, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Redis could not be reached: connection refused, lost, timed out, or still loading its data.
    /// Retrying later may help.
    #[error("Redis unavailable at {url}: {message}")]
    Unavailable {
        /// The redacted URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// Redis answered with an error (a script error, a wrong key type, a missing permission).
    #[error("Redis error: {0}")]
    Server(String),
    /// Redis answered something this crate did not expect.
    #[error("unexpected answer from Redis: {0}")]
    Protocol(String),
}

impl Error {
    /// Classifies a Redis client error, scrubbing secrets from its message.
    pub(crate) fn from_redis(error: &redis::RedisError, config: &RedisConfig) -> Self {
        let message = config.scrub(&error.to_string());
        if is_unavailable(error) {
            Error::Unavailable {
                url: config.redacted_url().to_owned(),
                message,
            }
        } else if error.kind() == redis::ErrorKind::UnexpectedReturnType
            || error.kind() == redis::ErrorKind::Parse
        {
            Error::Protocol(message)
        } else {
            Error::Server(message)
        }
    }

    /// Whether retrying later may help (Redis was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Whether `error` means Redis could not be reached (rather than that it refused a command).
pub(crate) fn is_unavailable(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::BusyLoading)
                | ErrorKind::Server(ServerErrorKind::MasterDown)
                | ErrorKind::Server(ServerErrorKind::TryAgain)
                | ErrorKind::Server(ServerErrorKind::ClusterDown)
                | ErrorKind::AuthenticationFailed
                | ErrorKind::ClusterConnectionNotFound
        )
}

impl From<Error> for TransportError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unavailable { .. } => TransportError::unavailable(error),
            Error::Server(message) => TransportError::Rejected(message),
            other => TransportError::other(other),
        }
    }
}
