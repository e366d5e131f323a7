//! [`Handlers::upcast`]: older versions of an event converted into newer ones for their handlers.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::Handlers;
use super::call::{Call, panic_text};
use super::route::Route;
use crate::envelope::{DecodeError, Envelope, RawEnvelope};
use crate::payload::EventPayload;

/// Turns an envelope of an older version into one of a newer version of the same type.
type Convert = Arc<dyn Fn(&RawEnvelope) -> Result<RawEnvelope, DecodeError> + Send + Sync>;

/// An upcast registered with [`Handlers::upcast`].
pub(super) struct Upcast {
    pub(super) event_type: &'static str,
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) convert: Convert,
}

impl fmt::Debug for Upcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{} -> v{}", self.event_type, self.from, self.to)
    }
}

/// Versions side by side: upcasts from older versions of an event to newer ones.
impl Handlers {
    /// Converts every event of the older payload version `Old` into the newer version `New` of the
    /// same event type with `convert`, and runs the handlers of `New` ([`on`](Self::on)) for it, so
    /// a consumer can handle only the newest version while older ones are still declared (and
    /// still in streams, retries and dead letters).
    ///
    /// - `Old` and `New` must have the same type string and `Old::VERSION < New::VERSION`; anything
    ///   else does not compile.
    /// - The handlers of `New` get an envelope whose `version` is `New::VERSION`; every other field
    ///   (`eventId`, `idempotencyKey`, `correlationId`, ...) is the original event's.
    /// - Upcasts chain: with `V1 -> V2` and `V2 -> V3`, the handlers of `V3` also see `V1` events.
    /// - Handlers of `Old` itself, if any, still run; a category handler
    ///   ([`on_category`](Self::on_category)) sees the event once, as it was emitted.
    /// - Registering a version `Old` counts as declaring it: it is not poison even without a
    ///   handler of `Old` or a known event set.
    /// - The converted payload is checked against `New`'s schema; if it breaks a constraint, or
    ///   `convert` panics, the event is poison
    ///   ([`DispatchError::Poison`](super::DispatchError::Poison)).
    /// - One upcast per older version: registering another one from the same `Old` replaces it.
    ///
    /// ```
    /// # use domain_events::Handlers;
    /// # #[cfg(any())] // needs a catalog that declares `shop:order_placed` versions 1 and 2
    /// # fn example() -> Handlers {
    /// Handlers::new()
    ///     .on(|event: ShopOrderPlacedEvent| async move { ship(&event.payload).await })
    ///     // Version 1 events reach the version 2 handler.
    ///     .upcast(|old: ShopOrderPlacedV1Event| ShopOrderPlacedPayload {
    ///         order_id: old.payload.order_id,
    ///         total_cents: old.payload.total_cents,
    ///         channel: ShopOrderPlacedChannel::Web, // version 1 had no channel
    ///         placed_at: old.occurred_at.clone(),   // nor a time of its own
    ///         // ... the other fields of version 2
    ///     })
    /// # }
    /// ```
    pub fn upcast<Old, New, F>(mut self, convert: F) -> Self
    where
        Old: EventPayload,
        New: EventPayload,
        F: Fn(Envelope<Old>) -> New + Send + Sync + 'static,
    {
        const {
            assert!(
                crate::__private::str_eq(Old::TYPE, New::TYPE),
                "an upcast converts between two versions of the same event type"
            );
            assert!(
                Old::VERSION < New::VERSION,
                "an upcast converts an older version into a newer one"
            );
        }
        let convert: Convert = Arc::new(move |raw: &RawEnvelope| {
            let old = raw.decode::<Old>()?;
            let invalid = |message: String| DecodeError::InvalidPayload {
                event_type: raw.event_type.clone(),
                version: New::VERSION,
                source: <serde_json::Error as serde::de::Error>::custom(message),
            };
            let new = catch_unwind(AssertUnwindSafe(|| convert(old))).map_err(|payload| {
                invalid(format!(
                    "the upcast from version {} panicked: {}",
                    Old::VERSION,
                    panic_text(&*payload)
                ))
            })?;
            let payload = serde_json::value::to_raw_value(&new).map_err(|e| {
                invalid(format!("the upcast result cannot be written as JSON: {e}"))
            })?;
            let mut newer = raw.with_payload(payload);
            newer.version = New::VERSION;
            Ok(newer)
        });
        let upcast = Upcast {
            event_type: Old::TYPE,
            from: Old::VERSION,
            to: New::VERSION,
            convert,
        };
        match self
            .upcasts
            .iter_mut()
            .find(|u| u.event_type == upcast.event_type && u.from == upcast.from)
        {
            Some(existing) => {
                tracing::warn!(
                    event_type = Old::TYPE,
                    from = Old::VERSION,
                    "a second upcast from the same version replaces the first"
                );
                *existing = upcast;
            }
            None => self.upcasts.push(upcast),
        }
        self
    }

    /// Whether a typed handler runs for `event_type` at `version`, directly or through upcasts.
    fn wants(&self, event_type: &str, version: u32) -> bool {
        self.groups.iter().any(|group| {
            matches!(group.route(), Route::Type { event_type: t, version: v, .. } if *t == event_type && *v == version)
        }) || self
            .upcasts
            .iter()
            .any(|u| u.event_type == event_type && u.from == version && self.wants(event_type, u.to))
    }

    /// Upcasts `raw` (when an upcast starts at its version and something wants the result) and
    /// binds the result to the typed handlers of the newer version, then of the versions after it.
    pub(super) fn prepare_upcasts(
        &self,
        raw: &RawEnvelope,
        calls: &mut Vec<Call>,
    ) -> Result<(), DecodeError> {
        let Some(upcast) = self
            .upcasts
            .iter()
            .find(|u| u.event_type == raw.event_type && u.from == raw.version)
        else {
            return Ok(());
        };
        if !self.wants(upcast.event_type, upcast.to) {
            return Ok(());
        }
        let newer = (upcast.convert)(raw)?;
        for group in self
            .groups
            .iter()
            .filter(|g| matches!(g.route(), Route::Type { .. }) && g.route().matches(&newer))
        {
            group.prepare(&newer, calls)?;
        }
        self.prepare_upcasts(&newer, calls)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::handlers::{DispatchError, Dispatched, HandlerError};
    use crate::payload::EventSet;
    use crate::test_support::{TestEvent, VariationCompleted, VariationCompletedV2, raw_of};
    use crate::validation::{Path, Validate, Validator};

    /// What a handler saw: version, families failed, event id and key.
    type Seen = Arc<Mutex<Vec<(u32, u64, crate::Uuid, String)>>>;

    fn v2_handler(
        seen: &Seen,
    ) -> impl Fn(Envelope<VariationCompletedV2>) -> std::future::Ready<Result<(), HandlerError>>
    + Send
    + Sync
    + 'static {
        let seen = seen.clone();
        move |event| {
            if let Ok(mut seen) = seen.lock() {
                seen.push((
                    event.version,
                    event.payload.families_failed,
                    event.event_id,
                    event.idempotency_key.clone(),
                ));
            }
            std::future::ready(Ok(()))
        }
    }

    fn v1_handler(
        seen: &Seen,
    ) -> impl Fn(Envelope<VariationCompleted>) -> std::future::Ready<Result<(), HandlerError>>
    + Send
    + Sync
    + 'static {
        let seen = seen.clone();
        move |event| {
            if let Ok(mut seen) = seen.lock() {
                seen.push((
                    event.version,
                    0,
                    event.event_id,
                    event.idempotency_key.clone(),
                ));
            }
            std::future::ready(Ok(()))
        }
    }

    fn upcast_v1(old: Envelope<VariationCompleted>) -> VariationCompletedV2 {
        VariationCompletedV2 {
            variation_id: old.payload.variation_id,
            families_completed: old.payload.families_completed,
            families_failed: 0,
        }
    }

    fn seen() -> Seen {
        Arc::new(Mutex::new(Vec::new()))
    }

    fn taken(seen: &Seen) -> Vec<(u32, u64, crate::Uuid, String)> {
        seen.lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn handlers_per_version_see_only_their_version() {
        let (one, two) = (seen(), seen());
        let handlers = Handlers::new().on(v1_handler(&one)).on(v2_handler(&two));
        let v1 = raw_of(VariationCompleted::new("a"));
        let v2 = raw_of(VariationCompletedV2::new("b", 3));
        assert_eq!(
            handlers.dispatch(&v1).await.expect("v1"),
            Dispatched::Handled(1)
        );
        assert_eq!(
            handlers.dispatch(&v2).await.expect("v2"),
            Dispatched::Handled(1)
        );
        assert_eq!(
            taken(&one),
            [(1, 0, v1.event_id, "image_complete:a".to_owned())]
        );
        assert_eq!(
            taken(&two),
            [(2, 3, v2.event_id, "image_complete:b".to_owned())]
        );
    }

    #[tokio::test]
    async fn an_upcast_feeds_older_events_to_the_newer_handler() {
        let two = seen();
        let handlers = Handlers::new().on(v2_handler(&two)).upcast(upcast_v1);
        let v1 = raw_of(VariationCompleted::new("a"));
        let v2 = raw_of(VariationCompletedV2::new("b", 3));
        assert_eq!(
            handlers.dispatch(&v1).await.expect("v1"),
            Dispatched::Handled(1)
        );
        assert_eq!(
            handlers.dispatch(&v2).await.expect("v2"),
            Dispatched::Handled(1)
        );
        // The upcast event keeps its id and key; its version is the newer one.
        assert_eq!(
            taken(&two),
            [
                (2, 0, v1.event_id, "image_complete:a".to_owned()),
                (2, 3, v2.event_id, "image_complete:b".to_owned())
            ]
        );
        assert!(format!("{handlers:?}").contains("image:variation_completed v1 -> v2"));
    }

    #[tokio::test]
    async fn without_an_upcast_an_older_version_is_poison() {
        let two = seen();
        let handlers = Handlers::new().on(v2_handler(&two));
        let err = handlers
            .dispatch(&raw_of(VariationCompleted::new("a")))
            .await
            .expect_err("poison");
        assert!(
            matches!(
                err,
                DispatchError::Poison(DecodeError::UnknownVersion { version: 1, .. })
            ),
            "{err:?}"
        );
        assert!(taken(&two).is_empty());

        // An upcast declares the older version even when nothing handles the newer one yet.
        let handlers = Handlers::new().upcast(upcast_v1);
        assert_eq!(
            handlers
                .dispatch(&raw_of(VariationCompleted::new("a")))
                .await
                .expect("known"),
            Dispatched::NoHandler
        );
    }

    #[tokio::test]
    async fn version_handlers_and_category_handlers_still_run_once() {
        let (one, two, category) = (seen(), seen(), Arc::new(Mutex::new(Vec::new())));
        let handlers = Handlers::new()
            .on(v1_handler(&one))
            .on(v2_handler(&two))
            .upcast(upcast_v1)
            .on_category::<TestEvent, _, _>("image", {
                let category = category.clone();
                move |event: TestEvent| {
                    if let Ok(mut c) = category.lock() {
                        c.push(event.event_type());
                    }
                    async { Ok(()) }
                }
            });
        let v1 = raw_of(VariationCompleted::new("a"));
        assert_eq!(
            handlers.dispatch(&v1).await.expect("v1"),
            Dispatched::Handled(3)
        );
        assert_eq!(taken(&one).len(), 1);
        assert_eq!(
            taken(&two),
            [(2, 0, v1.event_id, "image_complete:a".to_owned())]
        );
        assert_eq!(
            *category.lock().expect("lock"),
            ["image:variation_completed"]
        );
    }

    #[tokio::test]
    async fn a_panicking_upcast_makes_the_event_poison() {
        let two = seen();
        let handlers = Handlers::new().on(v2_handler(&two)).upcast(
            |_: Envelope<VariationCompleted>| -> VariationCompletedV2 { panic!("no mapping") },
        );
        let err = handlers
            .dispatch(&raw_of(VariationCompleted::new("a")))
            .await
            .expect_err("poison");
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("the upcast from version 1 panicked: no mapping"),
            "{err}"
        );
        assert!(taken(&two).is_empty());
    }

    #[tokio::test]
    async fn a_second_upcast_from_the_same_version_replaces_the_first() {
        let two = seen();
        let handlers = Handlers::new()
            .on(v2_handler(&two))
            .upcast(upcast_v1)
            .upcast(|old: Envelope<VariationCompleted>| VariationCompletedV2 {
                families_failed: 7,
                ..upcast_v1(old)
            });
        handlers
            .dispatch(&raw_of(VariationCompleted::new("a")))
            .await
            .expect("v1");
        assert_eq!(taken(&two).iter().map(|s| s.1).collect::<Vec<_>>(), [7]);
    }

    /// `image:variation_completed` v3, to chain upcasts.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct VariationCompletedV3 {
        variation_id: String,
        families: u64,
    }

    crate::test_support::test_payload!(
        VariationCompletedV3,
        "image:variation_completed",
        "image",
        "variation_completed",
        3,
        "image_complete",
        "variationId",
        variation_id
    );

    #[tokio::test]
    async fn upcasts_chain() {
        let three = Arc::new(Mutex::new(Vec::new()));
        let handlers = Handlers::new()
            .upcast(|old: Envelope<VariationCompletedV2>| VariationCompletedV3 {
                variation_id: old.payload.variation_id,
                families: old.payload.families_completed + old.payload.families_failed,
            })
            .upcast(upcast_v1)
            .on({
                let three = three.clone();
                move |event: Envelope<VariationCompletedV3>| {
                    if let Ok(mut t) = three.lock() {
                        t.push((event.version, event.payload.families));
                    }
                    async { Ok(()) }
                }
            });
        for raw in [
            raw_of(VariationCompleted::new("a")),
            raw_of(VariationCompletedV2::new("b", 1)),
        ] {
            assert_eq!(
                handlers.dispatch(&raw).await.expect("handled"),
                Dispatched::Handled(1)
            );
        }
        assert_eq!(*three.lock().expect("lock"), [(3, 9), (3, 10)]);
    }
}
