//! The crate's [`Error`]: every message is free of passwords (they are scrubbed before an error is
//! built) and of payload data.

use domain_events::TransportError;

use crate::config::BullmqConfig;

/// What went wrong talking to Redis through BullMQ, or setting this crate up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    /// A setting is unusable (an empty queue name, a prefix with `:`, no handler registered, ...).
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
    /// Redis did not answer within the response timeout; the command may still have run (a job
    /// may have been added: adding it again with the same idempotency key is safe).
    #[error("Redis at {url} did not answer in time ({message}); the command may have run")]
    Timeout {
        /// The redacted URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The queue cannot take jobs safely right now; retrying later may help. Raised when a
    /// BullMQ 5 client paused the queue while jobs were waiting (see
    /// [`BullmqConfig::v5_pause_guard`]).
    #[error("queue `{queue}` not ready: {reason}")]
    NotReady {
        /// The queue's key base, `<prefix>:<queue>`.
        queue: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Redis or one of BullMQ's scripts refused a command (a script error, a wrong key type, a
    /// missing permission, an id BullMQ does not accept).
    #[error("Redis error: {0}")]
    Server(String),
    /// Redis or BullMQ answered something this crate did not expect.
    #[error("unexpected answer from Redis: {0}")]
    Protocol(String),
    /// The consumer's task panicked (a bug, reported as such, never as a clean stop).
    #[error(transparent)]
    Panicked(#[from] domain_events::ConsumerPanicked),
}

impl Error {
    /// Whether retrying later may help (Redis was unreachable, or the queue was not ready).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::NotReady { .. }
        )
    }

    /// Classifies an error of the BullMQ crate, scrubbing secrets from its message.
    pub(crate) fn from_bullmq(error: &bullmq::Error, config: &BullmqConfig) -> Self {
        match error {
            bullmq::Error::Redis(error) => Self::from_redis(error, config),
            bullmq::Error::ConnectionClosed => Error::Unavailable {
                url: config.redacted_url().to_owned(),
                message: "connection closed".into(),
            },
            bullmq::Error::InvalidConfig(message) => Error::Config(config.scrub(message)),
            bullmq::Error::Serialization(error) => {
                Error::Protocol(config.scrub(&error.to_string()))
            }
            bullmq::Error::MsgPack(message) => Error::Protocol(config.scrub(message)),
            other => Error::Server(config.scrub(&other.to_string())),
        }
    }

    /// Classifies a Redis client error, scrubbing secrets from its message (as the Redis Streams
    /// crate does).
    pub(crate) fn from_redis(error: &redis::RedisError, config: &BullmqConfig) -> Self {
        config.redis_config().error(error).into()
    }
}

impl From<domain_events_redis::Error> for Error {
    fn from(error: domain_events_redis::Error) -> Self {
        match error {
            domain_events_redis::Error::InvalidUrl { url, reason } => {
                Error::InvalidUrl { url, reason }
            }
            domain_events_redis::Error::Config(message) => Error::Config(message),
            domain_events_redis::Error::Unavailable { url, message } => {
                Error::Unavailable { url, message }
            }
            domain_events_redis::Error::Timeout { url, message } => Error::Timeout { url, message },
            domain_events_redis::Error::Server(message) => Error::Server(message),
            domain_events_redis::Error::Protocol(message) => Error::Protocol(message),
            domain_events_redis::Error::Panicked(panicked) => Error::Panicked(panicked),
        }
    }
}

impl From<Error> for TransportError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unavailable { .. } | Error::NotReady { .. } => {
                TransportError::unavailable(error)
            }
            Error::Timeout { .. } => TransportError::unknown(error),
            Error::Server(message) => TransportError::Rejected(message),
            other => TransportError::other(other),
        }
    }
}
