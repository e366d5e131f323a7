//! Taking entries from Redis: the group's creation, reads of new entries, claims of idle ones
//! (and of this consumer's own after a restart), entries over the size limit dead-lettered inside
//! Redis, and the done checks of a batch.

use std::sync::Arc;
use std::time::Duration;

use domain_events::{RawEnvelope, Shutdown};
use futures_util::future::join_all;
use redis::{RedisError, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Checked, Delivery, Inner, is_error_code, log_join};
use crate::connection_config::reconnect_backoff;
use crate::entry::{DeadLettered, Entry, entry_size, parse_pending, parse_read, parse_scripted};
use crate::error::{Error, is_transient, waiting_for};
use crate::scripts::{CLAIM, CLAIM_SCRIPT, DEAD_LETTER_SCRIPT, READ, READ_SCRIPT, send_calls};

impl Inner {
    /// Creates the group on every stream (and the streams) unless it exists. Waits for Redis while
    /// it is unreachable; returns false if a shutdown came first.
    pub(super) async fn ensure_groups(&self, stop: &Shutdown) -> Result<bool, Error> {
        let mut failures = 0;
        'retry: loop {
            if stop.is_triggered() {
                return Ok(false);
            }
            for stream in &self.streams {
                let mut conn = self.commands.clone();
                let created = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(self.start_from.id())
                    .arg("MKSTREAM")
                    .query_async::<()>(&mut conn)
                    .await;
                match created {
                    Ok(()) => {
                        tracing::debug!(group = %self.group, stream = %stream, "consumer group created")
                    }
                    Err(error) if is_error_code(&error, "BUSYGROUP") => {}
                    Err(error) if is_transient(&error) => {
                        failures += 1;
                        let shown = self.config.error(&error);
                        if failures == 1 {
                            tracing::warn!(group = %self.group, error = %shown, "creating the consumer group: {}, waiting",
                                waiting_for(&error));
                        }
                        if stop.sleep(reconnect_backoff(failures)).await {
                            return Ok(false);
                        }
                        continue 'retry;
                    }
                    Err(error) => return Err(self.config.error(&error)),
                }
            }
            return Ok(true);
        }
    }

    /// Takes back the entries still pending for this consumer's name (a restart under the same
    /// name) and processes them before reading new ones.
    pub(super) async fn recover_own(
        self: &Arc<Self>,
        stop: &Shutdown,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
    ) {
        for stream in self.reading().iter() {
            let mut cursor = "-".to_owned();
            let mut failures = 0;
            loop {
                if stop.is_triggered() {
                    return;
                }
                while permits.available_permits() == 0 {
                    if let Some(joined) = tasks.join_next().await {
                        log_join(joined);
                    }
                }
                let count = self.batch_size.min(permits.available_permits());
                match self
                    .claim(stream, Duration::ZERO, Some(&self.consumer), &cursor, count)
                    .await
                {
                    Ok((claimed, last)) => {
                        let Some(last) = last else { break };
                        cursor = format!("({last}");
                        for delivery in claimed {
                            if self.lock_in_flight().hold(&delivery).is_none() {
                                continue;
                            }
                            // A slot is free: the claim asked for no more entries than that.
                            match permits.clone().try_acquire_owned() {
                                Ok(permit) => self.start(delivery, permit, tasks, stop),
                                Err(_) => self.lock_in_flight().release(
                                    &delivery.stream,
                                    &delivery.entry.id,
                                    None,
                                    false,
                                ),
                            }
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        match self
                            .on_redis_error(
                                &error,
                                failures,
                                "taking back own pending entries",
                                stop,
                            )
                            .await
                        {
                            Ok(false) if failures < 10 => {}
                            _ => break,
                        }
                    }
                }
            }
        }
    }

    /// Claims entries idle for the claim time from any consumer (this one included: a failed
    /// entry left pending is delivered again this way), up to `budget`.
    pub(super) async fn claim_idle_entries(
        self: &Arc<Self>,
        budget: usize,
    ) -> Result<Vec<Delivery>, RedisError> {
        let mut claimed = Vec::new();
        for stream in self.reading().iter() {
            let left = budget.saturating_sub(claimed.len());
            if left == 0 {
                break;
            }
            match self.claim(stream, self.claim_idle, None, "-", left).await {
                Ok((mut got, _)) => claimed.append(&mut got),
                Err(error) if error.is_timeout() => {
                    self.log_timeout(&error, "claiming pending entries");
                    break;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(claimed)
    }

    /// `XPENDING` (idle at least `min_idle`, after `start`, of `owner` if given) then `XCLAIM` of
    /// those rows not in flight here, up to `count` entries. Returns the claimed deliveries and the
    /// last pending id looked at (`None` when there was none).
    pub(super) async fn claim(
        &self,
        stream: &str,
        min_idle: Duration,
        owner: Option<&str>,
        start: &str,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<String>), RedisError> {
        let idle_ms = u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX);
        let in_flight_here = self
            .lock_in_flight()
            .entries
            .iter()
            .filter(|(s, _)| &**s == stream)
            .count();
        let mut pending = redis::cmd("XPENDING");
        pending
            .arg(stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(idle_ms)
            .arg(start)
            .arg("+")
            .arg(count + in_flight_here);
        if let Some(owner) = owner {
            pending.arg(owner);
        }
        let mut conn = self.commands.clone();
        let reply: Value = pending.query_async(&mut conn).await?;
        let rows = parse_pending(&reply)
            .map_err(|e| RedisError::from((redis::ErrorKind::Parse, "XPENDING", e.to_string())))?;
        let last = rows.last().map(|row| row.id.clone());
        let stream_key: Arc<str> = Arc::from(stream);
        let rows: Vec<_> = {
            let in_flight = self.lock_in_flight();
            rows.into_iter()
                .filter(|row| {
                    !in_flight
                        .entries
                        .contains(&(stream_key.clone(), row.id.clone()))
                })
                .take(count)
                .collect()
        };
        if rows.is_empty() {
            return Ok((Vec::new(), last));
        }
        let dlq = self.dlq_of(stream);
        let replies = send_calls(&self.commands, CLAIM, 1, || {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(CLAIM_SCRIPT.get_hash())
                .arg(2)
                .arg(stream)
                .arg(&dlq)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(idle_ms)
                .arg(self.stream_budget(self.reading().len()))
                .arg(self.max_entry_bytes)
                .arg(self.config.max_len());
            for row in &rows {
                cmd.arg(&row.id);
            }
            std::iter::once(cmd)
        })
        .await?;
        let reply = replies.into_iter().next().ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Parse,
                "claim script",
                "no reply".to_owned(),
            ))
        })??;
        let (entries, dead) = parse_scripted(reply).map_err(|e| {
            RedisError::from((redis::ErrorKind::Parse, "claim script", e.to_string()))
        })?;
        self.dead_lettered_in_redis(stream, &dead);
        let deliveries = entries
            .into_iter()
            .map(|entry| {
                let before = rows.iter().find(|row| row.id == entry.id).map_or(0, |row| row.deliveries);
                if owner.is_none() {
                    let from = rows.iter().find(|row| row.id == entry.id).map_or("?", |row| row.consumer.as_str());
                    tracing::debug!(group = %self.group, consumer = %self.consumer, stream, entry_id = %entry.id,
                        from, deliveries = before + 1, "claimed a pending entry");
                }
                Delivery { stream: stream_key.clone(), entry, deliveries: before + 1, checked: None }
            })
            .collect();
        Ok((deliveries, last))
    }

    /// New entries of every stream, bounded in entries (`count` per stream) and in bytes: the
    /// [`READ`] script of each stream, in one round trip, which dead-letters the entries over the
    /// entry limit inside Redis. Only when no stream had anything, waits up to `block` (if given)
    /// with `XREADGROUP ... COUNT 1 BLOCK`, so at most one entry per stream arrives that way; one
    /// over the entry limit is then dead-lettered without being sent back.
    pub(super) async fn read_new(
        &self,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, RedisError> {
        let streams = self.reading();
        if streams.is_empty() {
            // No partition held yet (or none left for this consumer): wait for one.
            if let Some(block) = block {
                let _ = tokio::time::timeout(block, self.wake.notified()).await;
            }
            return Ok(Vec::new());
        }
        let budget = self.stream_budget(streams.len());
        let dlqs: Vec<String> = streams.iter().map(|s| self.dlq_of(s)).collect();
        let replies = send_calls(&self.reads, READ, streams.len(), || {
            streams.iter().zip(&dlqs).map(|(stream, dlq)| {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(READ_SCRIPT.get_hash())
                    .arg(2)
                    .arg(stream)
                    .arg(dlq)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg(count)
                    .arg(budget)
                    .arg(self.max_entry_bytes)
                    .arg(self.config.max_len());
                cmd
            })
        })
        .await;
        let replies = match replies {
            Ok(replies) => replies,
            Err(error) => return self.read_failed(error),
        };
        let mut deliveries = Vec::new();
        let mut dead_lettered = false;
        let mut failed = None;
        for (stream, reply) in streams.iter().zip(replies) {
            let parsed = reply.and_then(|reply| {
                parse_scripted(reply).map_err(|e| {
                    RedisError::from((redis::ErrorKind::Parse, "read script", e.to_string()))
                })
            });
            let (entries, dead) = match parsed {
                Ok(parsed) => parsed,
                Err(error) => {
                    failed = Some(error);
                    continue;
                }
            };
            dead_lettered |= !dead.is_empty();
            self.dead_lettered_in_redis(stream, &dead);
            let stream: Arc<str> = Arc::from(stream.as_str());
            deliveries.extend(entries.into_iter().map(|entry| Delivery {
                stream: stream.clone(),
                entry,
                deliveries: 1,
                checked: None,
            }));
        }
        if !deliveries.is_empty() || dead_lettered {
            // A failed stream fails again at the next read.
            return Ok(deliveries);
        }
        if let Some(error) = failed {
            return self.read_failed(error);
        }
        let Some(block) = block else {
            return Ok(deliveries);
        };
        let read = match self.block_for_new(&streams, block).await {
            Ok(read) => read,
            Err(error) => return self.read_failed(error),
        };
        for (stream, entries) in read {
            let stream: Arc<str> = Arc::from(stream);
            for entry in entries {
                let size = entry_size(&entry);
                if size > self.max_entry_bytes {
                    let Entry { id, fields } = entry;
                    drop(fields);
                    self.dead_letter_too_large(&stream, id, size).await;
                    continue;
                }
                deliveries.push(Delivery {
                    stream: stream.clone(),
                    entry,
                    deliveries: 1,
                    checked: None,
                });
            }
        }
        Ok(deliveries)
    }

    /// Waits up to `block` for new entries with `XREADGROUP ... COUNT 1 BLOCK`: one read of every
    /// stream on one server; on Redis Cluster, where one command cannot read streams of several
    /// hash slots, one read per stream, sent at once, each blocking for an equal part of `block`
    /// (reads that reach the same master wait there one after another, so the whole wait stays
    /// within `block` and the read connection's response timeout).
    async fn block_for_new(
        &self,
        streams: &[String],
        block: Duration,
    ) -> Result<Vec<(String, Vec<Entry>)>, RedisError> {
        let groups: Vec<&[String]> = if self.reads.is_cluster() {
            streams.chunks(1).collect()
        } else {
            vec![streams]
        };
        let parts = u32::try_from(groups.len()).unwrap_or(u32::MAX).max(1);
        let block_ms = u64::try_from((block / parts).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let reads = groups.into_iter().map(|streams| {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(&self.group)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS");
            for stream in streams {
                cmd.arg(stream);
            }
            for _ in streams {
                cmd.arg(">");
            }
            let mut conn = self.reads.clone();
            async move {
                let reply: Value = cmd.query_async(&mut conn).await?;
                parse_read(reply).map_err(|e| {
                    RedisError::from((redis::ErrorKind::Parse, "XREADGROUP", e.to_string()))
                })
            }
        });
        // Every read is awaited, even after one failed: an entry another one delivered is
        // pending under this consumer and must be handled now, not after the claim idle time.
        let mut read = Vec::new();
        let mut failed = None;
        for result in join_all(reads).await {
            match result {
                Ok(mut got) => read.append(&mut got),
                Err(error) => failed = Some(error),
            }
        }
        match failed {
            Some(error) if read.is_empty() => Err(error),
            _ => Ok(read),
        }
    }

    /// A failed read: a response timeout is logged here as what it is (an answer that did not
    /// come in time, not an unreachable Redis) and the read counts as empty; anything else is
    /// the caller's to handle.
    fn read_failed(&self, error: RedisError) -> Result<Vec<Delivery>, RedisError> {
        if error.is_timeout() {
            self.log_timeout(&error, "reading new entries");
            return Ok(Vec::new());
        }
        Err(error)
    }

    /// Logs a response timeout honestly: Redis may be slow or busy, and what the command did is
    /// unknown.
    fn log_timeout(&self, error: &RedisError, doing: &str) {
        tracing::warn!(group = %self.group, consumer = %self.consumer, error = %self.config.error(error),
            "no answer from Redis within the response timeout while {doing} (Redis slow or busy?); \
            its outcome is unknown: entries it delivered stay pending and are claimed after the claim \
            idle time");
    }

    /// Dead-letters an entry over the entry limit that a blocking read delivered, its bytes
    /// already dropped: the script copies them from the stream. Tried once; if that fails, the
    /// entry stays pending and the claim script dead-letters it later.
    async fn dead_letter_too_large(&self, stream: &str, entry_id: String, size: usize) {
        let dlq = self.dlq_of(stream);
        let reason = format!(
            "entry of {size} bytes is larger than the limit of {} bytes",
            self.max_entry_bytes
        );
        let mut invocation = DEAD_LETTER_SCRIPT.prepare_invoke();
        invocation
            .key(stream)
            .key(&dlq)
            .arg(&self.group)
            .arg(&entry_id)
            .arg(&reason)
            .arg(1)
            .arg(self.config.max_len());
        let mut conn = self.commands.clone();
        match invocation.invoke_async::<Value>(&mut conn).await {
            Ok(_) => self.dead_lettered_in_redis(
                stream,
                &[DeadLettered {
                    id: entry_id,
                    reason,
                    deliveries: 1,
                }],
            ),
            Err(error) => {
                tracing::warn!(group = %self.group, stream, entry_id, error = %self.config.error(&error),
                    "could not dead-letter an entry over the size limit; it stays pending and is dead-lettered when claimed");
            }
        }
    }

    /// Counts and logs entries a script dead-lettered inside Redis.
    fn dead_lettered_in_redis(&self, stream: &str, dead: &[DeadLettered]) {
        if dead.is_empty() {
            return;
        }
        let dlq = self.dlq_of(stream);
        for letter in dead {
            let span = tracing::error_span!("entry", stream, entry_id = %letter.id,
                deliveries = letter.deliveries, dead_letters = %dlq);
            span.in_scope(|| self.pipeline.refused(&letter.reason));
        }
    }

    /// The group's dead-letter stream of `stream`'s category.
    pub(super) fn dlq_of(&self, stream: &str) -> String {
        let category = self.keys.category_of_stream(stream).unwrap_or_default();
        self.keys.dlq(category, &self.group)
    }

    /// The byte budget of one stream's read or claim: an equal part of the batch budget, at least
    /// one entry's worth.
    fn stream_budget(&self, streams: usize) -> usize {
        (self.max_batch_bytes / streams.max(1)).max(self.max_entry_bytes)
    }

    /// Parses the envelopes of a batch of entries, holds the entries ([`InFlight::hold`]; those
    /// held already are dropped) and checks their done records in one pipeline, instead of one
    /// round trip per entry from [`process`](Self::process).
    ///
    /// Entries whose envelope does not parse are left for `process` (it dead-letters them). The
    /// done record of an entry is checked again by `process`, just before it runs, when Redis does
    /// not answer here, or when another entry of the same key was held at this check: that one
    /// may settle after the check. Entries are held before the check is sent, so one of the same
    /// key that settled before was acknowledged before the check (one connection, in order).
    ///
    /// [`InFlight::hold`]: super::in_flight::InFlight::hold
    pub(super) async fn check_done(&self, mut deliveries: Vec<Delivery>) -> Vec<Delivery> {
        for delivery in &mut deliveries {
            let Some(Ok(raw)) = delivery.entry.field("event").map(RawEnvelope::from_slice) else {
                continue;
            };
            let category = self
                .keys
                .category_of_stream(&delivery.stream)
                .unwrap_or_default();
            let done_key = self.keys.done(category, &self.group, &raw.idempotency_key);
            delivery.checked = Some(Checked {
                raw,
                done_key,
                done: None,
            });
        }
        let mut to_check = Vec::with_capacity(deliveries.len());
        {
            let mut in_flight = self.lock_in_flight();
            deliveries.retain(|delivery| match in_flight.hold(delivery) {
                None => false,
                Some(shared) => {
                    to_check.push(delivery.checked.is_some() && !shared);
                    true
                }
            });
        }
        let mut pipe = redis::Pipeline::with_capacity(deliveries.len());
        for (delivery, check) in deliveries.iter().zip(&to_check) {
            if let (true, Some(checked)) = (check, &delivery.checked) {
                pipe.cmd("EXISTS").arg(&checked.done_key);
            }
        }
        let asked = to_check.iter().filter(|check| **check).count();
        if asked == 0 {
            return deliveries;
        }
        let mut conn = self.commands.clone();
        match pipe.query_async::<Vec<u64>>(&mut conn).await {
            Ok(found) if found.len() == asked => {
                let mut found = found.into_iter();
                for (delivery, check) in deliveries.iter_mut().zip(to_check) {
                    if let (true, Some(checked)) = (check, &mut delivery.checked) {
                        checked.done = found.next().map(|n| n > 0);
                    }
                }
            }
            Ok(found) => {
                tracing::warn!(group = %self.group, answers = found.len(), asked,
                    "unexpected answer to the done checks; checking each entry on its own");
            }
            Err(error) => {
                tracing::debug!(group = %self.group, error = %self.config.error(&error),
                    "done checks failed; checking each entry on its own");
            }
        }
        deliveries
    }
}
