//! The crate's [`Error`]: what went wrong talking to Redis is the Redis crate's
//! [`domain_events_redis::Error`], wrapped, so both crates classify the Redis client's errors one
//! way; BullMQ adds its own settings and the queue's readiness. Every message is free of
//! passwords (they are scrubbed before an error is built) and of payload data.

use domain_events::TransportError;
use domain_events_redis::Error as RedisError;

use crate::config::BullmqConfig;

/// What went wrong talking to Redis through BullMQ, or setting this crate up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Talking to Redis failed, or its URL is unusable: unreachable, no answer in time, a refused
    /// command, an unexpected answer (from Redis or from BullMQ's scripts). The Redis crate's
    /// error, classified there; [`is_transient`](domain_events_redis::Error::is_transient) says
    /// whether retrying later may help.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A setting is unusable (an empty queue name, a prefix with `:`, no handler registered, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The queue cannot take jobs safely right now; retrying later may help. Raised when a
    /// BullMQ 5 client paused the queue while jobs were waiting (see
    /// [`BullmqConfig::v5_pause_guard`]).
    #[error("queue `{queue}` not ready: {reason}")]
    NotReady {
        /// The queue's key base, `<bullmq prefix>:<queue>`.
        queue: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The consumer's task panicked (a bug, reported as such, never as a clean stop).
    #[error(transparent)]
    Panicked(#[from] domain_events::ConsumerPanicked),
}

impl Error {
    /// Whether retrying later may help: Redis was unreachable or did not answer in time (as the
    /// Redis crate's [`Error::is_transient`](domain_events_redis::Error::is_transient) says), or
    /// the queue was not ready.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis(error) => error.is_transient(),
            Error::NotReady { .. } => true,
            Error::Config(_) | Error::Panicked(_) => false,
        }
    }

    /// Classifies an error of the BullMQ crate, scrubbing secrets from its message: the Redis
    /// client's errors as the Redis crate classifies them, BullMQ's own onto the same classes.
    pub(crate) fn from_bullmq(error: &bullmq::Error, config: &BullmqConfig) -> Self {
        let scrub = |text: &str| config.scrub(text);
        match error {
            bullmq::Error::Redis(error) => Self::from_redis(error, config),
            bullmq::Error::ConnectionClosed => {
                config.connection().unavailable("connection closed").into()
            }
            bullmq::Error::InvalidConfig(message) => Error::Config(scrub(message)),
            bullmq::Error::Serialization(error) => Self::protocol(scrub(&error.to_string())),
            bullmq::Error::MsgPack(message) => Self::protocol(scrub(message)),
            other => RedisError::Server(scrub(&other.to_string())).into(),
        }
    }

    /// Classifies a Redis client error as the Redis crate does, scrubbing secrets from its
    /// message.
    pub(crate) fn from_redis(error: &redis::RedisError, config: &BullmqConfig) -> Self {
        config.connection().error(error).into()
    }

    /// An answer this crate did not expect ([`RedisError::Protocol`]).
    pub(crate) fn protocol(message: String) -> Self {
        RedisError::Protocol(message).into()
    }
}

impl From<Error> for TransportError {
    fn from(error: Error) -> Self {
        match error {
            Error::Redis(error) => error.into(),
            Error::NotReady { .. } => TransportError::unavailable(error),
            Error::Config(_) | Error::Panicked(_) => TransportError::other(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BullmqConfig {
        BullmqConfig::new("redis://:s3cret@127.0.0.1:1").expect("valid")
    }

    #[test]
    fn redis_errors_are_the_redis_crates_own() {
        let config = config();
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let ours = Error::from_redis(&refused, &config);
        let theirs = config.redis_config().error(&refused);
        assert_eq!(ours.to_string(), theirs.to_string());
        assert!(matches!(ours, Error::Redis(RedisError::Unavailable { .. })));
        assert_eq!(ours.is_transient(), theirs.is_transient());
        assert!(ours.is_transient());
        assert!(matches!(
            TransportError::from(ours),
            TransportError::Unavailable(_)
        ));

        let closed = Error::from_bullmq(&bullmq::Error::ConnectionClosed, &config);
        assert!(closed.is_transient(), "{closed:?}");
        assert!(
            closed.to_string().contains("redis://:***@127.0.0.1:1"),
            "{closed}"
        );
    }

    #[test]
    fn bullmq_errors_map_onto_the_same_classes_without_the_password() {
        let config = config();
        let bad = Error::from_bullmq(&bullmq::Error::InvalidConfig("s3cret".into()), &config);
        assert!(
            matches!(&bad, Error::Config(message) if message == "***"),
            "{bad:?}"
        );
        assert!(!bad.is_transient());
        let garbled = Error::from_bullmq(&bullmq::Error::MsgPack("s3cret?".into()), &config);
        assert!(
            matches!(&garbled, Error::Redis(RedisError::Protocol(message)) if message == "***?"),
            "{garbled:?}"
        );
        let not_ready = Error::NotReady {
            queue: "bull:DOMAIN_EVENTS".into(),
            reason: "paused".into(),
        };
        assert!(not_ready.is_transient());
        assert!(matches!(
            TransportError::from(not_ready),
            TransportError::Unavailable(_)
        ));
        assert!(matches!(
            TransportError::from(Error::protocol("odd".into())),
            TransportError::Other(_)
        ));
    }
}
