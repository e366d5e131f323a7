//! The JSON API behind the pages (docs/dashboard.md lists every call and its answer).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use domain_events_redis::{DeadLetter, EntryStamp, EventLookup, SEARCH_LIMIT, Status};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogView, catalog_view};
use crate::dashboard::Dashboard;
use crate::error::ApiError;
use crate::event_view::{EventView, event_view};
use crate::throughput::ThroughputView;

/// Dead letters listed per call at most.
const MAX_LIST: usize = 500;

type Answer<T> = Result<Json<T>, ApiError>;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Session {
    prefix: String,
    actions_allowed: bool,
    /// The token replay and delete must send in `x-csrf-token`; only when actions are allowed.
    csrf_token: Option<String>,
    catalog_loaded: bool,
    search_limit: usize,
}

/// `GET api/session`: what the page needs to know about this dashboard.
pub(crate) async fn session(State(dashboard): State<Dashboard>) -> Json<Session> {
    let inner = &dashboard.inner;
    Json(Session {
        prefix: inner.prefix.clone(),
        actions_allowed: inner.allow_actions,
        csrf_token: inner.allow_actions.then(|| inner.csrf.clone()),
        catalog_loaded: inner.catalog.is_some(),
        search_limit: SEARCH_LIMIT,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Overview {
    status: Status,
    throughput: ThroughputView,
}

/// `GET api/overview`: every stream, group and dead-letter stream now, and the throughput.
pub(crate) async fn overview(State(dashboard): State<Dashboard>) -> Answer<Overview> {
    let status = dashboard.inner.inspector.status().await?;
    Ok(Json(Overview {
        status,
        throughput: dashboard.inner.throughput.view(),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupQuery {
    category: String,
    group: String,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeadLetterList {
    category: String,
    group: String,
    /// Dead letters in the stream (more than listed when over the limit).
    total: u64,
    letters: Vec<DeadLetterView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeadLetterView {
    id: String,
    /// When it was dead-lettered.
    at: Option<EntryStamp>,
    stream: String,
    entry_id: String,
    group: String,
    reason: String,
    deliveries: u64,
    /// The event, redacted; `None` when it is not a JSON object.
    event: Option<EventView>,
    /// The size of the raw event.
    event_bytes: usize,
    /// Whether it holds an envelope, so it can be replayed.
    replayable: bool,
}

impl DeadLetterView {
    fn of(dashboard: &Dashboard, letter: DeadLetter) -> Self {
        Self {
            at: EntryStamp::of(&letter.id),
            event: event_view(dashboard.inner.catalog.as_ref(), &letter.event),
            event_bytes: letter.event.len(),
            replayable: letter.envelope().is_some(),
            id: letter.id,
            stream: letter.stream,
            entry_id: letter.entry_id,
            group: letter.group,
            reason: letter.reason,
            deliveries: letter.deliveries,
        }
    }
}

/// `GET api/dead-letters?category=C&group=G[&limit=N]`: the group's dead letters, oldest first.
pub(crate) async fn dead_letters(
    State(dashboard): State<Dashboard>,
    Query(query): Query<GroupQuery>,
) -> Answer<DeadLetterList> {
    let letters = &dashboard.inner.letters;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let total = letters.len(&query.category, &query.group).await?;
    let list = letters.list(&query.category, &query.group, limit).await?;
    Ok(Json(DeadLetterList {
        letters: list
            .into_iter()
            .map(|letter| DeadLetterView::of(&dashboard, letter))
            .collect(),
        category: query.category,
        group: query.group,
        total,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LetterQuery {
    category: String,
    group: String,
    id: String,
}

/// `GET api/dead-letter?category=C&group=G&id=ID`: one dead letter, 404 when it is not there.
pub(crate) async fn dead_letter(
    State(dashboard): State<Dashboard>,
    Query(query): Query<LetterQuery>,
) -> Answer<DeadLetterView> {
    let letter = dashboard
        .inner
        .letters
        .get(&query.category, &query.group, &query.id)
        .await?
        .ok_or_else(|| not_there(&query))?;
    Ok(Json(DeadLetterView::of(&dashboard, letter)))
}

fn not_there(query: &LetterQuery) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no dead letter {} of group {} in category {}",
            query.id, query.group, query.category
        ),
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Replayed {
    /// The new entry of the event on its category stream.
    entry_id: String,
}

/// `POST api/dead-letters/replay` with `{"category", "group", "id"}`: puts the dead letter's
/// event back on its stream and deletes the dead letter, in one step. 404 when it is not there,
/// 422 when it holds no envelope.
pub(crate) async fn replay(
    State(dashboard): State<Dashboard>,
    Json(query): Json<LetterQuery>,
) -> Answer<Replayed> {
    let letters = &dashboard.inner.letters;
    let letter = letters
        .get(&query.category, &query.group, &query.id)
        .await?
        .ok_or_else(|| not_there(&query))?;
    if letter.envelope().is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "dead letter {} holds no event envelope and cannot be replayed; delete it",
                query.id
            ),
        ));
    }
    let entry_id = letters
        .replay(&query.category, &query.group, &query.id)
        .await?
        .ok_or_else(|| not_there(&query))?;
    tracing::info!(category = %query.category, group = %query.group, id = %query.id, %entry_id,
        "dashboard: dead letter replayed");
    Ok(Json(Replayed { entry_id }))
}

#[derive(Debug, Serialize)]
pub(crate) struct Deleted {
    /// False when it was not there (any more).
    deleted: bool,
}

/// `POST api/dead-letters/delete` with `{"category", "group", "id"}`: deletes the dead letter.
pub(crate) async fn delete(
    State(dashboard): State<Dashboard>,
    Json(query): Json<LetterQuery>,
) -> Answer<Deleted> {
    let deleted = dashboard
        .inner
        .letters
        .delete(&query.category, &query.group, &query.id)
        .await?;
    tracing::info!(category = %query.category, group = %query.group, id = %query.id, deleted,
        "dashboard: dead letter deleted");
    Ok(Json(Deleted { deleted }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupQuery {
    event_id: Option<String>,
    idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupView {
    idempotency_key: Option<String>,
    entries: Vec<EntryView>,
    claims: Vec<RecordView>,
    groups: Vec<GroupView>,
    scanned: u64,
    truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    stream: String,
    category: String,
    id: String,
    at: Option<EntryStamp>,
    event: Option<EventView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordView {
    category: String,
    key: String,
    event_id: String,
    ttl_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupView {
    category: String,
    group: String,
    /// Its done record, `None` when it has not handled the key.
    done: Option<RecordView>,
}

/// `GET api/lookup?eventId=ID` or `?idempotencyKey=KEY`: the event's entries, its claim and the
/// groups' done records.
pub(crate) async fn lookup(
    State(dashboard): State<Dashboard>,
    Query(query): Query<LookupQuery>,
) -> Answer<LookupView> {
    let inspector = &dashboard.inner.inspector;
    let found = match (&query.event_id, &query.idempotency_key) {
        (Some(id), None) => inspector.find_event(id).await?,
        (None, Some(key)) => inspector.find_key(key).await?,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give one of eventId and idempotencyKey",
            ));
        }
    };
    Ok(Json(lookup_view(&dashboard, found)))
}

fn lookup_view(dashboard: &Dashboard, found: EventLookup) -> LookupView {
    let record = |r: domain_events_redis::KeyRecord| RecordView {
        category: r.category,
        key: r.key,
        event_id: r.event_id,
        ttl_ms: r.ttl_ms,
    };
    let catalog = dashboard.inner.catalog.as_ref();
    LookupView {
        idempotency_key: found.idempotency_key,
        entries: found
            .entries
            .into_iter()
            .map(|entry| EntryView {
                at: EntryStamp::of(&entry.id),
                event: serde_json::to_vec(&entry.envelope)
                    .ok()
                    .and_then(|bytes| event_view(catalog, &bytes)),
                stream: entry.stream,
                category: entry.category,
                id: entry.id,
            })
            .collect(),
        claims: found.claims.into_iter().map(record).collect(),
        groups: found
            .groups
            .into_iter()
            .map(|g| GroupView {
                category: g.category,
                group: g.group,
                done: g.done.map(record),
            })
            .collect(),
        scanned: found.scanned,
        truncated: found.truncated,
    }
}

/// `GET api/catalog`: the event catalog.
pub(crate) async fn catalog(State(dashboard): State<Dashboard>) -> Json<CatalogView> {
    Json(catalog_view(dashboard.inner.catalog.as_ref()))
}
