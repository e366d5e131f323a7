//! Hand-written payloads and an event set, standing in for generated code in unit tests.

use serde::{Deserialize, Serialize};

use crate::envelope::{DecodeError, Envelope, RawEnvelope};
use crate::payload::{EventInfo, EventPayload, EventSet};
use crate::validation::{Path, Validate, Validator};

/// Implements `EventPayload` for a hand-written test payload keyed by one string field:
/// `key_prefix:{wire field}`, with the same field as correlation. `non_empty` adds the
/// `minLength 1` check generated code would have for an id field.
macro_rules! test_payload {
    ($ty:ty, $type_str:literal, $category:literal, $name:literal, $version:literal,
     $prefix:literal, $wire:literal, $field:ident, non_empty) => {
        impl Validate for $ty {
            fn validate_into(&self, v: &mut Validator, path: &Path<'_>) {
                if self.$field.is_empty() {
                    v.report(&path.field($wire), "must be at least 1 character long");
                }
            }
        }
        $crate::test_support::test_payload!(@payload $ty, $type_str, $category, $name, $version, $prefix, $wire, $field);
    };
    ($ty:ty, $type_str:literal, $category:literal, $name:literal, $version:literal,
     $prefix:literal, $wire:literal, $field:ident) => {
        impl Validate for $ty {
            fn validate_into(&self, _: &mut Validator, _: &Path<'_>) {}
        }
        $crate::test_support::test_payload!(@payload $ty, $type_str, $category, $name, $version, $prefix, $wire, $field);
    };
    (@payload $ty:ty, $type_str:literal, $category:literal, $name:literal, $version:literal,
     $prefix:literal, $wire:literal, $field:ident) => {
        impl EventPayload for $ty {
            const TYPE: &'static str = $type_str;
            const CATEGORY: &'static str = $category;
            const NAME: &'static str = $name;
            const VERSION: u32 = $version;
            const KEY_TEMPLATE: &'static str = concat!($prefix, ":{", $wire, "}");
            const CORRELATION_FIELD: &'static str = $wire;

            fn idempotency_key(&self) -> String {
                format!(concat!($prefix, ":{}"), self.$field)
            }

            fn correlation_id(&self) -> String {
                self.$field.clone()
            }
        }
    };
}
pub(crate) use test_payload;

/// `image:variation_completed` v1, key `image_complete:{variationId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationCompleted {
    pub variation_id: String,
    pub families_completed: u64,
}

impl VariationCompleted {
    pub fn new(id: &str) -> Self {
        Self {
            variation_id: id.to_owned(),
            families_completed: 9,
        }
    }
}

test_payload!(
    VariationCompleted,
    "image:variation_completed",
    "image",
    "variation_completed",
    1,
    "image_complete",
    "variationId",
    variation_id,
    non_empty
);

/// `image:variation_started` v1, key `image_started:{variationId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationStarted {
    pub variation_id: String,
}

impl VariationStarted {
    pub fn new(id: &str) -> Self {
        Self {
            variation_id: id.to_owned(),
        }
    }
}

test_payload!(
    VariationStarted,
    "image:variation_started",
    "image",
    "variation_started",
    1,
    "image_started",
    "variationId",
    variation_id
);

/// `funnel:signup` v1, key `funnel_signup:{userId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signup {
    pub user_id: String,
}

impl Signup {
    pub fn new(id: &str) -> Self {
        Self {
            user_id: id.to_owned(),
        }
    }
}

test_payload!(
    Signup,
    "funnel:signup",
    "funnel",
    "signup",
    1,
    "funnel_signup",
    "userId",
    user_id,
    non_empty
);

const fn info<P: EventPayload>() -> EventInfo {
    EventInfo {
        event_type: P::TYPE,
        category: P::CATEGORY,
        name: P::NAME,
        version: P::VERSION,
        latest: true,
        key_template: P::KEY_TEMPLATE,
        correlation_field: P::CORRELATION_FIELD,
        deprecated: false,
        description: "",
    }
}

/// The `DomainEvent` enum generated code would write for the three payloads above.
#[derive(Debug, Clone, PartialEq)]
pub enum TestEvent {
    VariationCompleted(Envelope<VariationCompleted>),
    VariationStarted(Envelope<VariationStarted>),
    Signup(Envelope<Signup>),
}

impl EventSet for TestEvent {
    const EVENTS: &'static [EventInfo] = &[
        info::<VariationCompleted>(),
        info::<VariationStarted>(),
        info::<Signup>(),
    ];

    fn decode(raw: &RawEnvelope) -> Result<Self, DecodeError> {
        match raw.event_type.as_str() {
            VariationCompleted::TYPE => raw.decode().map(TestEvent::VariationCompleted),
            VariationStarted::TYPE => raw.decode().map(TestEvent::VariationStarted),
            Signup::TYPE => raw.decode().map(TestEvent::Signup),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            TestEvent::VariationCompleted(_) => VariationCompleted::TYPE,
            TestEvent::VariationStarted(_) => VariationStarted::TYPE,
            TestEvent::Signup(_) => Signup::TYPE,
        }
    }
}

/// An envelope of `payload` as raw JSON would arrive from a transport.
pub fn raw_of<P: EventPayload>(payload: P) -> RawEnvelope {
    let envelope = Envelope::new("tests", payload).expect("valid test payload");
    let json = serde_json::to_vec(&envelope).expect("serializable");
    RawEnvelope::from_slice(&json).expect("an envelope")
}

/// A raw envelope with arbitrary type, version and payload JSON.
pub fn raw_with(event_type: &str, version: u32, payload: &str) -> RawEnvelope {
    let json = format!(
        r#"{{"eventId":"0193a6c4-7b7e-7c1e-9d0a-5f2b8e4a1c33","type":"{event_type}","version":{version},
            "occurredAt":"2026-11-26T17:04:05.123Z","source":"tests","correlationId":"c",
            "idempotencyKey":"k:{event_type}","payload":{payload}}}"#
    );
    RawEnvelope::from_slice(json.as_bytes()).expect("an envelope")
}

/// How long a test waits for something that should happen at once before it fails instead of
/// hanging. Under a paused clock this costs no real time.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// `future`'s output, or a test failure after [`PATIENCE`].
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(output) => output,
        Err(_) => panic!("gave up waiting after {PATIENCE:?}"),
    }
}

/// `image:variation_completed` v2: [`VariationCompleted`] (v1) plus the required `familiesFailed`,
/// for tests of versions side by side and upcasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariationCompletedV2 {
    pub variation_id: String,
    pub families_completed: u64,
    pub families_failed: u64,
}

impl VariationCompletedV2 {
    pub fn new(id: &str, failed: u64) -> Self {
        Self {
            variation_id: id.to_owned(),
            families_completed: 9,
            families_failed: failed,
        }
    }
}

test_payload!(
    VariationCompletedV2,
    "image:variation_completed",
    "image",
    "variation_completed",
    2,
    "image_complete",
    "variationId",
    variation_id,
    non_empty
);
