//! The consumer-side registry of event handlers, shared by every transport's consumer.
//!
//! A consumer reads raw envelopes from wherever its transport keeps them and calls
//! [`Handlers::dispatch`] for each; the answer tells it what to do with the event:
//!
//! | answer | meaning | what a consumer does |
//! |---|---|---|
//! | `Ok(Dispatched::Handled(n))` | `n` handlers ran and succeeded | record the key as done, acknowledge |
//! | `Ok(Dispatched::NoHandler)` | the event is readable but nothing here handles it | acknowledge |
//! | `Err(DispatchError::Poison(_))` | the event can never be handled here (unknown type or version, invalid payload) | dead-letter at once, no retry |
//! | `Err(DispatchError::Failed(_))` | a handler failed; trying again may help | retry, dead-letter after too many attempts |
//!
//! ```
//! # use domain_events::{Handlers, HandlerError};
//! # async fn notify(_: &str) -> Result<(), std::io::Error> { Ok(()) }
//! // With generated code: `.on(|event: ImageVariationCompletedEvent| async move { ... })`,
//! // `.on_category::<DomainEvent, _, _>("image", |event| async move { ... })`
//! // and `.knowing::<DomainEvent>()`.
//! let handlers = Handlers::new();
//! assert!(handlers.categories().is_empty());
//! // Inside a handler, turn any error into a HandlerError:
//! # async fn handler() -> Result<(), HandlerError> {
//! notify("ops").await.map_err(HandlerError::from_error)?;
//! # Ok(()) }
//! ```

mod call;
mod error;
mod raw;
mod route;
mod upcast;

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::envelope::{DecodeError, Envelope, RawEnvelope, category_of};
use crate::payload::{EventPayload, EventSet};
pub(crate) use call::panic_text;
use call::{Call, run};
use route::{ErasedGroup, Group, HandlerFn, KnownSet, Route, clone_value, decode_again};
use upcast::Upcast;

pub use error::{DispatchError, Dispatched, HandlerError};

/// Event handlers by type and version or by category, and the event sets that say which events
/// exist; transport-agnostic.
///
/// Register with [`on`](Self::on) (one payload type), [`on_category`](Self::on_category) (every
/// event of a category, as the generated `DomainEvent` enum) and [`knowing`](Self::knowing), then
/// [`dispatch`](Self::dispatch) raw envelopes. Tools that work with any schema folder register
/// [`on_raw`](Self::on_raw) handlers instead, which get every event of some categories undecoded.
///
/// Handlers run at least once per event: a consumer retries an event whose handler failed, running
/// all its handlers again, so handlers should be idempotent.
#[derive(Default)]
pub struct Handlers {
    groups: Vec<Box<dyn ErasedGroup>>,
    known: Vec<KnownSet>,
    upcasts: Vec<Upcast>,
    checks: Vec<Check>,
}

/// A check of every event before its handlers, registered with [`Handlers::checking`].
type Check = Arc<dyn Fn(&RawEnvelope) -> Result<(), DecodeError> + Send + Sync>;

impl Handlers {
    /// No handler, no known event set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler` for every event of payload type `P` (its type string and version).
    ///
    /// The payload is decoded once for all the handlers of `P`; each gets its own copy.
    pub fn on<P, F, Fut>(mut self, handler: F) -> Self
    where
        P: EventPayload,
        F: Fn(Envelope<P>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let route = Route::Type {
            event_type: P::TYPE,
            version: P::VERSION,
            category: P::CATEGORY,
        };
        let handler: HandlerFn<Envelope<P>> = Arc::new(move |event| Box::pin(handler(event)));
        self.add(
            route,
            (TypeId::of::<P>(), None),
            |raw| raw.decode::<P>(),
            clone_value,
            handler,
        );
        self
    }

    /// Runs `handler` for every event of `category` that the event set `E` declares, decoded as `E`
    /// (the generated `DomainEvent` enum). Also declares `E` as known, like
    /// [`knowing`](Self::knowing).
    pub fn on_category<E, F, Fut>(mut self, category: &'static str, handler: F) -> Self
    where
        E: EventSet,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        if !E::EVENTS.iter().any(|info| info.category == category) {
            tracing::warn!(
                category,
                event_set = std::any::type_name::<E>(),
                "handler registered for a category the event set does not declare; it will never run"
            );
        }
        self = self.knowing::<E>();
        let route = Route::Category {
            category,
            set: KnownSet::of::<E>(),
        };
        let handler: HandlerFn<E> = Arc::new(move |event| Box::pin(handler(event)));
        self.add(
            route,
            (TypeId::of::<E>(), Some(category)),
            E::decode,
            decode_again::<E>,
            handler,
        );
        self
    }

    /// Declares the event set `E` as known: from now on, an event whose type no known set declares
    /// (and no handler names) is poison, not merely unhandled, and so is a known type in a version
    /// no known set or handler declares.
    pub fn knowing<E: EventSet>(mut self) -> Self {
        let set = KnownSet::of::<E>();
        if !self.known.iter().any(|known| known.id == set.id) {
            self.known.push(set);
        }
        self
    }

    fn add<T: Send + 'static>(
        &mut self,
        route: Route,
        key: (TypeId, Option<&'static str>),
        decode: fn(&RawEnvelope) -> Result<T, DecodeError>,
        again: fn(&T, &RawEnvelope) -> Result<T, DecodeError>,
        handler: HandlerFn<T>,
    ) {
        for group in &mut self.groups {
            if group.key() == key
                && let Some(group) = group.as_any_mut().downcast_mut::<Group<T>>()
            {
                group.handlers.push(handler);
                return;
            }
        }
        self.groups.push(Box::new(Group {
            route,
            key,
            decode,
            again,
            handlers: vec![handler],
        }));
    }

    /// Whether some handler runs for events of `event_type` (in at least one version).
    pub fn handles(&self, event_type: &str) -> bool {
        self.groups.iter().any(|group| match group.route() {
            Route::Type { event_type: t, .. } => *t == event_type,
            Route::Category { category, set } => {
                category_of(event_type) == Some(*category) && (set.knows_type)(event_type)
            }
            Route::Raw { category } => category_of(event_type) == Some(*category),
        })
    }

    /// The categories the handlers need, sorted: the streams a consumer has to read.
    pub fn categories(&self) -> Vec<&'static str> {
        let mut categories: Vec<_> = self
            .groups
            .iter()
            .map(|group| group.route().category())
            .collect();
        categories.sort_unstable();
        categories.dedup();
        categories
    }

    /// Decodes `raw` once per handler type and runs every matching handler, in registration order.
    ///
    /// Nothing runs unless every matching handler's decode succeeded, so a poison event never runs
    /// half its handlers. A failing (or panicking) handler does not stop the others; the first
    /// failure is returned and the rest are logged.
    pub async fn dispatch(&self, raw: &RawEnvelope) -> Result<Dispatched, DispatchError> {
        let calls = self.prepare(raw).map_err(DispatchError::Poison)?;
        if calls.is_empty() {
            return Ok(Dispatched::NoHandler);
        }
        let count = calls.len();
        let mut first_failure = None;
        for call in calls {
            if let Err(error) = run(call).await {
                if first_failure.is_none() {
                    first_failure = Some(error);
                } else {
                    tracing::warn!(
                        event_type = %raw.event_type,
                        event_id = %raw.event_id,
                        error = %error,
                        "another handler of the event failed"
                    );
                }
            }
        }
        match first_failure {
            Some(error) => Err(DispatchError::Failed(error)),
            None => Ok(Dispatched::Handled(count)),
        }
    }

    /// Runs `check` on every event before any of its handlers; an error makes the event poison
    /// ([`DispatchError::Poison`]: dead-lettered, never retried), like an event that breaks the
    /// schema of a generated type. For schemas known only at run time: the command line's `tail`
    /// checks events against a schema folder this way. Checks run in registration order.
    pub fn checking<F>(mut self, check: F) -> Self
    where
        F: Fn(&RawEnvelope) -> Result<(), DecodeError> + Send + Sync + 'static,
    {
        self.checks.push(Arc::new(check));
        self
    }

    /// Checks that the event is known and decodes it for every matching group.
    fn prepare(&self, raw: &RawEnvelope) -> Result<Vec<Call>, DecodeError> {
        for check in &self.checks {
            check(raw)?;
        }
        let (event_type, version) = (raw.event_type.as_str(), raw.version);
        let typed = |want_version: Option<u32>| {
            self.groups.iter().any(|group| {
                matches!(group.route(), Route::Type { event_type: t, version: v, .. }
                    if *t == event_type && want_version.is_none_or(|want| want == *v))
            }) || self.upcasts.iter().any(|u| {
                u.event_type == event_type && want_version.is_none_or(|want| want == u.from)
            })
        };
        let type_known = self.known.iter().any(|set| (set.knows_type)(event_type)) || typed(None);
        if !type_known && !self.known.is_empty() {
            return Err(DecodeError::UnknownType(event_type.to_owned()));
        }
        // A type nothing declares (with no known set) reaches raw handlers only: no other route
        // matches it.
        let version_known = self
            .known
            .iter()
            .any(|set| (set.info)(event_type, version).is_some())
            || typed(Some(version));
        if type_known && !version_known {
            return Err(DecodeError::UnknownVersion {
                event_type: event_type.to_owned(),
                version,
            });
        }
        let mut calls = Vec::new();
        for group in self
            .groups
            .iter()
            .filter(|group| group.route().matches(raw))
        {
            group.prepare(raw, &mut calls)?;
        }
        self.prepare_upcasts(raw, &mut calls)?;
        Ok(calls)
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Routes<'a>(&'a [Box<dyn ErasedGroup>]);
        impl fmt::Debug for Routes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|g| (g.route(), g.handler_count())))
                    .finish()
            }
        }
        f.debug_struct("Handlers")
            .field("handlers", &Routes(&self.groups))
            .field(
                "known",
                &self.known.iter().map(|set| set.name).collect::<Vec<_>>(),
            )
            .field("upcasts", &self.upcasts)
            .field("checks", &self.checks.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
