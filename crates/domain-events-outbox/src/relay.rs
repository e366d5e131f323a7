//! The [`Relay`]: publishes the committed rows of an outbox table through a [`Transport`].
//!
//! # How several relays share a table
//!
//! Each batch is one PostgreSQL transaction that first takes the table's relay lock (a
//! transaction-scoped advisory lock), then reads the oldest pending rows by sequence, publishes
//! them through the transport's batch path and marks them, and commits, which releases the lock.
//! So relays of one table take turns batch by batch: any number may run (processes on several
//! hosts, for availability), a row is published by one of them at a time, and a relay that dies
//! mid-batch leaves its rows pending (its transaction rolls back; its lock goes with its
//! connection) for the next batch, whose re-send the transport's idempotency claim absorbs.
//!
//! Nothing is skipped because nothing is read by position: a batch takes every row that is
//! pending *now*, so a transaction that commits late with an earlier sequence number is simply
//! pending in the next batch. Events of one correlation id reach their stream in commit order
//! because writers of one correlation id take turns (see [`Outbox`](crate::Outbox)), so among
//! them the sequence is the commit order, and a later one is never visible before an earlier one.
//!
//! The relay wakes on the table's `LISTEN/NOTIFY` channel (the trigger notifies once per
//! inserting statement, delivered at commit) and polls every `poll_interval` besides, in case a
//! notification was lost with a connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain_events::{OutgoingEvent, Transport, TransportError, Uuid};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::intern::intern;
use crate::publish::{RowOutcome, publish};
use crate::table::{LockPurpose, OutboxTable};

/// Rows per batch unless configured otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// How often a relay looks for rows without a notification, unless configured otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long one transport call may take, unless configured otherwise.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long published rows are kept, unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(60 * 60);
/// How often published rows older than the retention are deleted, unless configured otherwise.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How often the relay reads its table's backlog for its gauges (feature `metrics`), unless
/// configured otherwise.
#[cfg(feature = "metrics")]
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(10);

/// Rows deleted per statement of the retention sweep: bounds how long one statement runs.
const SWEEP_CHUNK: i64 = 5_000;
/// How often a relay records that it is alive (`<table>_relays.seen_at`).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Relays not seen for this long are forgotten by the sweep.
const FORGET_RELAYS_AFTER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A snapshot of a relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Rows published.
    pub published: u64,
    /// Rows whose idempotency key was already claimed by another event (so not published again;
    /// the row is done). A re-send of the row's own event counts as published.
    pub duplicates: u64,
    /// Rows the transport rejected for good, now dead.
    pub dead: u64,
    /// Batches that stopped on a transient transport error (retried after a backoff).
    pub transport_errors: u64,
    /// Failed PostgreSQL operations (retried after a backoff).
    pub database_errors: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    duplicates: AtomicU64,
    dead: AtomicU64,
    transport_errors: AtomicU64,
    database_errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn snapshot(&self) -> RelayStats {
        RelayStats {
            published: self.published.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            database_errors: self.database_errors.load(Ordering::Relaxed),
        }
    }
}

/// What a relay is configured with besides where it reads and writes.
#[derive(Debug, Clone)]
struct Settings {
    batch_size: usize,
    poll_interval: Duration,
    publish_timeout: Duration,
    retention: Duration,
    sweep_interval: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    #[cfg(feature = "metrics")]
    metrics_interval: Duration,
}

/// Configures a [`Relay`]; made by [`Relay::builder`].
pub struct RelayBuilder {
    pool: PgPool,
    transport: Arc<dyn Transport>,
    table: OutboxTable,
    settings: Settings,
    relay_id: Option<String>,
}

impl RelayBuilder {
    /// The outbox table; default `public.domain_events_outbox`.
    pub fn table(mut self, table: OutboxTable) -> Self {
        self.table = table;
        self
    }

    /// Rows per batch (one transaction, one transport call); default [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.settings.batch_size = rows.max(1);
        self
    }

    /// How often to look for rows without a notification; default [`DEFAULT_POLL_INTERVAL`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// How long one transport call may take before it counts as a transient failure whose
    /// outcome is unknown; default [`DEFAULT_PUBLISH_TIMEOUT`].
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.settings.publish_timeout = timeout;
        self
    }

    /// How long published rows are kept before the sweep deletes them; default
    /// [`DEFAULT_RETENTION`]. Zero deletes them at the next sweep.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.settings.retention = retention;
        self
    }

    /// How often the retention sweep runs; default [`DEFAULT_SWEEP_INTERVAL`].
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.settings.sweep_interval = interval;
        self
    }

    /// The wait after a failure (transport or PostgreSQL), doubled after each failure in a row up
    /// to `max`; default 100 ms to 5 s.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.settings.min_backoff = min;
        self.settings.max_backoff = max.max(min);
        self
    }

    /// How often the relay reads the table's pending rows for the gauges
    /// `domain_events_outbox_backlog` and `domain_events_outbox_oldest_age_seconds` (one query on
    /// the pending rows' index); default [`DEFAULT_METRICS_INTERVAL`]. Feature `metrics`.
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.settings.metrics_interval = interval;
        self
    }

    /// The name this relay is listed under by `status`; default `<host>/<pid>/<random>`.
    pub fn relay_id(mut self, id: impl Into<String>) -> Self {
        self.relay_id = Some(id.into());
        self
    }

    /// The relay.
    pub fn build(self) -> Relay {
        let relay_id = self.relay_id.unwrap_or_else(|| {
            // The last hex digits of a UUID v7 are random (the first are the time).
            let random = Uuid::now_v7().simple().to_string();
            format!("{}/{}/{}", host_name(), std::process::id(), &random[24..])
        });
        Relay {
            sql: Sql::new(&self.table),
            lock_class: self.table.lock_class(LockPurpose::Relay),
            channel: self.table.channel(),
            pool: self.pool,
            transport: self.transport,
            table: self.table,
            settings: self.settings,
            relay_id,
            counters: Arc::default(),
        }
    }
}

/// Publishes the committed rows of an outbox table through a [`Transport`], in sequence order,
/// in batches; see the [module docs](self) for how several relays share a table.
///
/// Transient transport errors (unreachable, timed out) and PostgreSQL failures are retried after
/// a backoff; connections come back by themselves. A row the transport rejects for good is marked
/// dead with the reason (`domain-events outbox dead list`) and the rows behind it go on.
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events_outbox::Relay;
/// use domain_events_redis::{RedisConfig, RedisTransport};
///
/// let transport = RedisTransport::new(RedisConfig::new("redis://127.0.0.1:6379")?)?;
/// let relay = Relay::builder(pool, transport).build().spawn();
/// // ... until the service stops:
/// let stats = relay.shutdown().await; // finishes the batch in flight
/// println!("{} events published", stats.published);
/// # Ok(()) }
/// ```
pub struct Relay {
    pool: PgPool,
    transport: Arc<dyn Transport>,
    table: OutboxTable,
    settings: Settings,
    relay_id: String,
    sql: Sql,
    lock_class: i32,
    channel: String,
    counters: Arc<Counters>,
}

/// A running relay; made by [`Relay::spawn`].
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
    relay_id: String,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl RelayHandle {
    /// The relay's counters so far.
    pub fn stats(&self) -> RelayStats {
        self.counters.snapshot()
    }

    /// The name the relay is listed under.
    pub fn relay_id(&self) -> &str {
        &self.relay_id
    }

    /// Stops the relay after the batch in flight (if any) was published and marked, and returns
    /// its counters.
    pub async fn shutdown(self) -> RelayStats {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(error = %error, "the outbox relay task failed");
        }
        self.counters.snapshot()
    }
}

impl Relay {
    /// Starts configuring a relay of the outbox in `pool`'s database, publishing through
    /// `transport`. The relay holds one connection of the pool for `LISTEN` and uses one more per
    /// batch.
    pub fn builder(pool: PgPool, transport: impl Transport) -> RelayBuilder {
        RelayBuilder {
            pool,
            transport: Arc::new(transport),
            table: OutboxTable::default(),
            settings: Settings {
                batch_size: DEFAULT_BATCH_SIZE,
                poll_interval: DEFAULT_POLL_INTERVAL,
                publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
                retention: DEFAULT_RETENTION,
                sweep_interval: DEFAULT_SWEEP_INTERVAL,
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                #[cfg(feature = "metrics")]
                metrics_interval: DEFAULT_METRICS_INTERVAL,
            },
            relay_id: None,
        }
    }

    /// The name this relay is listed under.
    pub fn relay_id(&self) -> &str {
        &self.relay_id
    }

    /// Runs the relay on a task of the current Tokio runtime until [`RelayHandle::shutdown`].
    pub fn spawn(self) -> RelayHandle {
        let (stop, stopped) = watch::channel(false);
        let counters = self.counters.clone();
        let relay_id = self.relay_id.clone();
        let task = tokio::spawn(self.run(Stop(stopped)));
        RelayHandle {
            stop,
            task,
            counters,
            relay_id,
        }
    }

    /// Runs the relay until `shutdown` completes (e.g. Ctrl-C), then stops it after the batch in
    /// flight and returns its counters.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> RelayStats {
        let handle = self.spawn();
        shutdown.await;
        handle.shutdown().await
    }

    async fn run(self, mut stop: Stop) {
        tracing::info!(relay_id = %self.relay_id, table = %self.table,
            transport = self.transport.name(), "outbox relay started");
        let mut listener: Option<PgListener> = None;
        let mut backoff = self.settings.min_backoff;
        let mut next_heartbeat = Instant::now();
        let mut next_sweep = Instant::now();
        #[cfg(feature = "metrics")]
        let mut next_gauges = Instant::now();
        while !stop.is_stopped() {
            let now = Instant::now();
            #[cfg(feature = "metrics")]
            if now >= next_gauges {
                self.database_step(
                    "backlog gauges",
                    crate::gauges::record(&self.pool, &self.table),
                )
                .await;
                next_gauges = now + self.settings.metrics_interval;
            }
            if now >= next_heartbeat {
                self.database_step("heartbeat", self.heartbeat()).await;
                next_heartbeat = now + HEARTBEAT_INTERVAL;
            }
            if now >= next_sweep {
                self.database_step("retention sweep", self.sweep()).await;
                next_sweep = now + self.settings.sweep_interval;
            }
            if listener.is_none() {
                listener = self.listen().await;
            }
            let healthy = match self.drain(&stop).await {
                Ok(()) => {
                    backoff = self.settings.min_backoff;
                    true
                }
                Err(failure) => {
                    self.count_failure(&failure);
                    tracing::warn!(relay_id = %self.relay_id, error = %failure, retry_in = ?backoff,
                        "outbox relay failed; retrying");
                    false
                }
            };
            let wait = if healthy {
                self.settings.poll_interval
            } else {
                backoff
            };
            if !healthy {
                backoff = (backoff * 2).min(self.settings.max_backoff);
            }
            let deadline = (Instant::now() + wait).min(next_heartbeat).min(next_sweep);
            #[cfg(feature = "metrics")]
            let deadline = deadline.min(next_gauges);
            tokio::select! {
                () = stop.wait() => {}
                () = tokio::time::sleep_until(deadline) => {}
                woke = notified(&mut listener), if healthy && listener.is_some() => {
                    if !woke {
                        listener = None;
                    }
                }
            }
        }
        self.database_step("stop record", self.stopped()).await;
        tracing::info!(relay_id = %self.relay_id, stats = ?self.counters.snapshot(),
            "outbox relay stopped");
    }

    /// Publishes batches until one is not full, or the relay is asked to stop.
    async fn drain(&self, stop: &Stop) -> Result<(), Failure> {
        loop {
            let rows = self.batch().await?;
            if rows < self.settings.batch_size || stop.is_stopped() {
                return Ok(());
            }
        }
    }

    /// One batch: lock, read, publish, mark, commit. Returns the number of rows read.
    async fn batch(&self) -> Result<usize, Failure> {
        let mut tx = self.pool.begin().await?;
        let lock_timeout = (self.settings.publish_timeout * 3).as_millis().to_string();
        let locked = sqlx::query(&self.sql.lock)
            .bind(self.lock_class)
            .bind(lock_timeout)
            .execute(&mut *tx)
            .await;
        match locked {
            Ok(_) => {}
            // Another relay held the table longer than the lock timeout: its turn goes on.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("55P03") => {
                return Ok(0);
            }
            Err(error) => return Err(error.into()),
        }
        #[allow(clippy::type_complexity)] // the row, column by column, as the SELECT names them
        let rows: Vec<(i64, Uuid, String, String, String, String, String)> =
            sqlx::query_as(&self.sql.pending)
                .bind(i64::try_from(self.settings.batch_size).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let (sequences, events): (Vec<i64>, Vec<OutgoingEvent>) = rows
            .into_iter()
            .map(
                |(sequence, event_id, category, event_type, key, correlation_id, envelope)| {
                    let event = OutgoingEvent {
                        event_type: intern(&event_type),
                        category: intern(&category),
                        event_id,
                        idempotency_key: key,
                        correlation_id,
                        json: Arc::from(envelope),
                    };
                    (sequence, event)
                },
            )
            .unzip();
        let outcome = publish(&*self.transport, &events, self.settings.publish_timeout).await;

        let mut published = Vec::new();
        let (mut dead, mut reasons) = (Vec::new(), Vec::new());
        let mut duplicates = 0;
        for ((sequence, event), row) in sequences.iter().zip(&events).zip(&outcome.rows) {
            match row {
                RowOutcome::Published => published.push(*sequence),
                RowOutcome::Duplicate(existing) => {
                    tracing::debug!(event_id = %event.event_id, idempotency_key = %event.idempotency_key,
                        existing_event_id = ?existing, "outbox event is a duplicate; not published again");
                    duplicates += 1;
                    published.push(*sequence);
                }
                RowOutcome::Dead(reason) => {
                    tracing::warn!(event_type = event.event_type, event_id = %event.event_id,
                        idempotency_key = %event.idempotency_key, reason = %reason,
                        "outbox event rejected by the transport; marked dead");
                    dead.push(*sequence);
                    reasons.push(reason.clone());
                }
            }
        }
        if !published.is_empty() {
            sqlx::query(&self.sql.published)
                .bind(&published)
                .execute(&mut *tx)
                .await?;
        }
        if !dead.is_empty() {
            sqlx::query(&self.sql.dead)
                .bind(&dead)
                .bind(&reasons)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(error) = &outcome.stopped {
            let untried = &sequences[outcome.rows.len()..];
            sqlx::query(&self.sql.failed)
                .bind(untried)
                .bind(error.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let c = &self.counters;
        Counters::add(&c.published, published.len() - duplicates);
        Counters::add(&c.duplicates, duplicates);
        Counters::add(&c.dead, dead.len());
        match outcome.stopped {
            Some(error) => Err(Failure::Transport(error)),
            None => Ok(sequences.len()),
        }
    }

    /// A listener on the table's channel, or `None` (polling only, until the next try) when
    /// PostgreSQL cannot be reached.
    async fn listen(&self) -> Option<PgListener> {
        let listening = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listening.await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::debug!(error = %error, "cannot LISTEN for outbox inserts; polling until the next try");
                None
            }
        }
    }

    async fn heartbeat(&self) -> Result<(), sqlx::Error> {
        sqlx::query(&self.sql.heartbeat)
            .bind(&self.relay_id)
            .bind(host_name())
            .bind(i32::try_from(std::process::id()).unwrap_or(i32::MAX))
            .execute(&self.pool)
            .await
            .map(drop)
    }

    async fn stopped(&self) -> Result<(), sqlx::Error> {
        sqlx::query(&self.sql.stopped)
            .bind(&self.relay_id)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Deletes published rows older than the retention, a chunk per statement, and relays not
    /// seen for a week.
    async fn sweep(&self) -> Result<(), sqlx::Error> {
        let mut deleted = 0;
        loop {
            let done = sqlx::query(&self.sql.sweep)
                .bind(self.settings.retention.as_secs_f64())
                .bind(SWEEP_CHUNK)
                .execute(&self.pool)
                .await?
                .rows_affected();
            deleted += done;
            if done < SWEEP_CHUNK.unsigned_abs() {
                break;
            }
        }
        sqlx::query(&self.sql.forget_relays)
            .bind(FORGET_RELAYS_AFTER.as_secs_f64())
            .execute(&self.pool)
            .await?;
        if deleted > 0 {
            tracing::debug!(deleted, table = %self.table, "outbox retention sweep");
        }
        Ok(())
    }

    /// Runs a background step whose failure only needs logging (it is tried again later).
    async fn database_step(
        &self,
        what: &str,
        step: impl std::future::Future<Output = Result<(), sqlx::Error>>,
    ) {
        if let Err(error) = step.await {
            Counters::add(&self.counters.database_errors, 1);
            tracing::warn!(relay_id = %self.relay_id, error = %error, "outbox relay: {what} failed");
        }
    }

    fn count_failure(&self, failure: &Failure) {
        let counter = match failure {
            Failure::Transport(_) => &self.counters.transport_errors,
            Failure::Database(_) => &self.counters.database_errors,
        };
        Counters::add(counter, 1);
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("relay_id", &self.relay_id)
            .field("table", &self.table)
            .field("transport", &self.transport.name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RelayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBuilder")
            .field("table", &self.table)
            .field("transport", &self.transport.name())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a batch did not finish.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("transport: {0}")]
    Transport(TransportError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

/// Waits for a notification on `listener` and takes every one already buffered with it (one
/// batch answers them all). False when the listener failed and must be made again; a lost
/// connection that it reconnects by itself counts as a wake-up, since notifications may have
/// been missed meanwhile.
async fn notified(listener: &mut Option<PgListener>) -> bool {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    match listener.try_recv().await {
        Ok(_) => {
            while listener.next_buffered().is_some() {}
            true
        }
        Err(error) => {
            tracing::debug!(error = %error, "outbox LISTEN connection failed");
            false
        }
    }
}

/// The stop signal of a relay task.
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn is_stopped(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    async fn wait(&mut self) {
        // Also stops when the handle was dropped.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The relay's statements for one table.
struct Sql {
    lock: String,
    pending: String,
    published: String,
    dead: String,
    failed: String,
    heartbeat: String,
    stopped: String,
    sweep: String,
    forget_relays: String,
}

impl Sql {
    fn new(table: &OutboxTable) -> Self {
        let t = table.qualified();
        let relays = table.qualified_with("_relays");
        Sql {
            // The lock timeout first (left to right), so a relay never waits forever for another.
            // The batch commits without waiting for its write-ahead log to reach the disk
            // (`synchronous_commit` off, for this transaction only): marks lost in a crash of
            // PostgreSQL leave their rows pending, and their re-send is absorbed like that of a
            // relay that died mid-batch, so the wait would buy nothing.
            lock: "SELECT set_config('lock_timeout', $2, true), \
                          set_config('synchronous_commit', 'off', true), \
                          pg_advisory_xact_lock($1, 0)"
                .to_owned(),
            pending: format!(
                "SELECT sequence, event_id, category, event_type, idempotency_key, correlation_id, \
                 envelope \
                 FROM {t} WHERE published_at IS NULL AND dead_at IS NULL \
                 ORDER BY sequence LIMIT $1"
            ),
            published: format!(
                "UPDATE {t} SET published_at = now(), attempts = attempts + 1, last_error = NULL \
                 WHERE sequence = ANY($1)"
            ),
            dead: format!(
                "UPDATE {t} AS o SET dead_at = now(), attempts = o.attempts + 1, last_error = d.reason \
                 FROM unnest($1::int8[], $2::text[]) AS d(sequence, reason) \
                 WHERE o.sequence = d.sequence"
            ),
            failed: format!(
                "UPDATE {t} SET attempts = attempts + 1, last_error = $2 WHERE sequence = ANY($1)"
            ),
            heartbeat: format!(
                "INSERT INTO {relays} (relay_id, host, pid, started_at, seen_at) \
                 VALUES ($1, $2, $3, now(), now()) \
                 ON CONFLICT (relay_id) DO UPDATE SET seen_at = now(), stopped_at = NULL"
            ),
            stopped: format!(
                "UPDATE {relays} SET seen_at = now(), stopped_at = now() WHERE relay_id = $1"
            ),
            sweep: format!(
                "DELETE FROM {t} WHERE sequence IN ( \
                     SELECT sequence FROM {t} \
                     WHERE published_at < now() - make_interval(secs => $1) \
                     ORDER BY published_at LIMIT $2)"
            ),
            forget_relays: format!(
                "DELETE FROM {relays} WHERE seen_at < now() - make_interval(secs => $1)"
            ),
        }
    }
}

/// This host's name, for the relays table.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults README states: backoff 100 ms doubling to 5 s, a poll every 5 seconds,
    /// published rows kept an hour and swept every minute, batches of 500 (and, with the
    /// `metrics` feature, the gauges read every 10 s).
    #[tokio::test]
    async fn the_defaults_are_the_documented_ones() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool needs no server");
        let relay = Relay::builder(pool, domain_events::MemoryBus::new()).build();
        let s = &relay.settings;
        assert_eq!(s.min_backoff, Duration::from_millis(100));
        assert_eq!(s.max_backoff, Duration::from_secs(5));
        assert_eq!(s.poll_interval, Duration::from_secs(5));
        assert_eq!(s.retention, Duration::from_secs(60 * 60));
        assert_eq!(s.sweep_interval, Duration::from_secs(60));
        assert_eq!(s.batch_size, 500);
        assert_eq!(s.publish_timeout, Duration::from_secs(10));
        assert_eq!(HEARTBEAT_INTERVAL, Duration::from_secs(10));
        // README, "Metrics": the outbox gauges are read every 10 s.
        #[cfg(feature = "metrics")]
        assert_eq!(s.metrics_interval, Duration::from_secs(10));
    }
}
