//! The consumer's main loop: reads and claims entries, starts them as handler slots free, and
//! on shutdown releases what waits, lets the handlers in flight finish and leaves the group.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use domain_events::Shutdown;
use redis::{RedisError, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::in_flight::{Held, Waiting};
use super::ownership::LeaseTask;
use super::{Delivery, Inner, is_error_code, log_join};
use crate::connection_config::reconnect_backoff;
use crate::error::{Error, is_transient, waiting_for};

impl Inner {
    pub(super) async fn run(self: Arc<Self>, stop: &Shutdown) -> Result<(), Error> {
        tracing::info!(group = %self.group, consumer = %self.consumer, streams = ?self.streams,
            url = %self.config.redacted_url(), "consumer starting");
        if !self.check_layouts(stop).await? || !self.ensure_groups(stop).await? {
            return Ok(());
        }
        // Renews and takes partition leases until the handlers ended (after the main loop).
        let leases = (!self.partitioned.is_empty()).then(|| LeaseTask::spawn(self.clone()));
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        self.recover_own(stop, &permits, &mut tasks).await;

        let mut failures = 0u32;
        let mut next_claim = Instant::now();
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut read_ahead = self.prefetch;
        // Whether the entries waiting were topped up since a handler slot last freed.
        let mut topped_up = false;
        while !stop.is_triggered() {
            while let Some(joined) = tasks.try_join_next() {
                log_join(joined);
            }
            if self
                .start_waiting(&mut waiting, &mut read_ahead, &permits, &mut tasks, stop)
                .await
            {
                // The next entry waits for one of its key to settle.
                tokio::select! {
                    biased;
                    () = stop.triggered() => break,
                    joined = tasks.join_next() => { if let Some(joined) = joined { log_join(joined); } }
                }
                continue;
            }
            let free = permits.available_permits();
            let room = (free + read_ahead).saturating_sub(waiting.len());
            // Top up entries waiting for a slot once they are down to half the read-ahead, with a
            // read that does not block: the slots are busy, and a read of a few entries per
            // freed slot would cost as much as no read-ahead.
            let top_up = !waiting.is_empty() && !topped_up && waiting.len() <= read_ahead / 2;
            if room == 0 || (!waiting.is_empty() && !top_up) {
                // A slot frees when a handler finished (its entry may still be settling).
                tokio::select! {
                    biased;
                    () = stop.triggered() => break,
                    joined = tasks.join_next() => { if let Some(joined) = joined { log_join(joined); } }
                    _ = permits.acquire() => {}
                }
                topped_up = false;
                continue;
            }
            let takeovers = self.takeovers();
            if !takeovers.is_empty() {
                let mut failed = None;
                for tag in takeovers {
                    if failed.is_some() {
                        self.retry_takeover(tag);
                        continue;
                    }
                    match self.take_over(&tag).await {
                        Ok(claimed) => {
                            self.hold(claimed, &mut waiting).await;
                            self.start_reading(&tag);
                        }
                        Err(error) => {
                            self.retry_takeover(tag);
                            failed = Some(error);
                        }
                    }
                }
                if let Some(error) = failed {
                    failures += 1;
                    if self
                        .on_redis_error(&error, failures, "taking a partition over", stop)
                        .await?
                    {
                        break;
                    }
                }
                continue;
            }
            if Instant::now() >= next_claim {
                next_claim = Instant::now() + self.claim_interval;
                match self.claim_idle_entries(room).await {
                    Ok(claimed) => {
                        failures = 0;
                        let any = !claimed.is_empty();
                        self.hold(claimed, &mut waiting).await;
                        if any {
                            continue;
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        if self
                            .on_redis_error(&error, failures, "claiming pending entries", stop)
                            .await?
                        {
                            break;
                        }
                        continue;
                    }
                }
            }
            let block = (!top_up).then(|| {
                self.block
                    .min(next_claim.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1))
            });
            topped_up |= top_up;
            let count = self.batch_size.min(room);
            let read = tokio::select! {
                biased;
                () = stop.triggered() => break,
                read = self.read_new(count, block) => read,
            };
            match read {
                Ok(deliveries) => {
                    if failures > 0 {
                        tracing::info!(group = %self.group, consumer = %self.consumer, "Redis is back, consuming again");
                    }
                    failures = 0;
                    self.hold(deliveries, &mut waiting).await;
                }
                Err(error) => {
                    failures += 1;
                    if self
                        .on_redis_error(&error, failures, "reading new entries", stop)
                        .await?
                    {
                        break;
                    }
                }
            }
        }
        self.shut_down(waiting, tasks).await;
        if let Some(leases) = leases {
            leases.stop().await;
            self.release_all().await;
        }
        self.leave_group().await;
        Ok(())
    }

    /// Claims every entry pending in the group on the stream of the partition `tag` just taken
    /// (those of the consumer that held it before, dead or gone), in stream order.
    async fn take_over(self: &Arc<Self>, tag: &str) -> Result<Vec<super::Delivery>, RedisError> {
        let stream = self.keys.stream(tag);
        let mut cursor = "-".to_owned();
        let mut claimed = Vec::new();
        loop {
            let (mut got, last) = self
                .claim(&stream, Duration::ZERO, None, &cursor, self.batch_size)
                .await?;
            claimed.append(&mut got);
            let Some(last) = last else {
                break;
            };
            cursor = format!("({last}");
        }
        if !claimed.is_empty() {
            tracing::debug!(group = %self.group, consumer = %self.consumer, partition = tag,
                entries = claimed.len(), "took a partition's pending entries over");
        }
        Ok(claimed)
    }

    /// Removes this consumer from the group of each stream where it holds no pending entry
    /// (`XGROUP DELCONSUMER`), so consumers that come and go under new names (every restart of a
    /// service with the default name, every `tail`) leave nothing behind. A consumer with pending
    /// entries stays: they are its until another consumer claims them. Best effort.
    async fn leave_group(&self) {
        let mut conn = self.commands.clone();
        for stream in &self.streams {
            let pending = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&self.group)
                .arg("-")
                .arg("+")
                .arg(1)
                .arg(&self.consumer)
                .query_async::<Vec<Value>>(&mut conn)
                .await;
            let left = match pending {
                Ok(pending) if pending.is_empty() => redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .query_async::<u64>(&mut conn)
                    .await
                    .map(|_| true),
                Ok(_) => Ok(false),
                Err(error) => Err(error),
            };
            match left {
                Ok(true) => tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    "left the group: nothing pending"),
                Ok(false) => {
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    "staying in the group: entries pending")
                }
                Err(error) => {
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream,
                    error = %self.config.error(&error), "could not leave the group")
                }
            }
        }
    }

    /// Releases the entries read ahead and lets the handlers in flight finish and settle, within
    /// the shutdown grace period; what is left when it ends stays pending (delivered again later).
    async fn shut_down(&self, waiting: VecDeque<Waiting>, mut tasks: JoinSet<()>) {
        let deadline = Instant::now() + self.shutdown_grace;
        if !waiting.is_empty() {
            tracing::debug!(group = %self.group, consumer = %self.consumer, waiting = waiting.len(),
                "shutting down: releasing the entries read ahead");
            let release = self.release(waiting.into_iter().map(|w| w.delivery).collect());
            if tokio::time::timeout_at(deadline, release).await.is_err() {
                tracing::warn!(group = %self.group, consumer = %self.consumer,
                    "Redis did not answer the release of the entries read ahead within the shutdown \
                     grace period; they are claimed once idle for the claim time");
            }
        }
        tracing::debug!(group = %self.group, consumer = %self.consumer, in_flight = tasks.len(),
            "shutting down: waiting for the handlers in flight");
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(joined)) => log_join(joined),
                Ok(None) => return,
                Err(_elapsed) => {
                    tracing::warn!(group = %self.group, consumer = %self.consumer, in_flight = tasks.len(),
                        grace = ?self.shutdown_grace, "shutdown grace period over: the entries still in \
                        flight are abandoned; they stay pending and are delivered again");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }

    /// Holds newly read or claimed entries (see [`check_done`](Self::check_done)) to wait for a
    /// slot.
    async fn hold(&self, deliveries: Vec<Delivery>, waiting: &mut VecDeque<Waiting>) {
        let since = Instant::now();
        waiting.extend(
            self.check_done(deliveries)
                .await
                .into_iter()
                .map(|delivery| Waiting { delivery, since }),
        );
    }

    /// Starts the entries waiting, in order, as many as there are free slots. Entries that waited
    /// longer than half the claim idle time are released for claiming instead (another consumer
    /// may claim them soon), and the read-ahead is halved. Returns true when the next entry must
    /// wait for a running one of the same key to settle.
    async fn start_waiting(
        self: &Arc<Self>,
        waiting: &mut VecDeque<Waiting>,
        read_ahead: &mut usize,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        stop: &Shutdown,
    ) -> bool {
        let stale_after = self.claim_idle / 2;
        let mut stale = Vec::new();
        let mut blocked = false;
        while let Some(next) = waiting.front() {
            if let Some(checked) = &next.delivery.checked
                && self.lock_in_flight().is_running(&checked.done_key)
            {
                blocked = true;
                break;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let Some(Waiting { delivery, since }) = waiting.pop_front() else {
                break;
            };
            if since.elapsed() > stale_after {
                drop(permit);
                stale.push(delivery);
                continue;
            }
            self.start(delivery, permit, tasks, stop);
        }
        if !stale.is_empty() {
            *read_ahead /= 2;
            tracing::warn!(group = %self.group, consumer = %self.consumer, entries = stale.len(),
                read_ahead = *read_ahead, "entries read ahead waited too long for a handler slot; \
                released for claiming, reading fewer ahead");
            self.release(stale).await;
        }
        blocked
    }

    /// Lets go of entries held but not run: they stay pending under this consumer, marked idle
    /// for the claim idle time, so any consumer of the group claims them at its next look for
    /// pending entries. Their delivery count is set back to what it was before this consumer took
    /// them (`XCLAIM ... IDLE ... RETRYCOUNT ... JUSTID`): a delivery that ran no handler never
    /// counts toward dead-lettering, however often read-ahead churn releases an entry.
    async fn release(&self, deliveries: Vec<Delivery>) {
        let idle_ms = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let mut by_stream: HashMap<(Arc<str>, u64), Vec<String>> = HashMap::new();
        {
            let mut in_flight = self.lock_in_flight();
            for delivery in deliveries {
                let done_key = delivery.checked.as_ref().map(|c| c.done_key.as_str());
                in_flight.release(&delivery.stream, &delivery.entry.id, done_key, false);
                by_stream
                    .entry((delivery.stream, delivery.deliveries.saturating_sub(1)))
                    .or_default()
                    .push(delivery.entry.id);
            }
        }
        for ((stream, before), ids) in by_stream {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&*stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(&ids)
                .arg("IDLE")
                .arg(idle_ms)
                .arg("RETRYCOUNT")
                .arg(before)
                .arg("JUSTID");
            let mut conn = self.commands.clone();
            if let Err(error) = cmd.query_async::<Value>(&mut conn).await {
                tracing::debug!(group = %self.group, stream = %stream, entries = ids.len(),
                    error = %self.config.error(&error),
                    "could not release entries; they are claimed once idle for the claim time");
            }
        }
    }

    /// Logs a Redis error and waits before the next attempt. Fails for errors that waiting cannot
    /// fix; returns whether a shutdown came meanwhile.
    pub(super) async fn on_redis_error(
        &self,
        error: &RedisError,
        failures: u32,
        doing: &str,
        stop: &Shutdown,
    ) -> Result<bool, Error> {
        let shown = self.config.error(error);
        if is_error_code(error, "CROSSSLOT") {
            // A cluster node reached as one server: one read of several streams needs them in
            // one hash slot. The cluster connection reads them one by one.
            return Err(Error::Config(format!(
                "Redis Cluster refuses to read the streams {} in one command (CROSSSLOT: they hash \
                 to different slots); connect with a redis+cluster:// URL",
                self.streams.join(", ")
            )));
        }
        if is_error_code(error, "NOGROUP") {
            tracing::warn!(group = %self.group, consumer = %self.consumer, error = %shown,
                "consumer group missing (Redis lost its data?), creating it again");
            return self.ensure_groups(stop).await.map(|running| !running);
        }
        if !is_transient(error) {
            tracing::error!(group = %self.group, consumer = %self.consumer, error = %shown, "Redis refused {doing}");
        } else if failures == 1 {
            tracing::warn!(group = %self.group, consumer = %self.consumer, error = %shown, "{doing}: {}, retrying",
                waiting_for(error));
        } else {
            tracing::debug!(group = %self.group, consumer = %self.consumer, error = %shown, failures, "Redis still unavailable");
        }
        Ok(stop.sleep(reconnect_backoff(failures)).await)
    }

    /// Processes `delivery`, held by [`InFlight::hold`], on a new task holding the handler slot
    /// `permit`; lets go of the entry when done.
    ///
    /// [`InFlight::hold`]: super::in_flight::InFlight::hold
    pub(super) fn start(
        self: &Arc<Self>,
        delivery: Delivery,
        permit: OwnedSemaphorePermit,
        tasks: &mut JoinSet<()>,
        stop: &Shutdown,
    ) {
        let stream = delivery.stream.clone();
        let entry_id = delivery.entry.id.clone();
        let done_key = delivery.checked.as_ref().map(|c| c.done_key.clone());
        if let Some(done_key) = &done_key {
            self.lock_in_flight().start(done_key);
        }
        let this = self.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            // Let go of the entry however the task ends (a panicking handler included).
            let _held = Held {
                inner: this.clone(),
                stream,
                entry_id,
                done_key,
            };
            this.process(delivery, &stop, permit).await;
        });
    }
}
