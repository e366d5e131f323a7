//! The relay's gauges (feature `metrics`): the outbox's backlog and the age of its oldest pending
//! row, read from the table every `metrics_interval` (`RelayBuilder::metrics_interval`), labelled
//! with the table (`schema.table`).

use domain_events::metrics::{OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE};
use metrics::gauge;
use sqlx::PgPool;

use crate::admin::pending;
use crate::table::OutboxTable;

/// Reads the pending rows of `table` and sets both gauges; on a failed read they keep their last
/// values (the failure is counted and logged by the relay).
pub(crate) async fn record(pool: &PgPool, table: &OutboxTable) -> Result<(), sqlx::Error> {
    let (backlog, oldest) = pending(pool, table).await?;
    let labels = [("table", table.to_string())];
    gauge!(OUTBOX_BACKLOG, &labels).set(backlog as f64);
    gauge!(OUTBOX_OLDEST_AGE, &labels).set(oldest.map_or(0.0, |age| age.as_secs_f64()));
    Ok(())
}
