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

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::envelope::{DecodeError, Envelope, RawEnvelope, category_of};
use crate::payload::{EventInfo, EventPayload, EventSet};
use crate::transport::{BoxError, BoxFuture};

/// A handler's failure: any error or message, boxed. Retryable by definition (a consumer retries
/// the event); an event that can never be handled is a [`DispatchError::Poison`] instead.
///
/// `HandlerError` implements [`std::error::Error`], so it cannot also convert from every error
/// type with `?` (that blanket `From` would overlap with `From<HandlerError> for HandlerError`).
/// Convert explicitly: `.map_err(HandlerError::from_error)?`, or build one from a message with
/// [`HandlerError::msg`] (`String`, `&str` and boxed errors also convert with `?`/`into()`).
pub struct HandlerError {
    inner: BoxError,
}

impl HandlerError {
    /// A failure described by `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            inner: message.into().into(),
        }
    }

    /// A failure caused by `error`; its message and sources are kept.
    pub fn from_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }

    /// The underlying error.
    pub fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The underlying error, owned.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        Self::msg(message)
    }
}

impl From<&str> for HandlerError {
    fn from(message: &str) -> Self {
        Self::msg(message)
    }
}

impl From<BoxError> for HandlerError {
    fn from(inner: BoxError) -> Self {
        Self { inner }
    }
}

/// What [`Handlers::dispatch`] did with a readable event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// This many handlers ran, all successfully.
    Handled(usize),
    /// No handler is registered for the event.
    NoHandler,
}

/// Why [`Handlers::dispatch`] did not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The event can never be handled here: its type is unknown (when an event set is known), its
    /// version is not declared, or its payload does not match its schema. Retrying cannot help;
    /// no handler ran.
    #[error("poison event: {0}")]
    Poison(#[source] DecodeError),
    /// A handler failed (or panicked). Retrying may help. Every matching handler ran; this is the
    /// first failure.
    #[error("handler failed: {0}")]
    Failed(#[source] HandlerError),
}

impl DispatchError {
    /// Whether retrying the event may help (a handler failed, the event itself is fine).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DispatchError::Failed(_))
    }
}

type HandlerFn<T> = Arc<dyn Fn(T) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// A handler bound to its decoded event, not started yet.
type Call = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), HandlerError>> + Send>;

/// An event set declared with [`Handlers::knowing`] or [`Handlers::on_category`].
#[derive(Clone, Copy)]
struct KnownSet {
    id: TypeId,
    name: &'static str,
    knows_type: fn(&str) -> bool,
    info: fn(&str, u32) -> Option<&'static EventInfo>,
}

impl KnownSet {
    fn of<E: EventSet>() -> Self {
        Self {
            id: TypeId::of::<E>(),
            name: std::any::type_name::<E>(),
            knows_type: E::knows_type,
            info: E::info,
        }
    }
}

#[derive(Clone, Copy)]
enum Route {
    /// One version of one type, decoded as a payload.
    Type {
        event_type: &'static str,
        version: u32,
        category: &'static str,
    },
    /// The events of a category that an event set declares, decoded as the set.
    Category {
        category: &'static str,
        set: KnownSet,
    },
    /// Every event of a category, undecoded ([`Handlers::on_raw`]).
    Raw { category: &'static str },
}

impl Route {
    fn matches(&self, raw: &RawEnvelope) -> bool {
        match self {
            Route::Type {
                event_type,
                version,
                ..
            } => *event_type == raw.event_type && *version == raw.version,
            Route::Category { category, set } => {
                category_of(&raw.event_type) == Some(*category)
                    && (set.info)(&raw.event_type, raw.version).is_some()
            }
            Route::Raw { category } => category_of(&raw.event_type) == Some(*category),
        }
    }

    fn category(&self) -> &'static str {
        match self {
            Route::Type { category, .. }
            | Route::Category { category, .. }
            | Route::Raw { category } => category,
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Type {
                event_type,
                version,
                ..
            } => write!(f, "{event_type} v{version}"),
            Route::Category { category, set } => write!(f, "category {category} as {}", set.name),
            Route::Raw { category } => write!(f, "category {category} raw"),
        }
    }
}

/// The handlers of one route that take the same decoded type `T`.
struct Group<T> {
    route: Route,
    /// Which registrations share this group: the payload or set type, plus the category.
    key: (TypeId, Option<&'static str>),
    decode: fn(&RawEnvelope) -> Result<T, DecodeError>,
    /// Another copy of a decoded value for the next handler: a clone, or a second decode for
    /// types that are not `Clone`.
    again: fn(&T, &RawEnvelope) -> Result<T, DecodeError>,
    handlers: Vec<HandlerFn<T>>,
}

trait ErasedGroup: Send + Sync {
    fn route(&self) -> &Route;
    fn key(&self) -> (TypeId, Option<&'static str>);
    fn handler_count(&self) -> usize;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Decodes `raw` once and binds it to every handler of the group.
    fn prepare(&self, raw: &RawEnvelope, calls: &mut Vec<Call>) -> Result<(), DecodeError>;
}

impl<T: Send + 'static> ErasedGroup for Group<T> {
    fn route(&self) -> &Route {
        &self.route
    }

    fn key(&self) -> (TypeId, Option<&'static str>) {
        self.key
    }

    fn handler_count(&self) -> usize {
        self.handlers.len()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn prepare(&self, raw: &RawEnvelope, calls: &mut Vec<Call>) -> Result<(), DecodeError> {
        let Some((last, others)) = self.handlers.split_last() else {
            return Ok(());
        };
        let value = (self.decode)(raw)?;
        for handler in others {
            let copy = (self.again)(&value, raw)?;
            let handler = handler.clone();
            calls.push(Box::new(move || handler(copy)));
        }
        let last = last.clone();
        calls.push(Box::new(move || last(value)));
        Ok(())
    }
}

fn clone_value<T: Clone>(value: &T, _: &RawEnvelope) -> Result<T, DecodeError> {
    Ok(value.clone())
}

fn decode_again<E: EventSet>(_: &E, raw: &RawEnvelope) -> Result<E, DecodeError> {
    E::decode(raw)
}

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

/// Starts and awaits one handler, turning a panic into a [`HandlerError`].
async fn run(call: Call) -> Result<(), HandlerError> {
    let future = catch_unwind(AssertUnwindSafe(call)).map_err(panicked)?;
    CatchUnwind(future)
        .await
        .unwrap_or_else(|payload| Err(panicked(payload)))
}

/// The text of a panic's payload (`panic!` with a message gives a `&str` or a `String`).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

fn panicked(payload: Box<dyn Any + Send>) -> HandlerError {
    HandlerError::msg(format!("handler panicked: {}", panic_text(&*payload)))
}

/// Polls a handler's future, catching a panic as an error.
struct CatchUnwind(BoxFuture<'static, Result<(), HandlerError>>);

impl Future for CatchUnwind {
    type Output = Result<Result<(), HandlerError>, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Raw handlers: every event of some categories, undecoded, for tools that work with any schema
/// folder (the command-line `tail`) rather than with generated types.
impl Handlers {
    /// Runs `handler` for every event of each of `categories` (by the category part of its type
    /// string), whatever its type and version, with the envelope as received and the payload
    /// unparsed. Nothing is decoded or checked beyond the envelope, so such a handler never makes
    /// an event poison.
    ///
    /// The poison rules of the other registrations still apply: with a [known](Self::knowing)
    /// event set an undeclared type is poison, and so is a version that no known set or typed
    /// handler declares for a type they know; no handler runs for such an event.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use domain_events::{Handlers, RawEnvelope};
    /// let handlers = Handlers::new().on_raw(["image", "seo"], |event: Arc<RawEnvelope>| async move {
    ///     println!("{} {}", event.event_type, event.payload.get());
    ///     Ok(())
    /// });
    /// assert_eq!(handlers.categories(), vec!["image", "seo"]);
    /// assert!(handlers.handles("seo:anything_at_all"));
    /// ```
    pub fn on_raw<C, F, Fut>(mut self, categories: C, handler: F) -> Self
    where
        C: IntoIterator<Item = &'static str>,
        F: Fn(Arc<RawEnvelope>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler: HandlerFn<Arc<RawEnvelope>> = Arc::new(move |event| Box::pin(handler(event)));
        for category in categories {
            let key = (TypeId::of::<RawEnvelope>(), Some(category));
            self.add(
                Route::Raw { category },
                key,
                shared_raw,
                clone_value,
                handler.clone(),
            );
        }
        self
    }
}

/// The envelope as a raw handler gets it: one shared copy for all of them.
fn shared_raw(raw: &RawEnvelope) -> Result<Arc<RawEnvelope>, DecodeError> {
    Ok(Arc::new(raw.clone()))
}

/// Turns an envelope of an older version into one of a newer version of the same type.
type Convert = Arc<dyn Fn(&RawEnvelope) -> Result<RawEnvelope, DecodeError> + Send + Sync>;

/// An upcast registered with [`Handlers::upcast`].
struct Upcast {
    event_type: &'static str,
    from: u32,
    to: u32,
    convert: Convert,
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
    ///   `convert` panics, the event is poison ([`DispatchError::Poison`]).
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
    fn prepare_upcasts(&self, raw: &RawEnvelope, calls: &mut Vec<Call>) -> Result<(), DecodeError> {
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::test_support::{
        Signup, TestEvent, VariationCompleted, VariationStarted, raw_of, raw_with,
    };

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    fn counting<P: EventPayload>(
        count: &Arc<AtomicUsize>,
    ) -> impl Fn(Envelope<P>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
    {
        let count = count.clone();
        move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_typed_handler_gets_the_decoded_envelope() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handlers = Handlers::new().on({
            let seen = seen.clone();
            move |event: Envelope<VariationCompleted>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .map_err(|_| "poisoned")?
                        .push(event.payload.variation_id);
                    Ok(())
                }
            }
        });
        let got = handlers
            .dispatch(&raw_of(VariationCompleted::new("var-9")))
            .await
            .expect("handled");
        assert_eq!(got, Dispatched::Handled(1));
        assert_eq!(*seen.lock().expect("lock"), vec!["var-9".to_owned()]);

        // Another type of the same category is readable but unhandled.
        let got = handlers
            .dispatch(&raw_of(VariationStarted::new("var-9")))
            .await
            .expect("readable");
        assert_eq!(got, Dispatched::NoHandler);
    }

    #[tokio::test]
    async fn every_matching_handler_runs_typed_and_by_category() {
        let (typed, category) = (counter(), counter());
        let seen_types = Arc::new(Mutex::new(Vec::new()));
        let handlers = Handlers::new()
            .on(counting::<VariationCompleted>(&typed))
            .on(counting::<VariationCompleted>(&typed))
            .on_category::<TestEvent, _, _>("image", {
                let (category, seen_types) = (category.clone(), seen_types.clone());
                move |event: TestEvent| {
                    category.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut seen) = seen_types.lock() {
                        seen.push(event.event_type());
                    }
                    async { Ok(()) }
                }
            });
        let got = handlers
            .dispatch(&raw_of(VariationCompleted::new("v")))
            .await
            .expect("handled");
        assert_eq!(got, Dispatched::Handled(3));
        assert_eq!(typed.load(Ordering::SeqCst), 2);
        assert_eq!(category.load(Ordering::SeqCst), 1);

        let got = handlers
            .dispatch(&raw_of(VariationStarted::new("v")))
            .await
            .expect("handled");
        assert_eq!(got, Dispatched::Handled(1));
        assert_eq!(
            *seen_types.lock().expect("lock"),
            vec!["image:variation_completed", "image:variation_started"]
        );

        // A known event of another category has no handler.
        assert_eq!(
            handlers
                .dispatch(&raw_of(Signup::new("u")))
                .await
                .expect("readable"),
            Dispatched::NoHandler
        );
    }

    #[tokio::test]
    async fn unknown_types_are_poison_only_when_a_set_is_known() {
        let count = counter();
        let raw = raw_with("image:from_the_future", 1, "{}");

        let loose = Handlers::new().on(counting::<VariationCompleted>(&count));
        assert_eq!(
            loose.dispatch(&raw).await.expect("not poison"),
            Dispatched::NoHandler
        );

        let strict = Handlers::new()
            .on(counting::<VariationCompleted>(&count))
            .knowing::<TestEvent>();
        let err = strict.dispatch(&raw).await.expect_err("poison");
        assert!(
            matches!(&err, DispatchError::Poison(DecodeError::UnknownType(t)) if t == "image:from_the_future"),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn unknown_versions_are_poison() {
        let count = counter();
        let v2 = raw_with(
            "image:variation_completed",
            2,
            r#"{"variationId":"v","familiesCompleted":1}"#,
        );
        for handlers in [
            Handlers::new().on(counting::<VariationCompleted>(&count)),
            Handlers::new().knowing::<TestEvent>(),
        ] {
            let err = handlers.dispatch(&v2).await.expect_err("poison");
            assert!(
                matches!(
                    err,
                    DispatchError::Poison(DecodeError::UnknownVersion { version: 2, .. })
                ),
                "{err:?}"
            );
        }
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_invalid_payload_is_poison_and_runs_no_handler() {
        let count = counter();
        let handlers = Handlers::new()
            .on_category::<TestEvent, _, _>("image", {
                let count = count.clone();
                move |_| {
                    count.fetch_add(1, Ordering::SeqCst);
                    async { Ok(()) }
                }
            })
            .on(counting::<VariationCompleted>(&count));
        let raw = raw_with("image:variation_completed", 1, r#"{"variationId":"v"}"#);
        let err = handlers.dispatch(&raw).await.expect_err("poison");
        assert!(
            matches!(
                err,
                DispatchError::Poison(DecodeError::InvalidPayload { .. })
            ),
            "{err:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failing_handler_is_retryable_and_does_not_stop_the_others() {
        let count = counter();
        let handlers = Handlers::new()
            .on(|_: Envelope<Signup>| async { Err(HandlerError::msg("database down")) })
            .on(|_: Envelope<Signup>| async { Err::<(), _>(HandlerError::msg("second failure")) })
            .on(counting::<Signup>(&count));
        let err = handlers
            .dispatch(&raw_of(Signup::new("u")))
            .await
            .expect_err("failed");
        assert!(err.is_retryable());
        assert_eq!(err.to_string(), "handler failed: database down");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_failure() {
        async fn explode(_: Envelope<Signup>) -> Result<(), HandlerError> {
            panic!("boom")
        }
        let sync_panic = Handlers::new().on(
            |_: Envelope<Signup>| -> std::future::Ready<Result<(), HandlerError>> {
                panic!("sync boom")
            },
        );
        let err = sync_panic
            .dispatch(&raw_of(Signup::new("u")))
            .await
            .expect_err("failed");
        assert_eq!(
            err.to_string(),
            "handler failed: handler panicked: sync boom"
        );

        let async_panic = Handlers::new().on(explode);
        let err = async_panic
            .dispatch(&raw_of(Signup::new("u")))
            .await
            .expect_err("failed");
        assert_eq!(err.to_string(), "handler failed: handler panicked: boom");
    }

    #[test]
    fn handles_and_categories() {
        let handlers = Handlers::new()
            .on(|_: Envelope<Signup>| async { Ok(()) })
            .on_category::<TestEvent, _, _>("image", |_| async { Ok(()) })
            .on(|_: Envelope<VariationCompleted>| async { Ok(()) });
        assert_eq!(handlers.categories(), vec!["funnel", "image"]);
        assert!(handlers.handles("funnel:signup"));
        assert!(handlers.handles("image:variation_started"));
        assert!(!handlers.handles("image:unknown"));
        assert!(!handlers.handles("seo:page_queued"));
        let debug = format!("{handlers:?}");
        assert!(
            debug.contains("funnel:signup v1") && debug.contains("category image"),
            "{debug}"
        );
        assert!(Handlers::new().categories().is_empty());
    }

    #[test]
    fn handler_errors_keep_their_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);

        let err = HandlerError::from_error(Outer(std::io::Error::other("inner")));
        assert_eq!(err.to_string(), "outer");
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "inner");
        assert!(err.as_error().is::<Outer>());
        assert_eq!(HandlerError::from("plain").to_string(), "plain");
        assert_eq!(
            HandlerError::from(String::from("owned"))
                .into_inner()
                .to_string(),
            "owned"
        );
    }
}

#[cfg(test)]
mod raw_tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::test_support::{Signup, TestEvent, VariationCompleted, raw_of, raw_with};

    /// A raw handler recording the type strings it saw.
    fn recording(
        seen: &Arc<Mutex<Vec<String>>>,
    ) -> impl Fn(Arc<RawEnvelope>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
    {
        let seen = seen.clone();
        move |event| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(event.event_type.clone());
            }
            std::future::ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn raw_handlers_take_every_event_of_their_categories_undecoded() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handlers = Handlers::new().on_raw(["image", "seo"], recording(&seen));
        assert_eq!(handlers.categories(), vec!["image", "seo"]);
        assert!(handlers.handles("image:from_the_future") && !handlers.handles("funnel:signup"));

        // Any type, any version, any payload of the categories; the payload stays as received.
        let odd = raw_with("image:from_the_future", 7, r#"{ "not": "checked" }"#);
        assert_eq!(
            handlers.dispatch(&odd).await.expect("handled"),
            Dispatched::Handled(1)
        );
        assert_eq!(
            handlers
                .dispatch(&raw_of(VariationCompleted::new("v")))
                .await
                .expect("handled"),
            Dispatched::Handled(1)
        );
        // Another category is not theirs.
        assert_eq!(
            handlers
                .dispatch(&raw_of(Signup::new("u")))
                .await
                .expect("readable"),
            Dispatched::NoHandler
        );
        assert_eq!(
            *seen.lock().expect("lock"),
            vec!["image:from_the_future", "image:variation_completed"]
        );
        assert!(format!("{handlers:?}").contains("category image raw"));
    }

    #[tokio::test]
    async fn raw_handlers_run_beside_typed_ones_and_keep_the_poison_rules() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handlers = Handlers::new()
            .on(|_: Envelope<VariationCompleted>| async { Ok(()) })
            .on_raw(["image"], recording(&seen))
            .on_raw(["image"], recording(&seen))
            .knowing::<TestEvent>();
        let got = handlers
            .dispatch(&raw_of(VariationCompleted::new("v")))
            .await
            .expect("handled");
        assert_eq!(got, Dispatched::Handled(3));

        // A known set makes an undeclared type poison, raw handler or not; none runs.
        let err = handlers
            .dispatch(&raw_with("image:from_the_future", 1, "{}"))
            .await
            .expect_err("poison");
        assert!(
            matches!(err, DispatchError::Poison(DecodeError::UnknownType(_))),
            "{err:?}"
        );
        // An invalid payload is poison for the typed handler, so nothing runs.
        let err = handlers
            .dispatch(&raw_with("image:variation_completed", 1, "{}"))
            .await
            .expect_err("poison");
        assert!(
            matches!(
                err,
                DispatchError::Poison(DecodeError::InvalidPayload { .. })
            ),
            "{err:?}"
        );
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn a_failing_raw_handler_is_retryable() {
        let handlers = Handlers::new().on_raw(["image"], |_| async {
            Err::<(), _>(HandlerError::msg("stdout closed"))
        });
        let err = handlers
            .dispatch(&raw_of(VariationCompleted::new("v")))
            .await
            .expect_err("failed");
        assert!(err.is_retryable());
    }
}

#[cfg(test)]
mod upcast_tests {
    use std::sync::Mutex;

    use serde::{Deserialize, Serialize};

    use super::*;
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

#[cfg(test)]
mod check_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::test_support::{Signup, raw_of};

    #[tokio::test]
    async fn an_event_a_check_refuses_is_poison_and_runs_no_handler() {
        let runs = Arc::new(AtomicUsize::new(0));
        let handlers = Handlers::new()
            .on_raw(["funnel"], {
                let runs = runs.clone();
                move |_: Arc<RawEnvelope>| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    async { Ok(()) }
                }
            })
            .checking(|raw| {
                if raw.idempotency_key.ends_with("u2") {
                    Err(DecodeError::UnknownType(raw.event_type.clone()))
                } else {
                    Ok(())
                }
            });
        let accepted = handlers.dispatch(&raw_of(Signup::new("u1"))).await;
        assert!(
            matches!(accepted, Ok(Dispatched::Handled(1))),
            "{accepted:?}"
        );
        let refused = handlers.dispatch(&raw_of(Signup::new("u2"))).await;
        assert!(
            matches!(
                refused,
                Err(DispatchError::Poison(DecodeError::UnknownType(_)))
            ),
            "{refused:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(format!("{handlers:?}").contains("checks: 1"));
    }
}
