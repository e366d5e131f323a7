//! [`ConsumerHandle`]: a consumer running on its own task, the same for every transport.

use std::fmt;
use std::future::Future;

use tokio::task::JoinHandle;

use super::Pipeline;
use super::shutdown::Shutdown;
use super::stats::ConsumerStats;
use crate::handlers::panic_text;

/// A consumer's task ended by a panic (a bug in the consumer or in code it called outside a
/// handler; a panicking handler is caught and counted as a failed attempt instead).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the consumer of group `{group}` panicked: {message}")]
pub struct ConsumerPanicked {
    /// The consumer group.
    pub group: String,
    /// The panic's message, when it had one.
    pub message: String,
    /// The counters when the task ended.
    pub stats: ConsumerStats,
}

/// A consumer running on its own Tokio task, made by the `spawn` of every consumer (memory, Redis,
/// BullMQ). [`shutdown`](Self::shutdown) and [`join`](Self::join) end with the final counters, or
/// with the error `E` the consumer ended with, a panic of its task included
/// ([`ConsumerPanicked`]): never with counters when the task did not finish normally.
///
/// Dropping the handle leaves the consumer running.
pub struct ConsumerHandle<E = ConsumerPanicked> {
    pipeline: Pipeline,
    task: JoinHandle<Result<ConsumerStats, E>>,
}

impl<E: From<ConsumerPanicked> + Send + 'static> ConsumerHandle<E> {
    /// Runs `consumer` on a new task. `pipeline` is the one it processes events with: its
    /// counters and shutdown signal are the handle's. For consumers of other transports.
    pub fn spawn(
        consumer: impl Future<Output = Result<ConsumerStats, E>> + Send + 'static,
        pipeline: &Pipeline,
    ) -> Self {
        Self {
            pipeline: pipeline.clone(),
            task: tokio::spawn(consumer),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ConsumerStats {
        self.pipeline.stats()
    }

    /// A handle that stops the consumer when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.pipeline.shutdown_handle()
    }

    /// Whether the consumer has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the consumer gracefully (it finishes and settles what is in flight) and returns what
    /// it ended with.
    pub async fn shutdown(self) -> Result<ConsumerStats, E> {
        self.pipeline.shutdown_handle().trigger();
        self.join().await
    }

    /// Waits until the consumer stops (by itself, or by a [`Shutdown`]) and returns what it
    /// ended with.
    pub async fn join(self) -> Result<ConsumerStats, E> {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(error) => {
                let message = if error.is_panic() {
                    panic_text(&*error.into_panic())
                } else {
                    "the task was cancelled".to_owned()
                };
                let panicked = ConsumerPanicked {
                    group: self.pipeline.group().to_owned(),
                    message,
                    stats: self.pipeline.stats(),
                };
                tracing::error!(group = %panicked.group, error = %panicked.message, "consumer task ended abnormally");
                Err(panicked.into())
            }
        }
    }
}

impl<E> fmt::Debug for ConsumerHandle<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("group", &self.pipeline.group())
            .field("stats", &self.pipeline.stats())
            .field("finished", &self.task.is_finished())
            .finish()
    }
}
