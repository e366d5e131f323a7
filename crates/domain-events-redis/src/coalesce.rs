//! Group commit for [`RedisTransport`]: publishes that arrive while another publish of the same
//! transport is in flight wait for it, then go to Redis together as one call.
//!
//! A caller that finds nothing in flight sends its events at once (a serial emitter never waits
//! for anyone). Callers that come meanwhile queue their events; when the call in flight returns,
//! a task sends everything queued as one batch (one script call per category) and hands each
//! caller its own outcomes. Sixty-four concurrent emits thus cost Redis two script calls instead
//! of sixty-four, which is what bounds concurrent emitting (a script call costs Redis far more
//! than a claim and an append inside one).

use std::sync::{Mutex, MutexGuard, PoisonError};

use domain_events::{OutgoingEvent, PublishOutcome};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::transport::RedisTransport;

/// Events sent in one call at most when draining the queue; the rest go in the next call.
const MAX_COALESCED: usize = 1024;

/// What one caller gets back.
type Outcomes = Result<Vec<PublishOutcome>, Error>;

/// The queue of publishes waiting for the call in flight.
#[derive(Default)]
pub(crate) struct Coalescer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether a call is in flight (a caller sending its own events, or a drain task).
    busy: bool,
    queue: Vec<Queued>,
}

struct Queued {
    events: Vec<OutgoingEvent>,
    reply: oneshot::Sender<Outcomes>,
}

impl Coalescer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RedisTransport {
    /// Publishes `events`: at once, together with the publishes that arrive in the same turn,
    /// if nothing is in flight; else queued for the next call.
    pub(crate) async fn publish_coalesced(&self, events: &[OutgoingEvent]) -> Outcomes {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut state = self.coalescer().lock();
            state.queue.push(Queued {
                events: events.to_vec(),
                reply,
            });
            !std::mem::replace(&mut state.busy, true)
        };
        if lead {
            let mut sender = Sender {
                transport: self.clone(),
                taken: Vec::new(),
                hand_over: true,
            };
            // Publishes polled right after this one (`join_all`, other tasks of this worker)
            // join this call instead of waiting for the next.
            tokio::task::yield_now().await;
            sender.send_round().await;
            // Dropping `sender` hands what queued meanwhile to a task.
        }
        answer.await.unwrap_or_else(|_| Err(self.abandoned()))
    }

    fn abandoned(&self) -> Error {
        Error::Unavailable {
            url: self.config().redacted_url().to_owned(),
            message: "the call carrying this event was abandoned (its sender gave up or the \
                      runtime shut down); the event may have been published, and emitting it \
                      again with the same idempotency key is safe"
                .into(),
        }
    }
}

/// Sends queued publishes, one call per round; made by the first caller that finds nothing in
/// flight (one round), then by a task (rounds until the queue is empty).
///
/// When dropped (done, or given up by its caller or runtime) it hands a non-empty queue to a new
/// task, or marks the transport free; the callers of a call it abandoned get an error.
struct Sender {
    transport: RedisTransport,
    /// The publishes of the call in flight.
    taken: Vec<Queued>,
    /// Whether a queue left when this is dropped goes to a new task (the first caller's sender),
    /// or is dropped (a task's sender dropped unfinished: its runtime is shutting down, where a
    /// new task would be dropped at once, too).
    hand_over: bool,
}

impl Sender {
    /// Takes up to [`MAX_COALESCED`] events' worth of the queue, sends them as one call and
    /// answers each caller. Returns false when the queue was empty.
    async fn send_round(&mut self) -> bool {
        {
            let mut state = self.transport.coalescer().lock();
            if state.queue.is_empty() {
                return false;
            }
            let mut count = 0;
            let take = state
                .queue
                .iter()
                .take_while(|queued| {
                    let first = count == 0;
                    count += queued.events.len();
                    first || count <= MAX_COALESCED
                })
                .count();
            self.taken.extend(state.queue.drain(..take));
        }
        let results = if let [only] = self.taken.as_slice() {
            self.transport.publish_now(&only.events).await
        } else {
            let events: Vec<OutgoingEvent> = self
                .taken
                .iter()
                .flat_map(|queued| queued.events.iter().cloned())
                .collect();
            tracing::trace!(
                callers = self.taken.len(),
                events = events.len(),
                "sending concurrent publishes together"
            );
            self.transport.publish_now(&events).await
        };
        let mut results = results.map(Vec::into_iter);
        for queued in self.taken.drain(..) {
            // Each caller gets its own events' outcomes, or the first error among them, named by
            // the event's place among its own.
            let total = queued.events.len();
            let answer = match &mut results {
                Ok(all) => all
                    .by_ref()
                    .take(total)
                    .zip(&queued.events)
                    .enumerate()
                    .map(|(index, (result, event))| {
                        result.map_err(|error| {
                            RedisTransport::event_error(index, total, event, error)
                        })
                    })
                    // Taken whole first: collecting into a `Result` would stop at the first error
                    // and leave this caller's other outcomes to the next caller.
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect(),
                Err(error) => Err(error.clone()),
            };
            // A caller that gave up (its timeout) no longer listens.
            let _ = queued.reply.send(answer);
        }
        true
    }

    /// Rounds until the queue is empty.
    async fn drain(mut self) {
        while self.send_round().await {}
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.transport.coalescer().lock();
        if state.queue.is_empty() {
            state.busy = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.hand_over => {
                drop(state);
                // Made before the spawn: a task dropped before it ever ran still frees the queue.
                let next = Sender {
                    transport: self.transport.clone(),
                    taken: Vec::new(),
                    hand_over: false,
                };
                runtime.spawn(next.drain());
            }
            _ => {
                // Nothing left to send them with: their callers get an error.
                state.busy = false;
                state.queue.clear();
            }
        }
    }
}
