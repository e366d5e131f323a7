//! The platform's domain events: every event of `schemas/*.toml`, as Rust types.
//!
//! Generated at compile time by [`domain_events::include_events!`]: a payload struct, an
//! `EventPayload` impl and an envelope alias per event, [`DomainEventType`], [`DomainEvent`] and
//! [`EVENTS`].
//!
//! ```
//! use domain_events::{Envelope, EventPayload};
//! use domain_events_catalog::{DomainEventType, ImageVariationStartedPayload};
//!
//! let payload = ImageVariationStartedPayload {
//!     variation_id: "var-123".into(),
//!     variation_name: "Autumn".into(),
//!     family_count: 9,
//!     started_at: "2026-11-26T17:04:05.123Z".parse().unwrap(),
//! };
//! assert_eq!(payload.idempotency_key(), "image_started:var-123");
//! let event = Envelope::new("image-generator", payload).unwrap();
//! assert_eq!(event.correlation_id, "var-123");
//! assert_eq!("image:variation_started".parse::<DomainEventType>().unwrap(), DomainEventType::ImageVariationStarted);
//! ```
#![deny(missing_docs)]

domain_events::include_events!("../../schemas");

// The README's Rust snippets compile and run as doctests of this crate.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
