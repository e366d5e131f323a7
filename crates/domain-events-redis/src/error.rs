//! The crate's [`Error`]: every message is free of passwords (they are scrubbed before an error is
//! built) and of payload data.

use domain_events::TransportError;

use crate::connection_config::ConnectionConfig;

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
    /// Redis did not answer within the response timeout (it is frozen, swamped, or the network
    /// stalls), or the connection broke while an emit waited for its replicas
    /// ([`RedisConfig::wait_for_replicas`](crate::RedisConfig::wait_for_replicas)). The command
    /// may still have run: an emit may have been stored, and emitting it
    /// again with the same idempotency key is safe. Retrying later may help.
    #[error("Redis at {url} did not answer in time ({message}); the command may have run")]
    Timeout {
        /// The redacted URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// An emit was written but fewer replicas than
    /// [`RedisConfig::wait_for_replicas`](crate::RedisConfig::wait_for_replicas) asks for
    /// acknowledged it within its timeout. The event may still be on the stream (and stay there,
    /// or be lost if its master fails before a replica has it): emitting it again with the same
    /// idempotency key is safe and waits for the replicas again. Retrying later may help.
    #[error(
        "the write reached {reached} of {wanted} replicas of Redis at {url} within {timeout:?}; \
         the event may have been stored, and emitting it again with the same idempotency key is safe"
    )]
    NotReplicated {
        /// The redacted URL.
        url: String,
        /// Replicas that acknowledged the write.
        reached: u32,
        /// Replicas asked for.
        wanted: u32,
        /// How long `WAIT` waited.
        timeout: std::time::Duration,
    },
    /// Redis answered with an error (a script error, a wrong key type, a missing permission).
    #[error("Redis error: {0}")]
    Server(String),
    /// Redis answered something this crate did not expect.
    #[error("unexpected answer from Redis: {0}")]
    Protocol(String),
    /// The consumer's task panicked (a bug, reported as such, never as a clean stop).
    #[error(transparent)]
    Panicked(#[from] domain_events::ConsumerPanicked),
    /// This process is configured with a partition count for a category that differs from the
    /// one Redis records for it (docs/contract.md section 4.6): its events would go to, or be read
    /// from, streams the others do not use. Changing the count of a live category is refused; the
    /// README's "Changing the partition count" says how to change it.
    #[error(
        "category `{category}` is configured with {configured} partition(s) here, but Redis \
         records {recorded} (`{marker}`); changing the partition count of a live category is \
         refused: stop its producers, let every group drain its streams, delete them and `{marker}`, \
         then start everything with the new count (README, \"Changing the partition count\")"
    )]
    PartitionsChanged {
        /// The category.
        category: String,
        /// The partition count this process is configured with.
        configured: u32,
        /// The partition count Redis records (1 for a category with an unpartitioned stream).
        recorded: u32,
        /// The key recording the count, `<prefix>:{<category>}:partitions`.
        marker: String,
    },
}

impl Error {
    /// Classifies a Redis client error, scrubbing secrets from its message.
    pub(crate) fn from_redis(error: &redis::RedisError, config: &ConnectionConfig) -> Self {
        let message = config.scrub(&error.to_string());
        if error.is_timeout() {
            Error::Timeout {
                url: config.redacted_url().to_owned(),
                message,
            }
        } else if is_unavailable(error) {
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

    /// Whether retrying later may help: Redis was unreachable, refused writes for the moment, did
    /// not answer in time, or too few replicas acknowledged a write in time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::NotReplicated { .. }
        )
    }
}

/// Error codes of a Redis that is up but refuses commands for a while: out of memory under
/// `noeviction`, a script running too long, a replica during failover, too few replicas for a
/// write. Waiting is the answer to each.
const WAIT_CODES: [&str; 4] = ["OOM", "BUSY", "READONLY", "NOREPLICAS"];

/// Whether `error` means Redis could not be reached or refuses commands for the moment (rather
/// than that it refused this command for good). Response timeouts are not included: see
/// [`is_transient`].
pub(crate) fn is_unavailable(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    !error.is_timeout()
        && (error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
            || error.code().is_some_and(|code| WAIT_CODES.contains(&code))
            || matches!(
                error.kind(),
                ErrorKind::Server(ServerErrorKind::BusyLoading)
                    | ErrorKind::Server(ServerErrorKind::MasterDown)
                    | ErrorKind::Server(ServerErrorKind::TryAgain)
                    | ErrorKind::Server(ServerErrorKind::ClusterDown)
                    | ErrorKind::Server(ServerErrorKind::ReadOnly)
                    | ErrorKind::AuthenticationFailed
                    | ErrorKind::ClusterConnectionNotFound
            ))
}

/// What a caller waits for after a transient `error`, for log lines: an answer, Redis accepting
/// writes again ([`WAIT_CODES`]), or Redis itself.
pub(crate) fn waiting_for(error: &redis::RedisError) -> &'static str {
    if error.is_timeout() {
        "Redis did not answer in time"
    } else if error.code().is_some_and(|code| WAIT_CODES.contains(&code)) {
        "Redis refuses writes for now"
    } else {
        "Redis unavailable"
    }
}

/// Whether waiting and trying again may help: [`is_unavailable`], or Redis did not answer in time.
pub(crate) fn is_transient(error: &redis::RedisError) -> bool {
    error.is_timeout() || is_unavailable(error)
}

impl From<Error> for TransportError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unavailable { .. } => TransportError::unavailable(error),
            Error::Timeout { .. } | Error::NotReplicated { .. } => TransportError::unknown(error),
            Error::Server(message) => TransportError::Rejected(message),
            other => TransportError::other(other),
        }
    }
}
