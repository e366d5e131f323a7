//! One entry through the [`Pipeline`](domain_events::Pipeline), and its settlement by the
//! verdict: acknowledgement with the done record, plain acknowledgement, dead letter, or left
//! pending.

use std::sync::Arc;
use std::task::Poll;

use domain_events::{Incoming, RawEnvelope, Settle, Shutdown, Verdict};
use redis::{RedisError, Value};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Checked, Delivery, Inner};
use crate::acker::Ack;
use crate::connection::Connection;
use crate::connection_config::reconnect_backoff;
use crate::entry::Entry;
use crate::error::{is_transient, waiting_for};
use crate::scripts::DEAD_LETTER_SCRIPT;

/// Attempts to settle (acknowledge or dead-letter) an entry once a shutdown was asked for.
const SETTLE_ATTEMPTS_AFTER_STOP: u32 = 3;

/// What became of an entry's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Done,
    /// Left pending (Redis refused or stayed away); it will be delivered again.
    Pending,
}

impl Inner {
    /// Runs a held entry through the [`Pipeline`] and settles it by the verdict.
    ///
    /// [`Pipeline`]: domain_events::Pipeline
    pub(super) async fn process(
        &self,
        delivery: Delivery,
        stop: &Shutdown,
        permit: OwnedSemaphorePermit,
    ) {
        let Delivery {
            stream,
            entry,
            deliveries,
            checked,
        } = delivery;
        if entry.fields.is_none() {
            // Deleted from the stream while pending: no event to run, nothing to count.
            self.settle(stop, &stream, &entry.id, |conn| {
                self.xack(conn, &stream, &entry.id)
            })
            .await;
            return;
        }
        let (raw, done_key, known_done) = match checked {
            Some(Checked {
                raw,
                done_key,
                done,
            }) => (Ok(raw), Some(done_key), done),
            None => {
                let raw = match entry.field("event") {
                    None => Err("entry has no `event` field".to_owned()),
                    Some(event) => RawEnvelope::from_slice(event).map_err(|e| e.to_string()),
                };
                let done_key = raw.as_ref().ok().map(|raw| self.done_key(&stream, raw));
                (raw, done_key, None)
            }
        };
        let incoming = match &raw {
            Ok(raw) => Incoming::decoded(raw).known_done(known_done),
            Err(reason) => Incoming::unreadable(reason.clone()),
        }
        .delivery(deliveries, Some(u64::from(self.max_deliveries)));
        let settle = EntrySettle {
            inner: self,
            stop,
            stream: &stream,
            entry: &entry,
            deliveries,
            done_key: done_key.as_deref(),
            event_id: raw.as_ref().ok().map(|raw| raw.event_id),
            permit: Some(permit),
        };
        let span =
            tracing::debug_span!("entry", stream = %stream, entry_id = %entry.id, deliveries);
        self.pipeline
            .process(incoming, settle)
            .instrument(span)
            .await;
    }

    /// The group's done record key of `raw`, an event of `stream`.
    fn done_key(&self, stream: &str, raw: &RawEnvelope) -> String {
        let category = self.keys.category_of_stream(stream).unwrap_or_default();
        self.keys.done(category, &self.group, &raw.idempotency_key)
    }

    /// Acknowledges an entry.
    fn xack(
        &self,
        mut conn: Connection,
        stream: &str,
        entry_id: &str,
    ) -> impl std::future::Future<Output = Result<(), RedisError>> + use<> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(&self.group).arg(entry_id);
        async move { cmd.query_async::<()>(&mut conn).await }
    }

    /// Whether the done record exists; `None` if Redis stayed unreachable (or a shutdown came).
    async fn is_done(&self, stop: &Shutdown, done_key: &str) -> Option<bool> {
        let mut failures = 0;
        loop {
            let mut conn = self.commands.clone();
            match redis::cmd("EXISTS")
                .arg(done_key)
                .query_async::<u64>(&mut conn)
                .await
            {
                Ok(n) => return Some(n > 0),
                Err(error) => {
                    failures += 1;
                    let shown = self.config.error(&error);
                    if !is_transient(&error) || stop.is_triggered() || failures >= 10 {
                        tracing::warn!(group = %self.group, error = %shown, "cannot check the done record, entry left pending");
                        return None;
                    }
                    if stop.sleep(reconnect_backoff(failures)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Resets the idle time of an entry this consumer holds (`XCLAIM ... JUSTID`, which Redis
    /// allows also when it refuses writes for lack of memory, and which leaves the delivery count
    /// alone), so other consumers of the group do not claim it while its outcome waits to be
    /// settled. Best effort: if Redis does not answer, it does not take writes either.
    async fn touch(&self, stream: &str, entry_id: &str) {
        let mut conn = self.commands.clone();
        let touched = redis::cmd("XCLAIM")
            .arg(stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(entry_id)
            .arg("JUSTID")
            .query_async::<Value>(&mut conn)
            .await;
        if let Err(error) = touched {
            tracing::debug!(group = %self.group, stream, entry_id, error = %self.config.error(&error),
                "could not keep the entry from being claimed");
        }
    }

    /// Copies the entry to the dead-letter stream and acknowledges it (one script).
    async fn dead_letter(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry: &Entry,
        deliveries: u64,
        reason: &str,
    ) -> Settled {
        let dlq = self.dlq_of(stream);
        let settled = self
            .settle(stop, stream, &entry.id, |mut conn| {
                let mut invocation = DEAD_LETTER_SCRIPT.prepare_invoke();
                invocation
                    .key(stream)
                    .key(&dlq)
                    .arg(&self.group)
                    .arg(&entry.id)
                    .arg(reason)
                    .arg(deliveries)
                    .arg(self.config.max_len());
                async move { invocation.invoke_async::<Value>(&mut conn).await.map(drop) }
            })
            .await;
        if settled == Settled::Done {
            tracing::info!(group = %self.group, dead_letters = %dlq, "entry dead-lettered");
        }
        settled
    }

    /// Runs a settling step (ack, done+ack, dead letter), retrying while Redis is unreachable
    /// (a few attempts only once a shutdown was asked for).
    async fn settle<F, Fut>(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry_id: &str,
        step: F,
    ) -> Settled
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>>,
    {
        self.settle_releasing(stop, stream, entry_id, None, step)
            .await
    }

    /// [`settle`](Self::settle), giving back the handler slot `release` as soon as the first
    /// attempt is on its way (polled once: sent, or queued for the next acknowledgement call), so
    /// the next entry can start while this one is acknowledged. An entry of the same key waits
    /// until this one settled ([`InFlight`]), so its done check sees this step's write.
    ///
    /// [`InFlight`]: super::in_flight::InFlight
    async fn settle_releasing<F, Fut>(
        &self,
        stop: &Shutdown,
        stream: &str,
        entry_id: &str,
        mut release: Option<OwnedSemaphorePermit>,
        step: F,
    ) -> Settled
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<(), RedisError>>,
    {
        let mut failures = 0;
        let mut after_stop = 0;
        let mut touched = Instant::now();
        loop {
            let attempt = step(self.commands.clone());
            let result = match release.take() {
                None => attempt.await,
                Some(permit) => {
                    let mut attempt = std::pin::pin!(attempt);
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(attempt.as_mut().poll(cx))).await;
                    drop(permit);
                    match first {
                        Poll::Ready(result) => result,
                        Poll::Pending => attempt.await,
                    }
                }
            };
            match result {
                Ok(()) => return Settled::Done,
                Err(error) => {
                    failures += 1;
                    let shown = self.config.error(&error);
                    if !is_transient(&error) {
                        tracing::error!(group = %self.group, stream, entry_id, error = %shown,
                            "Redis refused to settle the entry; it stays pending");
                        return Settled::Pending;
                    }
                    if stop.is_triggered() {
                        after_stop += 1;
                        if after_stop > SETTLE_ATTEMPTS_AFTER_STOP {
                            tracing::warn!(group = %self.group, stream, entry_id, error = %shown,
                                "shutting down while {}: the entry stays pending", waiting_for(&error));
                            return Settled::Pending;
                        }
                        tokio::time::sleep(reconnect_backoff(after_stop)).await;
                    } else {
                        // The outcome is kept here (the entry stays held, so this consumer does
                        // not claim it) and settled once Redis accepts it: a handled event never
                        // runs again because Redis refused its done record for a while.
                        if failures == 1 {
                            tracing::warn!(group = %self.group, stream, entry_id, error = %shown,
                                "settling an entry: {}; keeping its outcome and trying again",
                                waiting_for(&error));
                        }
                        if touched.elapsed() >= self.claim_idle / 3 {
                            touched = Instant::now();
                            self.touch(stream, entry_id).await;
                        }
                        stop.sleep(reconnect_backoff(failures)).await;
                    }
                }
            }
        }
    }
}

/// How a Redis stream entry is settled by its [`Verdict`].
struct EntrySettle<'a> {
    inner: &'a Inner,
    stop: &'a Shutdown,
    stream: &'a Arc<str>,
    entry: &'a Entry,
    deliveries: u64,
    /// `None` when the entry holds no envelope.
    done_key: Option<&'a str>,
    event_id: Option<domain_events::Uuid>,
    /// The handler slot, given back as soon as a handled entry's acknowledgement is on its way.
    permit: Option<OwnedSemaphorePermit>,
}

impl Settle for EntrySettle<'_> {
    async fn is_done(&self, _: &RawEnvelope) -> Option<bool> {
        match self.done_key {
            Some(done_key) => self.inner.is_done(self.stop, done_key).await,
            None => Some(false),
        }
    }

    async fn settle(self, verdict: &Verdict) -> bool {
        let EntrySettle {
            inner,
            stop,
            stream,
            entry,
            deliveries,
            done_key,
            event_id,
            permit,
        } = self;
        let settled = match verdict {
            Verdict::Handled { .. } => {
                let (Some(done_key), Some(event_id)) = (done_key, event_id) else {
                    return false;
                };
                inner
                    .settle_releasing(stop, stream, &entry.id, permit, |_| {
                        inner.acker.ack(Ack {
                            stream: stream.clone(),
                            entry_id: entry.id.clone(),
                            done_key: done_key.to_owned(),
                            event_id,
                        })
                    })
                    .await
            }
            Verdict::Duplicate | Verdict::Unhandled => {
                inner
                    .settle(stop, stream, &entry.id, |conn| {
                        inner.xack(conn, stream, &entry.id)
                    })
                    .await
            }
            verdict if verdict.is_dead_letter() => {
                let reason = verdict.reason().unwrap_or("dead-lettered");
                inner
                    .dead_letter(stop, stream, entry, deliveries, reason)
                    .await
            }
            // Left pending: delivered again once idle for the claim time.
            _ => Settled::Pending,
        };
        settled == Settled::Done
    }
}
