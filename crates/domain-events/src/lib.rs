//! Typed, schema-first domain events.
//!
//! Events are declared in TOML files; [`include_events!`] turns a folder of them into payload
//! structs, the `DomainEventType` enum, envelope aliases and the rules for idempotency keys and
//! correlation ids. This crate holds what that generated code runs on: the [`Envelope`], the
//! [`Emitter`] and its [`Transport`]s, the embedded [`MemoryBus`], and the consumer-side
//! [`Handlers`] registry.
//!
//! See the repository README for a walk-through and `docs/schema-language.md` for the TOML format.
#![deny(missing_docs)]

mod envelope;
mod formats;
mod key;
mod payload;
mod validation;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use envelope::{DecodeError, Envelope, RawEnvelope, is_valid_traceparent};
pub use formats::{Date, Email, FormatError, Timestamp, Url};
pub use key::KeyPart;
pub use payload::{EventInfo, EventPayload, EventSet, UnknownValue};
pub use uuid::Uuid;
pub use validation::{Validate, ValidationError, Violation};

#[cfg(feature = "macros")]
pub use domain_events_macros::{Emitter, include_events};
