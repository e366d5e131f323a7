//! Writing events into the outbox inside the caller's transaction: [`Outbox::emit`],
//! [`Outbox::emit_batch`] and the [`OutboxWriter`] sink for `#[derive(Emitter)]`'s typed methods.

use std::future::Future;
use std::sync::Arc;

use domain_events::{EmitBatch, EnvelopeBuilder, EventPayload, EventSink, OutgoingEvent, Uuid};
use serde::Deserialize;
use sqlx::PgConnection;
use tracing::Instrument;

use crate::error::Error;
use crate::table::{LockPurpose, OutboxTable, correlation_lock_key};

/// Writes events into an outbox table, in the transaction of the caller: an event is published
/// (by a [`Relay`](crate::Relay)) if and only if that transaction commits.
///
/// Envelopes are built by the runtime's [`EnvelopeBuilder`], the one path that also builds the
/// [`Emitter`](struct@domain_events::Emitter)'s: the same validation, `eventId`, `occurredAt`,
/// idempotency key, correlation id, causation and traceparent, serialized once; the row holds the
/// envelope exactly as the transport will send it.
///
/// Events of one correlation id are written one transaction at a time (a transaction-scoped
/// advisory lock on the id, held until commit), so their sequence is their commit order and the
/// relay publishes them in that order. A transaction writing events of several correlation ids
/// should write them in one [`emit_batch`](Self::emit_batch) (which locks them in a fixed order);
/// two transactions locking the same ids in opposite orders deadlock, and PostgreSQL aborts one.
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool, payload: domain_events_catalog::ImageVariationCompletedPayload)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use domain_events_outbox::Outbox;
///
/// let outbox = Outbox::new("image-generator");
/// let mut tx = pool.begin().await?;
/// sqlx::query("UPDATE variations SET status = 'completed' WHERE id = $1")
///     .bind(&payload.variation_id)
///     .execute(&mut *tx)
///     .await?;
/// outbox.emit(&mut tx, payload).await?; // invalid payload: an error, nothing written
/// tx.commit().await?; // rolled back instead: no event
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Outbox {
    envelopes: EnvelopeBuilder,
    table: OutboxTable,
    lock_class: i32,
    insert: Arc<Insert>,
}

/// The insert statements of one table: one for a single event, one for any number.
#[derive(Debug)]
struct Insert {
    one: String,
    many: String,
}

impl Insert {
    fn of(table: &OutboxTable) -> Arc<Self> {
        Arc::new(Insert {
            one: insert_one_sql(table),
            many: insert_sql(table),
        })
    }
}

/// One event written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The envelope's `eventId`.
    pub event_id: Uuid,
    /// The row's sequence number (the commit order of the events of one correlation id).
    pub sequence: i64,
    /// The event's type string.
    pub event_type: &'static str,
    /// The event's idempotency key.
    pub idempotency_key: String,
}

impl Outbox {
    /// An outbox for service `source` in the default table, `public.domain_events_outbox`.
    pub fn new(source: impl Into<String>) -> Self {
        Self::with_envelopes(EnvelopeBuilder::new(source))
    }

    /// An outbox whose envelopes are built by `envelopes` (e.g. `emitter.envelopes().clone()`, to
    /// write what an emitter would send), in the default table.
    pub fn with_envelopes(envelopes: EnvelopeBuilder) -> Self {
        let table = OutboxTable::default();
        Outbox {
            envelopes,
            lock_class: table.lock_class(LockPurpose::Correlation),
            insert: Insert::of(&table),
            table,
        }
    }

    /// The same outbox writing into `table`.
    pub fn table(mut self, table: OutboxTable) -> Self {
        self.lock_class = table.lock_class(LockPurpose::Correlation);
        self.insert = Insert::of(&table);
        self.table = table;
        self
    }

    /// The table it writes into.
    pub fn outbox_table(&self) -> &OutboxTable {
        &self.table
    }

    /// What builds its envelopes.
    pub fn envelopes(&self) -> &EnvelopeBuilder {
        &self.envelopes
    }

    /// A clone that stamps `causationId` = `event_id` on what it writes.
    pub fn with_causation(&self, event_id: Uuid) -> Self {
        let mut outbox = self.clone();
        outbox.envelopes = self.envelopes.with_causation(event_id);
        outbox
    }

    /// A clone that stamps the W3C `traceparent` on what it writes (an invalid one is ignored).
    pub fn with_traceparent(&self, traceparent: &str) -> Self {
        let mut outbox = self.clone();
        outbox.envelopes = self.envelopes.with_traceparent(traceparent);
        outbox
    }

    /// Validates `payload`, builds its envelope and inserts it on `conn`: pass the caller's
    /// transaction (`&mut tx`). A payload that breaks its schema is [`Error::Invalid`] and nothing
    /// is written.
    ///
    /// As [`Emitter::emit`](domain_events::Emitter::emit), the write is a
    /// `domain_events.emit` span carrying the event's type, id, idempotency key and correlation
    /// id; with the `opentelemetry` feature of `domain-events`, an envelope without a
    /// `traceparent` of the outbox's gets the span's ([`domain_events::trace`]).
    pub async fn emit<P: EventPayload>(
        &self,
        conn: &mut PgConnection,
        payload: P,
    ) -> Result<Written, Error> {
        let (span, event) = self.envelopes.spanned(payload);
        let event = event?.into_outgoing()?;
        self.insert_one(conn, event).instrument(span).await
    }

    /// Inserts every event of `batch` on `conn` in one statement, in push order (their sequence
    /// numbers increase in that order). An empty batch writes nothing. As
    /// [`Emitter::emit_batch`](domain_events::Emitter::emit_batch), the write is a
    /// `domain_events.emit_batch` span whose trace context the envelopes get (feature
    /// `opentelemetry`).
    pub async fn emit_batch(
        &self,
        conn: &mut PgConnection,
        batch: EmitBatch,
    ) -> Result<Vec<Written>, Error> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let span = self.envelopes.batch_span(batch.len());
        let events = span.in_scope(|| batch.into_outgoing(&self.envelopes))?;
        self.insert(conn, events).instrument(span).await
    }

    /// A sink writing into `conn` (the caller's transaction): for the `emit_<event>_into` methods
    /// of `#[derive(Emitter)]`.
    pub fn writer<'c>(&'c self, conn: &'c mut PgConnection) -> OutboxWriter<'c> {
        OutboxWriter { outbox: self, conn }
    }

    /// One event: a statement with one value per column, which PostgreSQL runs in about half the
    /// time of the arrays' `unnest` (docs/benchmarks.md, "Where the event's time goes").
    async fn insert_one(
        &self,
        conn: &mut PgConnection,
        event: OutgoingEvent,
    ) -> Result<Written, Error> {
        let header = Header::of(&event)?;
        let sequence: i64 = sqlx::query_scalar(&self.insert.one)
            .bind(self.lock_class)
            .bind(correlation_lock_key(&header.correlation_id))
            .bind(event.event_id)
            .bind(event.category)
            .bind(event.event_type)
            .bind(header.version())
            .bind(&event.idempotency_key)
            .bind(&header.correlation_id)
            .bind(&*event.json)
            .fetch_one(conn)
            .await?;
        Ok(Written {
            event_id: event.event_id,
            sequence,
            event_type: event.event_type,
            idempotency_key: event.idempotency_key,
        })
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        events: Vec<OutgoingEvent>,
    ) -> Result<Vec<Written>, Error> {
        let rows = Rows::of(&events)?;
        let sequences: Vec<(Uuid, i64)> = sqlx::query_as(&self.insert.many)
            .bind(self.lock_class)
            .bind(&rows.lock_keys)
            .bind(&rows.event_ids)
            .bind(&rows.categories)
            .bind(&rows.event_types)
            .bind(&rows.versions)
            .bind(&rows.keys)
            .bind(&rows.correlation_ids)
            .bind(&rows.envelopes)
            .fetch_all(conn)
            .await?;
        events
            .into_iter()
            .map(|event| {
                let sequence = sequences
                    .iter()
                    .find(|(id, _)| *id == event.event_id)
                    .map(|(_, sequence)| *sequence)
                    .ok_or(Error::Database(sqlx::Error::RowNotFound))?;
                Ok(Written {
                    event_id: event.event_id,
                    sequence,
                    event_type: event.event_type,
                    idempotency_key: event.idempotency_key,
                })
            })
            .collect()
    }
}

/// The outbox bound to one transaction: an [`EventSink`], so the `emit_<event>_into` methods that
/// `#[derive(Emitter)]` generates write into the outbox.
///
/// ```no_run
/// # use domain_events::Emitter;
/// # #[derive(domain_events::Emitter)]
/// # #[emitter(catalog = domain_events_catalog, events("image:variation_completed"))]
/// # struct ImageEvents { emitter: Emitter }
/// # async fn run(events: ImageEvents, pool: sqlx::PgPool,
/// #     payload: domain_events_catalog::ImageVariationCompletedPayload) -> Result<(), Box<dyn std::error::Error>> {
/// let outbox = domain_events_outbox::Outbox::with_envelopes(events.emitter.envelopes().clone());
/// let mut tx = pool.begin().await?;
/// events
///     .emit_image_variation_completed_into(&mut outbox.writer(&mut tx), payload)
///     .await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OutboxWriter<'c> {
    outbox: &'c Outbox,
    conn: &'c mut PgConnection,
}

impl EventSink for OutboxWriter<'_> {
    type Output = Written;
    type Error = Error;

    fn emit<P: EventPayload>(
        &mut self,
        payload: P,
    ) -> impl Future<Output = Result<Written, Error>> + Send {
        self.outbox.emit(self.conn, payload)
    }
}

/// The columns of the rows to insert, one array per column (bound to `unnest`).
struct Rows<'a> {
    lock_keys: Vec<i32>,
    event_ids: Vec<Uuid>,
    categories: Vec<&'a str>,
    event_types: Vec<&'a str>,
    versions: Vec<i32>,
    keys: Vec<&'a str>,
    correlation_ids: Vec<String>,
    envelopes: Vec<&'a str>,
}

/// The envelope fields a row holds besides those of [`OutgoingEvent`], read back from the JSON
/// that was just built, so the row and the wire agree.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    version: u32,
    correlation_id: String,
}

impl Header {
    fn of(event: &OutgoingEvent) -> Result<Self, Error> {
        Ok(serde_json::from_str(&event.json)?)
    }

    /// The `version` column (an `integer`).
    fn version(&self) -> i32 {
        i32::try_from(self.version).unwrap_or(i32::MAX)
    }
}

impl<'a> Rows<'a> {
    fn of(events: &'a [OutgoingEvent]) -> Result<Self, Error> {
        let mut rows = Rows {
            lock_keys: Vec::with_capacity(events.len()),
            event_ids: Vec::with_capacity(events.len()),
            categories: Vec::with_capacity(events.len()),
            event_types: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            keys: Vec::with_capacity(events.len()),
            correlation_ids: Vec::with_capacity(events.len()),
            envelopes: Vec::with_capacity(events.len()),
        };
        for event in events {
            let header = Header::of(event)?;
            rows.lock_keys
                .push(correlation_lock_key(&header.correlation_id));
            rows.event_ids.push(event.event_id);
            rows.categories.push(event.category);
            rows.event_types.push(event.event_type);
            rows.versions.push(header.version());
            rows.keys.push(&event.idempotency_key);
            rows.correlation_ids.push(header.correlation_id);
            rows.envelopes.push(&event.json);
        }
        Ok(rows)
    }
}

/// The statement for one event: the correlation lock first (the `MATERIALIZED` CTE runs before
/// the row is made), then the row, whose sequence number is drawn only once the lock is held.
fn insert_one_sql(table: &OutboxTable) -> String {
    format!(
        "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($1::int4, $2::int4)) \
         INSERT INTO {t} (event_id, category, event_type, version, idempotency_key, \
                          correlation_id, envelope) \
         SELECT $3::uuid, $4::text, $5::text, $6::int4, $7::text, $8::text, $9::text FROM lock \
         RETURNING sequence",
        t = table.qualified()
    )
}

/// The statement for any number of events: first the correlation locks, in ascending key order (so
/// batches never deadlock each other), then the rows, whose sequence numbers are drawn only after
/// every lock is held and in push order.
fn insert_sql(table: &OutboxTable) -> String {
    format!(
        "WITH locks AS MATERIALIZED ( \
             SELECT pg_advisory_xact_lock($1::int4, k) \
             FROM (SELECT DISTINCT k FROM unnest($2::int4[]) AS k ORDER BY k) AS keys \
         ), locked AS (SELECT count(*) AS n FROM locks) \
         INSERT INTO {t} (event_id, category, event_type, version, idempotency_key, \
                          correlation_id, envelope) \
         SELECT r.event_id, r.category, r.event_type, r.version, r.idempotency_key, \
                r.correlation_id, r.envelope \
         FROM locked, unnest($3::uuid[], $4::text[], $5::text[], $6::int4[], $7::text[], \
                             $8::text[], $9::text[]) \
              WITH ORDINALITY AS r(event_id, category, event_type, version, idempotency_key, \
                                   correlation_id, envelope, n) \
         ORDER BY r.n \
         RETURNING event_id, sequence",
        t = table.qualified()
    )
}
