//! [`Acker`]: a consumer's done records and acknowledgements, sent in groups.
//!
//! Each entry whose handlers succeeded gets its done record and its `XACK` in one atomic step
//! (the [`ACK_DONE`] script). Entries that finish while another acknowledgement is in flight are
//! acknowledged together, one script call per stream ([`crate::coalesce`]).

use std::future::Future;
use std::sync::Arc;

use crate::connection::Connection;
use domain_events::Uuid;
use redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};

use crate::coalesce::{Answer, Coalescer, Sink, submit};
use crate::scripts::{ACK_DONE, ACK_DONE_SCRIPT, calls_by_key, send_calls};

/// One entry to settle: write its done record, acknowledge it.
#[derive(Clone)]
pub(crate) struct Ack {
    /// The stream the entry is in.
    pub(crate) stream: Arc<str>,
    /// The entry's id.
    pub(crate) entry_id: String,
    /// The group's done record of the event's idempotency key.
    pub(crate) done_key: String,
    /// The event's id, the done record's value.
    pub(crate) event_id: Uuid,
}

/// Sends [`Ack`]s for one consumer group; clones share the connection and the queue.
#[derive(Clone)]
pub(crate) struct Acker {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connection,
    group: String,
    /// The done records' TTL in ms (≥ 1).
    ttl_ms: u64,
    coalescer: Coalescer<Acker>,
}

impl Acker {
    pub(crate) fn new(conn: Connection, group: String, ttl_ms: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn,
                group,
                ttl_ms,
                coalescer: Coalescer::default(),
            }),
        }
    }

    /// Writes the done record of `ack` and acknowledges its entry (with those of other entries
    /// that finish meanwhile).
    pub(crate) async fn ack(&self, ack: Ack) -> Result<(), RedisError> {
        submit(self, std::slice::from_ref(&ack))
            .await?
            .pop()
            .unwrap_or_else(|| Err(lost("no answer for the acknowledgement")))
    }

    /// `EVALSHA <ack-done> <1 + n> <stream> <done record>... <group> <ttl> (<entry id> <eventId>)...`
    /// for the entries at `indices` (one stream), in one buffer of the right size.
    fn call(&self, acks: &[Ack], indices: &[usize]) -> Cmd {
        let size: usize = indices
            .iter()
            .map(|&i| acks[i].done_key.len() + acks[i].entry_id.len() + 64)
            .sum::<usize>()
            + self.inner.group.len()
            + 128;
        let mut cmd = Cmd::with_capacity(5 + 3 * indices.len(), size);
        cmd.arg("EVALSHA")
            .arg(ACK_DONE_SCRIPT.get_hash())
            .arg(1 + indices.len());
        let Some(&first) = indices.first() else {
            return cmd;
        };
        cmd.arg(&*acks[first].stream);
        for &i in indices {
            cmd.arg(&acks[i].done_key);
        }
        cmd.arg(&self.inner.group).arg(self.inner.ttl_ms);
        let mut event_id = Uuid::encode_buffer();
        for &i in indices {
            cmd.arg(&acks[i].entry_id)
                .arg(&*acks[i].event_id.hyphenated().encode_lower(&mut event_id));
        }
        cmd
    }

    async fn send_now(&self, acks: &[Ack]) -> Answer<Self> {
        let calls = calls_by_key(acks.iter().map(|ack| &ack.stream));
        let replies = send_calls(&self.inner.conn, ACK_DONE, calls.len(), || {
            calls.iter().map(|indices| self.call(acks, indices))
        })
        .await?;
        let mut results: Vec<Option<RedisResult<()>>> = (0..acks.len()).map(|_| None).collect();
        for (indices, reply) in calls.iter().zip(replies) {
            let answer = match reply {
                Ok(Value::Array(items)) if items.len() == indices.len() => Ok(()),
                Ok(other) => Err(lost(&format!("the ack script answered {other:?}"))),
                Err(error) => Err(error),
            };
            for &index in indices {
                results[index] = Some(answer.clone());
            }
        }
        Ok(results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(lost("an entry got no answer"))))
            .collect())
    }
}

/// An unexpected answer, as a Redis client error.
fn lost(detail: &str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "acknowledgement", detail.to_owned()))
}

impl Sink for Acker {
    type Item = Ack;
    type Outcome = ();
    type Error = RedisError;

    fn coalescer(&self) -> &Coalescer<Self> {
        &self.inner.coalescer
    }

    fn send(&self, items: &[Ack]) -> impl Future<Output = Answer<Self>> + Send {
        self.send_now(items)
    }

    fn abandoned(&self) -> RedisError {
        // An I/O error: the entry is settled again (writing the done record and acknowledging
        // twice is harmless).
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the call carrying this acknowledgement was abandoned (the runtime shut down)",
        ))
    }
}
