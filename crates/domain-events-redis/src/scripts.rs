//! The Lua scripts that make each multi-key step atomic. Every script touches keys of one
//! category only, so all its keys share the category's hash tag (one slot).
//!
//! Scripts are sent with `EVALSHA`; after a Redis restart (or `SCRIPT FLUSH`) the `NOSCRIPT`
//! answer is handled by loading the script and sending the call again, which is safe because a
//! `NOSCRIPT` call did nothing.

use std::sync::LazyLock;

use crate::connection::Connection;
use redis::{Cmd, ErrorKind, Pipeline, RedisResult, Script, ServerErrorKind, Value};

/// Producer side: for each event of one category, take its idempotency claim and append its
/// entry, or do neither. One call carries a whole batch (or one event), so Redis runs one script
/// per batch and category instead of one per event.
///
/// - `KEYS[1]`: the stream; `KEYS[1 + i]`: the claim `<prefix>:{<category>}:idem:<key>` of event
///   `i` (1-based).
/// - `ARGV[1]`: claim TTL in ms (≥ 1); `ARGV[2]`: MAXLEN (approximate); then three per event:
///   eventId, type string, envelope JSON.
/// - A single event is appended with `MAXLEN ~`; a batch is appended plainly and the stream
///   trimmed once (`XTRIM MAXLEN ~`) at the end, which costs Redis less per event.
/// - Returns two items per event, in order: `1, <entry id>` when the claim was free and the
///   entry was appended; `0, <eventId holding the claim>` when the key was already claimed
///   (nothing appended); `2, <error>` when the append failed (e.g. the stream key holds another
///   type), in which case the claim was released, so a claim never exists without its entry.
pub(crate) const EMIT: &str = r#"
local out = {}
local single = #KEYS == 2
local appended = false
for i = 2, #KEYS do
  local a = 3 * i - 3
  if redis.call('SET', KEYS[i], ARGV[a], 'NX', 'PX', ARGV[1]) then
    local id
    if single then
      id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'type', ARGV[a + 1], 'event', ARGV[a + 2])
    else
      id = redis.pcall('XADD', KEYS[1], '*', 'type', ARGV[a + 1], 'event', ARGV[a + 2])
    end
    if type(id) == 'table' and id.err then
      redis.call('DEL', KEYS[i])
      out[#out + 1] = 2
      out[#out + 1] = id.err
    else
      appended = true
      out[#out + 1] = 1
      out[#out + 1] = id
    end
  else
    out[#out + 1] = 0
    out[#out + 1] = redis.call('GET', KEYS[i]) or ''
  end
end
if appended and not single then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
end
return out
"#;

/// Events (or entries) per call of [`EMIT`] or [`ACK_DONE`] at most: bounds how long one call
/// keeps Redis busy (about a millisecond) while still spreading the call's own cost over many.
pub(crate) const SCRIPT_CHUNK: usize = 256;

/// Consumer side, after the handlers succeeded: for each entry of one stream, write the done
/// record and acknowledge the entry, in one step. One call carries the entries of a stream whose
/// handlers finished meanwhile (or one entry).
///
/// - `KEYS[1]`: the stream; `KEYS[1 + i]`: the done record
///   `<prefix>:{<category>}:done:<group>:<key>` of entry `i` (1-based).
/// - `ARGV[1]`: group; `ARGV[2]`: done TTL in ms (≥ 1); then two per entry: entry id, eventId
///   (the record's value).
/// - Returns, per entry, the number of entries acknowledged (0 if another consumer settled it
///   meanwhile).
pub(crate) const ACK_DONE: &str = r#"
local out = {}
for i = 2, #KEYS do
  local a = 2 * i - 1
  redis.call('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[2])
  out[#out + 1] = redis.call('XACK', KEYS[1], ARGV[1], ARGV[a])
end
return out
"#;

/// Consumer side: copy an entry to the group's dead-letter stream and acknowledge it, in one step,
/// once: an entry no longer pending in the group (settled by another consumer) is left alone.
///
/// - `KEYS[1]`: the stream; `KEYS[2]`: the dead-letter stream `<prefix>:{<category>}:dlq:<group>`.
/// - `ARGV`: group, entry id, reason, deliveries, raw `event` bytes (empty when the entry had
///   none), MAXLEN (approximate) of the dead-letter stream.
/// - Returns the dead-letter entry id, or nil when the entry was not pending any more.
/// - The dead letter's fields are `stream`, `entryId`, `group`, `reason`, `deliveries`, `event`
///   (docs/contract.md section 4).
pub(crate) const DEAD_LETTER: &str = r#"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'stream', KEYS[1], 'entryId', ARGV[2], 'group', ARGV[1], 'reason', ARGV[3],
  'deliveries', ARGV[4], 'event', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
"#;

/// Dead letters: move one dead letter back to its category stream, once.
///
/// - `KEYS[1]`: the dead-letter stream; `KEYS[2]`: the category stream.
/// - `ARGV`: dead-letter entry id, MAXLEN (approximate), type string, raw `event` bytes.
/// - Returns the new entry id, or nil when the dead letter does not exist (any more).
pub(crate) const REPLAY: &str = r#"
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', ARGV[3], 'event', ARGV[4])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"#;

/// [`EMIT`], hashed once.
pub(crate) static EMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(EMIT));
/// [`ACK_DONE`], hashed once.
pub(crate) static ACK_DONE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACK_DONE));
/// [`DEAD_LETTER`], hashed once.
pub(crate) static DEAD_LETTER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(DEAD_LETTER));
/// [`REPLAY`], hashed once.
pub(crate) static REPLAY_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REPLAY));

/// The items of each script call, by index: grouped by `keys` (one stream or category per call,
/// so the keys of a call share one hash tag) in the order they first appear, at most
/// [`SCRIPT_CHUNK`] per call, each group in the order of the items.
pub(crate) fn calls_by_key<K: PartialEq>(keys: impl IntoIterator<Item = K>) -> Vec<Vec<usize>> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        match groups.iter_mut().find(|(group, _)| *group == key) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((key, vec![index])),
        }
    }
    let mut calls = Vec::with_capacity(groups.len());
    for (_, indices) in groups {
        if indices.len() <= SCRIPT_CHUNK {
            calls.push(indices);
        } else {
            calls.extend(indices.chunks(SCRIPT_CHUNK).map(<[usize]>::to_vec));
        }
    }
    calls
}

/// Sends the `count` calls of `build` as one pipeline, one reply per call. When Redis answers
/// `NOSCRIPT` (its script cache was emptied, by a restart: nothing ran), loads `script` and sends
/// them again, in one round trip.
pub(crate) async fn send_calls<I>(
    conn: &Connection,
    script: &str,
    count: usize,
    build: impl Fn() -> I,
) -> RedisResult<Vec<RedisResult<Value>>>
where
    I: Iterator<Item = Cmd>,
{
    let replies = pipeline(conn, None, count, build()).await?;
    if !replies.iter().any(is_noscript) {
        return Ok(replies);
    }
    tracing::debug!("script not loaded, loading it");
    pipeline(conn, Some(script), count, build()).await
}

async fn pipeline(
    conn: &Connection,
    load: Option<&str>,
    count: usize,
    calls: impl Iterator<Item = Cmd>,
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = Pipeline::with_capacity(count + 1);
    if let Some(script) = load {
        pipe.add_command(redis::cmd("SCRIPT").arg("LOAD").arg(script).clone())
            .ignore();
    }
    for call in calls {
        pipe.add_command(call);
    }
    pipe.ignore_errors();
    let mut conn = conn.clone();
    let mut replies: Vec<RedisResult<Value>> = pipe.query_async(&mut conn).await?;
    if load.is_some() && replies.len() == count + 1 {
        // `ignore()` does not drop replies when errors are kept; drop the SCRIPT LOAD reply.
        drop(replies.remove(0));
    }
    if replies.len() != count {
        return Err(redis::RedisError::from((
            ErrorKind::Parse,
            "unexpected number of replies",
            format!("{} replies to {count} calls", replies.len()),
        )));
    }
    Ok(replies)
}

fn is_noscript(reply: &RedisResult<Value>) -> bool {
    matches!(reply, Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

/// A TTL in whole milliseconds, at least 1 (Redis refuses `PX 0`).
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hash_and_ttls_round_up() {
        for script in [
            &*EMIT_SCRIPT,
            &*ACK_DONE_SCRIPT,
            &*DEAD_LETTER_SCRIPT,
            &*REPLAY_SCRIPT,
        ] {
            assert_eq!(script.get_hash().len(), 40);
        }
        assert_eq!(ttl_ms(std::time::Duration::ZERO), 1);
        assert_eq!(ttl_ms(std::time::Duration::from_secs(2)), 2000);
    }
}
