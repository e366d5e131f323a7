//! Running one handler bound to its event: a panic, when the handler is called or while it is
//! polled, becomes a [`HandlerError`].

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::HandlerError;
use crate::transport::BoxFuture;

/// A handler bound to its decoded event, not started yet.
pub(super) type Call = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), HandlerError>> + Send>;

/// Starts and awaits one handler, turning a panic into a [`HandlerError`].
pub(super) async fn run(call: Call) -> Result<(), HandlerError> {
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
