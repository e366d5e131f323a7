//! The outbox's migration: the table, its indexes, the relays table and the notify trigger, for
//! any [`OutboxTable`]. Idempotent: every statement creates only what is missing, and objects that
//! exist are not locked (indexes and the trigger are created in a `DO` block only when absent), so
//! every service may run it at start-up while others write.

use sqlx::PgPool;

use crate::error::Error;
use crate::table::{LockPurpose, OutboxTable};

/// The migration for the default table, `public.domain_events_outbox`, as shipped in
/// `migrations/` for `sqlx migrate` (the CLI's `outbox migrate` and [`migrate`] apply the same
/// SQL for any table).
pub const DEFAULT_MIGRATION: &str =
    include_str!("../migrations/20260101000000_domain_events_outbox.sql");

/// The SQL of the migration for `table`.
///
/// ```
/// use domain_events_outbox::{OutboxTable, migration_sql};
///
/// let sql = migration_sql(&OutboxTable::new("billing", "outbox").unwrap());
/// assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "billing"."outbox" ("#));
/// ```
pub fn migration_sql(table: &OutboxTable) -> String {
    let schema = table.schema();
    let name = table.table();
    let t = table.qualified();
    let relays = table.qualified_with("_relays");
    let notify = table.qualified_with("_notify");
    let channel = table.channel();
    format!(
        r#"-- The transactional outbox of domain-events (crate domain-events-outbox), table {schema}.{name}.
-- Idempotent: creates only what is missing. docs/contract.md describes every column.
CREATE SCHEMA IF NOT EXISTS "{schema}";

CREATE TABLE IF NOT EXISTS {t} (
    sequence        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    category        text NOT NULL,
    event_type      text NOT NULL,
    version         integer NOT NULL,
    idempotency_key text NOT NULL,
    correlation_id  text NOT NULL,
    envelope        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    dead_at         timestamptz
);

CREATE TABLE IF NOT EXISTS {relays} (
    relay_id   text PRIMARY KEY,
    host       text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    stopped_at timestamptz
);

CREATE OR REPLACE FUNCTION {notify}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END
$fn$;

DO $do$
BEGIN
    IF to_regclass('"{schema}"."{name}_pending"') IS NULL THEN
        CREATE INDEX "{name}_pending" ON {t} (sequence)
            WHERE published_at IS NULL AND dead_at IS NULL;
    END IF;
    IF to_regclass('"{schema}"."{name}_published"') IS NULL THEN
        CREATE INDEX "{name}_published" ON {t} (published_at)
            WHERE published_at IS NOT NULL;
    END IF;
    IF to_regclass('"{schema}"."{name}_dead"') IS NULL THEN
        CREATE INDEX "{name}_dead" ON {t} (sequence) WHERE dead_at IS NOT NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = '{name}_notify' AND tgrelid = '{t}'::regclass) THEN
        CREATE TRIGGER "{name}_notify" AFTER INSERT ON {t}
            FOR EACH STATEMENT EXECUTE FUNCTION {notify}();
    END IF;
END
$do$;
"#
    )
}

/// Applies the migration of `table`, one migrating process at a time (an advisory lock).
pub async fn migrate(pool: &PgPool, table: &OutboxTable) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
        .bind(table.lock_class(LockPurpose::Migration))
        .execute(&mut *tx)
        .await?;
    // A plain string runs by the simple query protocol (several statements, no parameters),
    // and, unlike `raw_sql`, keeps this future `Send` for any caller (`tokio::spawn`).
    let sql = migration_sql(table);
    sqlx::Executor::execute(&mut *tx, sql.as_str()).await?;
    tx.commit().await?;
    tracing::info!(table = %table, "outbox migrated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_migration_is_the_default_tables() {
        // `EXPECTORATE=overwrite` rewrites the file after a change of the SQL.
        expectorate::assert_contents(
            "migrations/20260101000000_domain_events_outbox.sql",
            &migration_sql(&OutboxTable::default()),
        );
        assert_eq!(DEFAULT_MIGRATION, migration_sql(&OutboxTable::default()));
    }
}
