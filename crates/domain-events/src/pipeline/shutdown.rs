//! [`Shutdown`]: the signal that stops a consumer, whatever its transport.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Tells a running consumer to stop. Cheap to clone; triggering is idempotent.
///
/// The consumer finishes the handler runs in progress, starts no new event and no new retry, and
/// returns. Events it holds but has not started are left to the transport (a Redis entry stays
/// pending, a BullMQ job goes back to its queue; the in-memory bus drops what its subscription
/// still buffers).
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A shutdown signal that is not triggered yet.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Asks the consumer to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once [`trigger`](Self::trigger) was called (at once if it already was).
    pub async fn triggered(&self) {
        let mut stop = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` only ends by the trigger.
        if stop.wait_for(|triggered| *triggered).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `duration` unless the shutdown comes first; returns whether it came.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.triggered() => true,
            () = tokio::time::sleep(duration) => false,
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_early_when_the_shutdown_comes() {
        let stop = Shutdown::new();
        assert!(!stop.sleep(Duration::from_millis(10)).await, "slept it out");
        let clone = stop.clone();
        let sleeping = tokio::spawn(async move { clone.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        stop.trigger();
        assert!(sleeping.await.expect("joined"), "woken by the shutdown");
        assert!(stop.is_triggered());
        stop.triggered().await;
    }
}
