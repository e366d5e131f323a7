//! Group commit: requests to Redis that arrive while another of the same kind is in flight wait
//! for it, then go to Redis together as one call.
//!
//! A caller that finds nothing in flight sends at once; while requests have been overlapping, it
//! first yields once, so that requests polled in the same turn (`join_all`, the other tasks of
//! its worker) join its call. A serial caller never waits for anyone else. Callers that come
//! while a call is in flight queue their items; when the call returns, a task sends everything
//! queued as one call and hands each caller its own outcomes; if the caller that sent a call
//! gives up on it (its timeout, a `select!`), a task sends it again for the others. What bounds
//! concurrent emits and acknowledgements is the cost of one script call in Redis, far above the
//! cost of the claim and append (or done record and `XACK`) inside it, so sixty-four concurrent
//! requests cost two script calls instead of sixty-four.
//!
//! Used by [`RedisTransport`](crate::RedisTransport) for publishes and by the consumer for its
//! done records and acknowledgements.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Items sent in one call at most when draining the queue; the rest go in the next call.
const MAX_COALESCED: usize = 1024;

/// What one call's items are sent with.
pub(crate) trait Sink: Clone + Send + Sync + 'static {
    /// What a caller asks for, one per event or entry.
    type Item: Send + 'static;
    /// What one item got.
    type Outcome: Send + 'static;
    /// Why one item, or a whole call, failed.
    type Error: Clone + Send + 'static;

    /// The queue of this sink (shared by its clones).
    fn coalescer(&self) -> &Coalescer<Self>;

    /// Sends `items` to Redis in one round trip: one result per item, in order, or the error
    /// that kept the whole call from Redis.
    ///
    /// Must be safe to call again with the same items: a call whose first caller gave up on it
    /// is sent again by a task for the callers who joined it (a claimed emit finds its own claim
    /// and is reported published; a done record and `XACK` are written twice; an unclaimed
    /// `XADD` may append a second entry, which the consumers' done records skip).
    fn send(&self, items: &[Self::Item]) -> impl Future<Output = Answer<Self>> + Send;

    /// The error of callers whose call was given up (its sender dropped it, or the runtime shut
    /// down) before it answered.
    fn abandoned(&self) -> Self::Error;
}

/// One result per item, or the error of the whole call.
pub(crate) type Answer<S> =
    Result<Vec<Result<<S as Sink>::Outcome, <S as Sink>::Error>>, <S as Sink>::Error>;

/// The requests waiting for the call in flight.
pub(crate) struct Coalescer<S: Sink> {
    state: Mutex<State<S>>,
}

impl<S: Sink> Default for Coalescer<S> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                busy: false,
                overlapping: false,
                queue: Vec::new(),
            }),
        }
    }
}

struct State<S: Sink> {
    /// Whether a call is in flight (a caller's own, or a drain task's).
    busy: bool,
    /// Whether requests have been arriving while others were in flight: set when one queues
    /// behind a call, cleared when a caller's own call went alone and nobody came meanwhile.
    overlapping: bool,
    queue: Vec<Queued<S>>,
}

struct Queued<S: Sink> {
    items: Vec<S::Item>,
    /// How many items the caller sent (`items` is emptied when several callers share a call).
    count: usize,
    reply: oneshot::Sender<Answer<S>>,
}

impl<S: Sink> Coalescer<S> {
    fn lock(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends `items` through `sink`: at once (with what arrives in the same turn) if nothing is in
/// flight, else with the next call. One result per item, in order.
///
/// The items are copied only when they have to wait or may be joined by others; a caller alone
/// sends its own slice.
pub(crate) async fn submit<S: Sink>(sink: &S, items: &[S::Item]) -> Answer<S>
where
    S::Item: Clone,
{
    let queue = |state: &mut State<S>| {
        let (reply, answer) = oneshot::channel();
        state.queue.push(Queued {
            count: items.len(),
            items: items.to_vec(),
            reply,
        });
        answer
    };
    let (answer, lead) = {
        let mut state = sink.coalescer().lock();
        if std::mem::replace(&mut state.busy, true) {
            state.overlapping = true;
            (Some(queue(&mut state)), false)
        } else if state.overlapping {
            (Some(queue(&mut state)), true)
        } else {
            (None, true)
        }
    };
    let Some(answer) = answer else {
        // Alone: nobody has been overlapping, so nobody is expected to join. Dropping `_sender`
        // afterwards hands what queued meanwhile to a task.
        let _sender = Sender {
            sink: Cow::Borrowed(sink),
            taken: Vec::new(),
            items: Vec::new(),
            hand_over: true,
            released: false,
        };
        return sink.send(items).await;
    };
    if lead {
        let mut sender = Sender {
            sink: Cow::Borrowed(sink),
            taken: Vec::new(),
            items: Vec::new(),
            hand_over: true,
            released: false,
        };
        // Lets the requests polled right after this one join its call.
        tokio::task::yield_now().await;
        let callers = sender.send_round().await;
        if callers == 1 {
            let mut state = sink.coalescer().lock();
            if state.queue.is_empty() {
                // Went alone and nobody came meanwhile: the next caller need not yield.
                state.overlapping = false;
            }
        }
        // Dropping `sender` hands what queued meanwhile to a task.
    }
    answer.await.unwrap_or_else(|_| Err(sink.abandoned()))
}

/// Sends queued requests, one call per round; made by the first caller that finds nothing in
/// flight (one round), then by a task (rounds until the queue is empty).
///
/// When dropped (done, or given up by its caller or runtime) it hands a non-empty queue to a new
/// task, or marks the sink free; the callers of a call it abandoned get an error.
struct Sender<'a, S: Sink> {
    /// Borrowed by a caller's sender, owned by a task's.
    sink: Cow<'a, S>,
    /// The requests of the call in flight, and their items, in order.
    taken: Vec<Queued<S>>,
    items: Vec<S::Item>,
    /// Whether a queue left when this is dropped goes to a new task (the first caller's sender),
    /// or is dropped (a task's sender dropped unfinished: its runtime is shutting down, where a
    /// new task would be dropped at once, too).
    hand_over: bool,
    /// Set when a round found the queue empty and marked the sink free, in the same critical
    /// section: from then on a new caller leads its own call, so dropping this must not touch
    /// the queue.
    released: bool,
}

impl<S: Sink> Sender<'_, S> {
    /// Takes up to [`MAX_COALESCED`] items' worth of the queue, sends them as one call and
    /// answers each caller. Returns how many callers shared the call (0: the queue was empty).
    async fn send_round(&mut self) -> usize {
        {
            let mut state = self.sink.coalescer().lock();
            if state.queue.is_empty() {
                state.busy = false;
                self.released = true;
                return 0;
            }
            let mut count = 0;
            let take = state
                .queue
                .iter()
                .take_while(|queued| {
                    let first = count == 0;
                    count += queued.count;
                    first || count <= MAX_COALESCED
                })
                .count();
            self.taken.extend(state.queue.drain(..take));
        }
        for queued in &mut self.taken {
            self.items.append(&mut queued.items);
        }
        if self.taken.len() > 1 {
            tracing::trace!(
                callers = self.taken.len(),
                items = self.items.len(),
                "sending concurrent requests together"
            );
        }
        let results = self.sink.send(&self.items).await;
        self.items.clear();
        let callers = self.taken.len();
        answer(&mut self.taken, results);
        callers
    }

    /// Rounds until the queue is empty.
    async fn drain(mut self) {
        while self.send_round().await > 0 {}
    }
}

/// Answers each caller of `taken` with its share of `results`.
fn answer<S: Sink>(taken: &mut Vec<Queued<S>>, results: Answer<S>) {
    let mut results = results.map(Vec::into_iter);
    for queued in taken.drain(..) {
        let answer = match &mut results {
            Ok(all) => Ok(all.by_ref().take(queued.count).collect()),
            Err(error) => Err(error.clone()),
        };
        // A caller that gave up (its timeout) no longer listens.
        let _ = queued.reply.send(answer);
    }
}

impl<S: Sink> Drop for Sender<'_, S> {
    fn drop(&mut self) {
        if !self.taken.is_empty()
            && self.hand_over
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The caller that sent the call in flight gave up on it (its timeout, a `select!`):
            // a task sends it again and answers the others who joined it. Sending again is what
            // `Sink::send` allows (see there).
            let sink = S::clone(&self.sink);
            let items = std::mem::take(&mut self.items);
            let mut taken = std::mem::take(&mut self.taken);
            runtime.spawn(async move {
                let results = sink.send(&items).await;
                answer(&mut taken, results);
            });
        }
        if self.released {
            return;
        }
        let mut state = self.sink.coalescer().lock();
        if state.queue.is_empty() {
            state.busy = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.hand_over => {
                drop(state);
                // Made before the spawn: a task dropped before it ever ran still frees the queue.
                let next: Sender<'static, S> = Sender {
                    sink: Cow::Owned(S::clone(&self.sink)),
                    taken: Vec::new(),
                    items: Vec::new(),
                    hand_over: false,
                    released: false,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Answers each item with itself, counting calls; with a gate, each call first waits for a
    /// permit of it, else for one turn.
    #[derive(Clone, Default)]
    struct Echo {
        coalescer: Arc<Coalescer<Echo>>,
        calls: Arc<AtomicUsize>,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    }

    impl Echo {
        /// An echo whose calls wait until permits are added to its gate.
        fn gated() -> Self {
            Self {
                gate: Some(Arc::new(tokio::sync::Semaphore::new(0))),
                ..Self::default()
            }
        }
    }

    impl Sink for Echo {
        type Item = u32;
        type Outcome = u32;
        type Error = String;

        fn coalescer(&self) -> &Coalescer<Self> {
            &self.coalescer
        }

        fn send(&self, items: &[u32]) -> impl Future<Output = Answer<Self>> + Send {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = Ok(items.iter().map(|item| Ok(*item)).collect());
            let gate = self.gate.clone();
            async move {
                match gate {
                    Some(gate) => {
                        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                    }
                    None => tokio::task::yield_now().await,
                }
                answer
            }
        }

        fn abandoned(&self) -> String {
            "abandoned".into()
        }
    }

    #[tokio::test]
    async fn a_drain_that_found_the_queue_empty_leaves_the_sink_free() {
        let sink = Echo::default();
        // A drain task's call is in flight.
        sink.coalescer().lock().busy = true;
        let mut drain = Sender {
            sink: Cow::Borrowed(&sink),
            taken: Vec::new(),
            items: Vec::new(),
            hand_over: false,
            released: false,
        };
        assert_eq!(drain.send_round().await, 0);
        // A caller arriving before the drain is gone leads its own call instead of queueing
        // behind a drain that will never send again.
        let answer = tokio::time::timeout(Duration::from_secs(5), submit(&sink, &[7]))
            .await
            .expect("not left waiting");
        assert_eq!(answer, Ok(vec![Ok(7)]));
        drop(drain);
        assert!(!sink.coalescer().lock().busy);
        assert!(sink.coalescer().lock().queue.is_empty());
    }

    #[tokio::test]
    async fn callers_who_joined_a_call_its_sender_gave_up_on_still_get_answers() {
        let sink = Echo::gated();
        // Callers have been overlapping, so the first one waits a turn for others to join.
        sink.coalescer().lock().overlapping = true;
        let leader = tokio::spawn({
            let sink = sink.clone();
            async move { submit(&sink, &[1]).await }
        });
        let follower = tokio::spawn({
            let sink = sink.clone();
            async move { submit(&sink, &[2]).await }
        });
        // The leader yields once, the follower queues, the leader sends both and waits.
        while sink.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        assert!(leader.await.is_err(), "the leader was cancelled");
        sink.gate.as_ref().expect("gated").add_permits(10);
        let answer = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("answered")
            .expect("the follower ran");
        assert_eq!(answer, Ok(vec![Ok(2)]));
        // Sent again for the follower.
        assert_eq!(sink.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn overlapping_callers_share_a_call_and_get_their_own_outcomes() {
        let sink = Echo::default();
        let (a, b, c) = tokio::join!(
            submit(&sink, &[1, 2]),
            submit(&sink, &[3]),
            submit(&sink, &[4, 5, 6])
        );
        assert_eq!(a, Ok(vec![Ok(1), Ok(2)]));
        assert_eq!(b, Ok(vec![Ok(3)]));
        assert_eq!(c, Ok(vec![Ok(4), Ok(5), Ok(6)]));
        // The first went alone; the two that came while it was in flight went together.
        assert_eq!(sink.calls.load(Ordering::SeqCst), 2);
        let state = sink.coalescer().lock();
        assert!(!state.busy && state.queue.is_empty());
    }
}
