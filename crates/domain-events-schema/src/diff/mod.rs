//! The compatibility check: what changed between two catalogs, per event, version and field, and
//! whether each change is safe for the consumers and events that exist while it rolls out.
//!
//! Every [`Change`] is judged in two directions, under the tolerant-reader rule of docs/contract.md
//! section 2 (readers ignore unknown fields; payloads are checked against their schema, constraints
//! included, when they are read):
//!
//! - **old readers** ([`Change::old_readers`]): consumers built from the old schemas reading events
//!   emitted under the new ones (producers deployed first);
//! - **new readers** ([`Change::new_readers`]): consumers built from the new schemas reading events
//!   emitted under the old ones (consumers deployed first, and every event still waiting in a
//!   stream, a retry or a dead-letter queue).
//!
//! A change that is breaking in either direction must come with a new version of the event: a
//! breaking change to a version that exists in both catalogs is a *violation*
//! ([`Change::violation`]), and so is removing the newest version of an event, or a whole event
//! that was not deprecated first. docs/compatibility.md has the table and the reasons.
//!
//! ```
//! use domain_events_schema::Catalog;
//! use domain_events_schema::diff::{ChangeKind, Compat, diff};
//!
//! let old = Catalog::from_sources(&[("image.toml", r#"
//!     category = "image"
//!     correlation = "variationId"
//!     [events.variation_started]
//!     idempotency_key = "image_started:{variationId}"
//!     fields = { variationId = "string" }
//! "#)]).unwrap();
//! let new = Catalog::from_sources(&[("image.toml", r#"
//!     category = "image"
//!     correlation = "variationId"
//!     [events.variation_started]
//!     idempotency_key = "image_started:{variationId}"
//!     fields = { variationId = "string", workerId = "string" }
//! "#)]).unwrap();
//! let result = diff(&old, &new);
//! let change = &result.changes[0];
//! assert_eq!(change.kind, ChangeKind::FieldAddedRequired);
//! assert_eq!(change.field.as_deref(), Some("workerId"));
//! assert_eq!((change.old_readers, change.new_readers), (Compat::Compatible, Compat::Breaking));
//! assert!(change.violation); // the event kept version 1
//! assert!(result.has_violations());
//! ```

mod compare;
mod model;
mod render;
#[cfg(test)]
mod test_support;
mod types;

pub use compare::diff;
pub use model::{Change, ChangeKind, Compat, Diff};
