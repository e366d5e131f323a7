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

use crate::envelope::{DecodeError, Envelope, RawEnvelope};
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
        Self { inner: message.into().into() }
    }

    /// A failure caused by `error`; its message and sources are kept.
    pub fn from_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self { inner: Box::new(error) }
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
    Type { event_type: &'static str, version: u32, category: &'static str },
    /// The events of a category that an event set declares, decoded as the set.
    Category { category: &'static str, set: KnownSet },
}

impl Route {
    fn matches(&self, raw: &RawEnvelope) -> bool {
        match self {
            Route::Type { event_type, version, .. } => *event_type == raw.event_type && *version == raw.version,
            Route::Category { category, set } => {
                category_of(&raw.event_type) == Some(*category) && (set.info)(&raw.event_type, raw.version).is_some()
            }
        }
    }

    fn category(&self) -> &'static str {
        match self {
            Route::Type { category, .. } | Route::Category { category, .. } => category,
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Type { event_type, version, .. } => write!(f, "{event_type} v{version}"),
            Route::Category { category, set } => write!(f, "category {category} as {}", set.name),
        }
    }
}

/// The category of a type string, `<category>:<name>`.
fn category_of(event_type: &str) -> Option<&str> {
    event_type.split_once(':').map(|(category, _)| category)
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
/// [`dispatch`](Self::dispatch) raw envelopes.
///
/// Handlers run at least once per event: a consumer retries an event whose handler failed, running
/// all its handlers again, so handlers should be idempotent.
#[derive(Default)]
pub struct Handlers {
    groups: Vec<Box<dyn ErasedGroup>>,
    known: Vec<KnownSet>,
}

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
        let route = Route::Type { event_type: P::TYPE, version: P::VERSION, category: P::CATEGORY };
        let handler: HandlerFn<Envelope<P>> = Arc::new(move |event| Box::pin(handler(event)));
        self.add(route, (TypeId::of::<P>(), None), |raw| raw.decode::<P>(), clone_value, handler);
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
        let route = Route::Category { category, set: KnownSet::of::<E>() };
        let handler: HandlerFn<E> = Arc::new(move |event| Box::pin(handler(event)));
        self.add(route, (TypeId::of::<E>(), Some(category)), E::decode, decode_again::<E>, handler);
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
        self.groups.push(Box::new(Group { route, key, decode, again, handlers: vec![handler] }));
    }

    /// Whether some handler runs for events of `event_type` (in at least one version).
    pub fn handles(&self, event_type: &str) -> bool {
        self.groups.iter().any(|group| match group.route() {
            Route::Type { event_type: t, .. } => *t == event_type,
            Route::Category { category, set } => {
                category_of(event_type) == Some(*category) && (set.knows_type)(event_type)
            }
        })
    }

    /// The categories the handlers need, sorted: the streams a consumer has to read.
    pub fn categories(&self) -> Vec<&'static str> {
        let mut categories: Vec<_> = self.groups.iter().map(|group| group.route().category()).collect();
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

    /// Checks that the event is known and decodes it for every matching group.
    fn prepare(&self, raw: &RawEnvelope) -> Result<Vec<Call>, DecodeError> {
        let (event_type, version) = (raw.event_type.as_str(), raw.version);
        let typed = |want_version: Option<u32>| {
            self.groups.iter().any(|group| {
                matches!(group.route(), Route::Type { event_type: t, version: v, .. }
                    if *t == event_type && want_version.is_none_or(|want| want == *v))
            })
        };
        let type_known = self.known.iter().any(|set| (set.knows_type)(event_type)) || typed(None);
        if !type_known {
            return if self.known.is_empty() {
                Ok(Vec::new())
            } else {
                Err(DecodeError::UnknownType(event_type.to_owned()))
            };
        }
        let version_known = self.known.iter().any(|set| (set.info)(event_type, version).is_some()) || typed(Some(version));
        if !version_known {
            return Err(DecodeError::UnknownVersion { event_type: event_type.to_owned(), version });
        }
        let mut calls = Vec::new();
        for group in self.groups.iter().filter(|group| group.route().matches(raw)) {
            group.prepare(raw, &mut calls)?;
        }
        Ok(calls)
    }
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Routes<'a>(&'a [Box<dyn ErasedGroup>]);
        impl fmt::Debug for Routes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.iter().map(|g| (g.route(), g.handler_count()))).finish()
            }
        }
        f.debug_struct("Handlers")
            .field("handlers", &Routes(&self.groups))
            .field("known", &self.known.iter().map(|set| set.name).collect::<Vec<_>>())
            .finish()
    }
}

/// Starts and awaits one handler, turning a panic into a [`HandlerError`].
async fn run(call: Call) -> Result<(), HandlerError> {
    let future = catch_unwind(AssertUnwindSafe(call)).map_err(panicked)?;
    CatchUnwind(future).await.unwrap_or_else(|payload| Err(panicked(payload)))
}

fn panicked(payload: Box<dyn Any + Send>) -> HandlerError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned());
    HandlerError::msg(format!("handler panicked: {message}"))
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::test_support::{Signup, TestEvent, VariationCompleted, VariationStarted, raw_of, raw_with};

    fn counter() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    fn counting<P: EventPayload>(
        count: &Arc<AtomicUsize>,
    ) -> impl Fn(Envelope<P>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static {
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
                    seen.lock().map_err(|_| "poisoned")?.push(event.payload.variation_id);
                    Ok(())
                }
            }
        });
        let got = handlers.dispatch(&raw_of(VariationCompleted::new("var-9"))).await.expect("handled");
        assert_eq!(got, Dispatched::Handled(1));
        assert_eq!(*seen.lock().expect("lock"), vec!["var-9".to_owned()]);

        // Another type of the same category is readable but unhandled.
        let got = handlers.dispatch(&raw_of(VariationStarted::new("var-9"))).await.expect("readable");
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
        let got = handlers.dispatch(&raw_of(VariationCompleted::new("v"))).await.expect("handled");
        assert_eq!(got, Dispatched::Handled(3));
        assert_eq!(typed.load(Ordering::SeqCst), 2);
        assert_eq!(category.load(Ordering::SeqCst), 1);

        let got = handlers.dispatch(&raw_of(VariationStarted::new("v"))).await.expect("handled");
        assert_eq!(got, Dispatched::Handled(1));
        assert_eq!(*seen_types.lock().expect("lock"), vec!["image:variation_completed", "image:variation_started"]);

        // A known event of another category has no handler.
        assert_eq!(handlers.dispatch(&raw_of(Signup::new("u"))).await.expect("readable"), Dispatched::NoHandler);
    }

    #[tokio::test]
    async fn unknown_types_are_poison_only_when_a_set_is_known() {
        let count = counter();
        let raw = raw_with("image:from_the_future", 1, "{}");

        let loose = Handlers::new().on(counting::<VariationCompleted>(&count));
        assert_eq!(loose.dispatch(&raw).await.expect("not poison"), Dispatched::NoHandler);

        let strict = Handlers::new().on(counting::<VariationCompleted>(&count)).knowing::<TestEvent>();
        let err = strict.dispatch(&raw).await.expect_err("poison");
        assert!(matches!(&err, DispatchError::Poison(DecodeError::UnknownType(t)) if t == "image:from_the_future"), "{err:?}");
        assert!(!err.is_retryable());
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn unknown_versions_are_poison() {
        let count = counter();
        let v2 = raw_with("image:variation_completed", 2, r#"{"variationId":"v","familiesCompleted":1}"#);
        for handlers in [
            Handlers::new().on(counting::<VariationCompleted>(&count)),
            Handlers::new().knowing::<TestEvent>(),
        ] {
            let err = handlers.dispatch(&v2).await.expect_err("poison");
            assert!(matches!(err, DispatchError::Poison(DecodeError::UnknownVersion { version: 2, .. })), "{err:?}");
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
        assert!(matches!(err, DispatchError::Poison(DecodeError::InvalidPayload { .. })), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_failing_handler_is_retryable_and_does_not_stop_the_others() {
        let count = counter();
        let handlers = Handlers::new()
            .on(|_: Envelope<Signup>| async { Err(HandlerError::msg("database down")) })
            .on(|_: Envelope<Signup>| async { Err::<(), _>(HandlerError::msg("second failure")) })
            .on(counting::<Signup>(&count));
        let err = handlers.dispatch(&raw_of(Signup::new("u"))).await.expect_err("failed");
        assert!(err.is_retryable());
        assert_eq!(err.to_string(), "handler failed: database down");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_failure() {
        async fn explode(_: Envelope<Signup>) -> Result<(), HandlerError> {
            panic!("boom")
        }
        let sync_panic = Handlers::new().on(|_: Envelope<Signup>| -> std::future::Ready<Result<(), HandlerError>> {
            panic!("sync boom")
        });
        let err = sync_panic.dispatch(&raw_of(Signup::new("u"))).await.expect_err("failed");
        assert_eq!(err.to_string(), "handler failed: handler panicked: sync boom");

        let async_panic = Handlers::new().on(explode);
        let err = async_panic.dispatch(&raw_of(Signup::new("u"))).await.expect_err("failed");
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
        assert!(debug.contains("funnel:signup v1") && debug.contains("category image"), "{debug}");
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
        assert_eq!(HandlerError::from(String::from("owned")).into_inner().to_string(), "owned");
    }
}
