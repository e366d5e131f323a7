//! Publishing one batch of rows through a [`Transport`]'s batch path, and telling what became of
//! each row: published, a duplicate (its key was claimed: published as far as the outbox is
//! concerned), dead (rejected for good), or not tried because the transport failed for now.

use std::time::Duration;

use domain_events::{OutgoingEvent, PublishOutcome, Transport, TransportError, Uuid};

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowOutcome {
    /// On the transport.
    Published,
    /// Its idempotency key was already claimed by another event: the transport holds the event
    /// once, so the row is done.
    Duplicate(Option<Uuid>),
    /// The transport rejected this row alone, for good, with its reason.
    Dead(String),
}

/// The outcome of a batch: one outcome per row of a prefix of the batch, and the transient error
/// that stopped it before the rest, if any.
#[derive(Debug)]
pub(crate) struct BatchOutcome {
    pub(crate) rows: Vec<RowOutcome>,
    pub(crate) stopped: Option<TransportError>,
}

/// Publishes `events` in one call. When the transport rejects the call for good, each event is
/// sent alone, in order, so that only the events it rejects go dead and the others are published.
/// A transient failure stops the batch; what follows stays pending.
pub(crate) async fn publish(
    transport: &dyn Transport,
    events: &[OutgoingEvent],
    timeout: Duration,
) -> BatchOutcome {
    match call(transport, events, timeout).await {
        Ok(outcomes) => BatchOutcome {
            rows: outcomes.into_iter().map(row_outcome).collect(),
            stopped: None,
        },
        Err(error) if error.is_transient() => BatchOutcome {
            rows: Vec::new(),
            stopped: Some(error),
        },
        Err(error) if events.len() == 1 => BatchOutcome {
            rows: vec![RowOutcome::Dead(error.to_string())],
            stopped: None,
        },
        Err(error) => {
            tracing::debug!(error = %error, events = events.len(),
                "batch rejected; sending its events one by one to find the rejected ones");
            one_by_one(transport, events, timeout).await
        }
    }
}

async fn one_by_one(
    transport: &dyn Transport,
    events: &[OutgoingEvent],
    timeout: Duration,
) -> BatchOutcome {
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        match call(transport, std::slice::from_ref(event), timeout).await {
            Ok(mut outcomes) => rows.extend(outcomes.pop().map(row_outcome)),
            Err(error) if error.is_transient() => {
                return BatchOutcome {
                    rows,
                    stopped: Some(error),
                };
            }
            Err(error) => rows.push(RowOutcome::Dead(error.to_string())),
        }
    }
    BatchOutcome {
        rows,
        stopped: None,
    }
}

/// One transport call within `timeout`, checked to answer one outcome per event. A call that
/// does not answer in time may have published: [`TransportError::Unknown`], which is transient
/// (sending again is absorbed by the idempotency claim).
async fn call(
    transport: &dyn Transport,
    events: &[OutgoingEvent],
    timeout: Duration,
) -> Result<Vec<PublishOutcome>, TransportError> {
    let outcomes = tokio::time::timeout(timeout, transport.publish(events))
        .await
        .map_err(|_| {
            TransportError::unknown(format!(
                "transport `{}` did not answer within {timeout:?}",
                transport.name()
            ))
        })??;
    if outcomes.len() != events.len() {
        return Err(TransportError::other(format!(
            "transport `{}` returned {} outcomes for {} events",
            transport.name(),
            outcomes.len(),
            events.len()
        )));
    }
    Ok(outcomes)
}

fn row_outcome(outcome: PublishOutcome) -> RowOutcome {
    match outcome {
        PublishOutcome::Published => RowOutcome::Published,
        PublishOutcome::Duplicate { existing_event_id } => RowOutcome::Duplicate(existing_event_id),
    }
}
