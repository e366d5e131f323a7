//! What can go wrong writing to the outbox, relaying it, or administering it.

use domain_events::{EnvelopeError, ValidationError};

/// Why an outbox operation failed.
///
/// Messages never hold a connection URL or payload data: PostgreSQL's own messages name
/// constraints and columns, not the envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload breaks a constraint of its schema; nothing was written.
    #[error("invalid payload: {0}")]
    Invalid(#[from] ValidationError),
    /// The envelope could not be serialized to JSON; nothing was written.
    #[error("cannot serialize the envelope: {0}")]
    Serialize(#[from] serde_json::Error),
    /// PostgreSQL failed or could not be reached.
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema or table name is not a lower-case SQL identifier.
    #[error("invalid outbox name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl From<EnvelopeError> for Error {
    fn from(error: EnvelopeError) -> Self {
        match error {
            EnvelopeError::Invalid(e) => Error::Invalid(e),
            EnvelopeError::Serialize(e) => Error::Serialize(e),
        }
    }
}
