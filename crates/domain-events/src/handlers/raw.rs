//! [`Handlers::on_raw`]: handlers of every event of some categories, undecoded.

use std::any::TypeId;
use std::future::Future;
use std::sync::Arc;

use super::Handlers;
use super::error::HandlerError;
use super::route::{HandlerFn, Route, clone_value};
use crate::envelope::{DecodeError, RawEnvelope};

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::envelope::Envelope;
    use crate::handlers::{DispatchError, Dispatched};
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
