//! What operators ask of an outbox table: its [`status`] (pending rows, the age of the oldest,
//! dead rows, relays seen), its [`dead_rows`], and [`retry_dead`] to make dead rows pending again.

use std::time::Duration;

use domain_events::Uuid;
use sqlx::{PgPool, Row};

use crate::error::Error;
use crate::table::OutboxTable;

/// The state of an outbox table.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStatus {
    /// Rows committed and not yet published (dead rows not counted).
    pub pending: i64,
    /// How long the oldest pending row has waited, if there is one.
    pub oldest_pending_age: Option<Duration>,
    /// Rows the transport rejected for good.
    pub dead: i64,
    /// Published rows still kept (until the retention sweep deletes them).
    pub published: i64,
    /// The relays that recorded themselves, most recently seen first.
    pub relays: Vec<RelaySeen>,
}

/// A relay as recorded in `<table>_relays`.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaySeen {
    /// Its name (`<host>/<pid>/<random>` unless configured).
    pub relay_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: i32,
    /// How long ago it last recorded itself (every 10 seconds while it runs).
    pub last_seen: Duration,
    /// Whether it stopped gracefully since.
    pub stopped: bool,
}

/// A dead row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRow {
    /// The row's sequence number.
    pub sequence: i64,
    /// The envelope's `eventId`.
    pub event_id: Uuid,
    /// The type string.
    pub event_type: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The correlation id.
    pub correlation_id: String,
    /// Publish attempts.
    pub attempts: i32,
    /// Why the transport rejected it.
    pub reason: String,
    /// When it went dead, RFC 3339 UTC.
    pub dead_at: String,
}

/// Which dead rows to make pending again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadSelection {
    /// Every dead row.
    All,
    /// The dead rows of these `eventId`s.
    Events(Vec<Uuid>),
}

/// The rows of `table` committed and not yet published (dead rows not counted), and how long the
/// oldest of them has waited: one query on the pending rows' index, cheap enough for the relay's
/// gauges to run it every few seconds.
pub(crate) async fn pending(
    pool: &PgPool,
    table: &OutboxTable,
) -> Result<(i64, Option<Duration>), sqlx::Error> {
    let (pending, oldest): (i64, Option<f64>) = sqlx::query_as(&format!(
        "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8 \
         FROM {} WHERE published_at IS NULL AND dead_at IS NULL",
        table.qualified()
    ))
    .fetch_one(pool)
    .await?;
    Ok((pending, oldest.map(seconds)))
}

/// The status of `table`.
pub async fn status(pool: &PgPool, table: &OutboxTable) -> Result<OutboxStatus, Error> {
    let t = table.qualified();
    let (pending, oldest_pending_age) = pending(pool, table).await?;
    let (dead, published): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE dead_at IS NOT NULL), \
                count(*) FILTER (WHERE published_at IS NOT NULL) \
         FROM {t}"
    ))
    .fetch_one(pool)
    .await?;
    let relays: Vec<(String, String, i32, f64, bool)> = sqlx::query_as(&format!(
        "SELECT relay_id, host, pid, EXTRACT(EPOCH FROM now() - seen_at)::float8, \
                stopped_at IS NOT NULL \
         FROM {} ORDER BY seen_at DESC, relay_id",
        table.qualified_with("_relays")
    ))
    .fetch_all(pool)
    .await?;
    Ok(OutboxStatus {
        pending,
        oldest_pending_age,
        dead,
        published,
        relays: relays
            .into_iter()
            .map(|(relay_id, host, pid, seen, stopped)| RelaySeen {
                relay_id,
                host,
                pid,
                last_seen: seconds(seen),
                stopped,
            })
            .collect(),
    })
}

/// The dead rows of `table`, oldest first, at most `limit`.
pub async fn dead_rows(
    pool: &PgPool,
    table: &OutboxTable,
    limit: i64,
) -> Result<Vec<DeadRow>, Error> {
    let rows = sqlx::query(&format!(
        "SELECT sequence, event_id, event_type, idempotency_key, correlation_id, attempts, \
                coalesce(last_error, '') AS reason, \
                to_char(dead_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS dead_at \
         FROM {} WHERE dead_at IS NOT NULL ORDER BY sequence LIMIT $1",
        table.qualified()
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeadRow {
                sequence: row.try_get("sequence")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                idempotency_key: row.try_get("idempotency_key")?,
                correlation_id: row.try_get("correlation_id")?,
                attempts: row.try_get("attempts")?,
                reason: row.try_get("reason")?,
                dead_at: row.try_get("dead_at")?,
            })
        })
        .collect()
}

/// Makes the selected dead rows pending again (keeping their sequence, so they are published
/// before rows written after them) and wakes the relays. Returns how many rows it revived.
pub async fn retry_dead(
    pool: &PgPool,
    table: &OutboxTable,
    which: &DeadSelection,
) -> Result<u64, Error> {
    let t = table.qualified();
    let mut tx = pool.begin().await?;
    let revived = match which {
        DeadSelection::All => {
            sqlx::query(&format!(
                "UPDATE {t} SET dead_at = NULL WHERE dead_at IS NOT NULL"
            ))
            .execute(&mut *tx)
            .await?
        }
        DeadSelection::Events(ids) => {
            sqlx::query(&format!(
                "UPDATE {t} SET dead_at = NULL WHERE dead_at IS NOT NULL AND event_id = ANY($1)"
            ))
            .bind(ids)
            .execute(&mut *tx)
            .await?
        }
    }
    .rows_affected();
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(table.channel())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(revived)
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or_default()
}
