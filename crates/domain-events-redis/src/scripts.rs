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

/// The Lua functions the consumer's scripts share: an entry's size, and dead-lettering an entry
/// from inside Redis (the `event` bytes never leave it). `dead_letter(stream, dlq, group, id,
/// reason, deliveries, maxlen, fields)` writes the dead letter with the fields `stream`,
/// `entryId`, `group`, `reason`, `deliveries`, `event` (the entry's first `event` value, empty
/// when it had none; docs/contract.md section 4) and acknowledges the entry.
macro_rules! consumer_lua_functions {
    () => {
        r#"
local function entry_size(fields)
  local size = 0
  if fields then
    for i = 1, #fields do
      size = size + #fields[i]
    end
  end
  return size
end
local function dead_letter(stream, dlq, group, id, reason, deliveries, maxlen, fields)
  local event = ''
  if fields then
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'event' then
        event = fields[i + 1]
        break
      end
    end
  end
  local letter = redis.call('XADD', dlq, 'MAXLEN', '~', maxlen, '*',
    'stream', stream, 'entryId', id, 'group', group, 'reason', reason,
    'deliveries', deliveries, 'event', event)
  redis.call('XACK', stream, group, id)
  return letter
end
local function too_large(size, limit)
  return 'entry of ' .. size .. ' bytes is larger than the limit of ' .. limit .. ' bytes'
end
"#
    };
}

/// Consumer side: copy an entry to the group's dead-letter stream and acknowledge it, in one step,
/// once: an entry no longer pending in the group (settled by another consumer) is left alone. The
/// `event` bytes are copied from the stream by the script, so the consumer never sends them back.
///
/// - `KEYS[1]`: the stream; `KEYS[2]`: the dead-letter stream `<prefix>:{<category>}:dlq:<group>`.
/// - `ARGV`: group, entry id, reason, deliveries, MAXLEN (approximate) of the dead-letter stream.
/// - Returns the dead-letter entry id, or nil when the entry was not pending any more.
/// - The dead letter's fields are `stream`, `entryId`, `group`, `reason`, `deliveries`, `event`
///   (the entry's raw `event` bytes, empty when it had none or was deleted; docs/contract.md
///   section 4).
pub(crate) const DEAD_LETTER: &str = concat!(
    consumer_lua_functions!(),
    r#"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  return false
end
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
return dead_letter(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], entry and entry[2])
"#
);

/// Consumer side: reads new entries of one stream for a consumer (`XREADGROUP ... >` without
/// blocking), bounded in entries and in bytes. Entries are read in chunks (1, 4, 16, ... entries)
/// of at most as many as still fit the budget if each were as large as the entry limit, so the
/// entries returned add up to at most the budget without any entry being read and then left
/// aside, and a call reads at most one chunk of entries over the limit. An entry larger than the entry
/// limit is dead-lettered and acknowledged here, so its bytes never leave Redis. An entry's size
/// is the sum of its field names' and values' lengths.
///
/// - `KEYS[1]`: the stream; `KEYS[2]`: the group's dead-letter stream.
/// - `ARGV`: group, consumer, count (≥ 1), byte budget, entry limit (≤ the budget), MAXLEN
///   (approximate) of the dead-letter stream.
/// - Returns `{entries, dead}`: `entries` as `XREADGROUP` lists them (`[id, [k, v, ...]]`), at
///   least one when one was there and within the entry limit; `dead` the entries dead-lettered,
///   `[id, reason, deliveries]` (reading stops once their sizes reach the budget, which bounds
///   the time one call keeps Redis busy).
/// - A missing group (or stream) answers `XREADGROUP`'s own `NOGROUP` error.
pub(crate) const READ: &str = concat!(
    consumer_lua_functions!(),
    r#"
local stream, dlq, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local count, budget, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local entries, dead, taken, dropped, grow = {}, {}, 0, 0, 1
while dropped < budget do
  local chunk = math.min(grow, count - #entries - #dead, math.floor((budget - taken) / limit))
  grow = grow * 4
  if chunk < 1 then break end
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', chunk, 'STREAMS', stream, '>')
  if type(reply) == 'table' and reply.err then
    return reply
  end
  local read = reply and reply[1][2] or {}
  for _, entry in ipairs(read) do
    local size = entry_size(entry[2])
    if size > limit then
      local reason = too_large(size, limit)
      dead_letter(stream, dlq, group, entry[1], reason, 1, ARGV[6], entry[2])
      dead[#dead + 1] = {entry[1], reason, 1}
      dropped = dropped + size
    else
      entries[#entries + 1] = entry
      taken = taken + size
    end
  end
  if #read < chunk then break end
end
return {entries, dead}
"#
);

/// Consumer side: claims pending entries of one stream for a consumer (`XCLAIM`, which counts a
/// delivery), one by one, bounded in bytes like [`READ`]: only while one more entry within the
/// entry limit still fits the budget (the ids left stay with their owner, for a later claim). An
/// entry larger than the entry limit is dead-lettered and acknowledged here, so its bytes never
/// leave Redis.
///
/// - `KEYS[1]`: the stream; `KEYS[2]`: the group's dead-letter stream.
/// - `ARGV`: group, consumer, min idle time in ms, byte budget, entry limit (≤ the budget), MAXLEN
///   (approximate) of the dead-letter stream, then the ids to claim, in order.
/// - Returns `{entries, dead}`: `entries` as `XCLAIM` lists them, `dead` the entries
///   dead-lettered, `[id, reason, deliveries]`.
pub(crate) const CLAIM: &str = concat!(
    consumer_lua_functions!(),
    r#"
local stream, dlq, group, consumer, idle = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local budget, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local entries, dead, taken, dropped = {}, {}, 0, 0
for i = 7, #ARGV do
  if taken + limit > budget or dropped >= budget then break end
  local entry = redis.call('XCLAIM', stream, group, consumer, idle, ARGV[i])[1]
  if entry then
    local size = entry_size(entry[2])
    if size > limit then
      local row = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)[1]
      local deliveries = row and row[4] or 1
      local reason = too_large(size, limit)
      dead_letter(stream, dlq, group, entry[1], reason, deliveries, ARGV[6], entry[2])
      dead[#dead + 1] = {entry[1], reason, deliveries}
      dropped = dropped + size
    else
      entries[#entries + 1] = entry
      taken = taken + size
    end
  end
end
return {entries, dead}
"#
);

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
/// [`READ`], hashed once.
pub(crate) static READ_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(READ));
/// [`CLAIM`], hashed once.
pub(crate) static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM));
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
/// `NOSCRIPT` to calls (its script cache was emptied, by a restart: those calls did nothing; on a
/// cluster, only the nodes without the script answer so), loads `script` and sends those calls
/// again, in one round trip.
pub(crate) async fn send_calls<I>(
    conn: &Connection,
    script: &str,
    count: usize,
    build: impl Fn() -> I,
) -> RedisResult<Vec<RedisResult<Value>>>
where
    I: Iterator<Item = Cmd>,
{
    let mut replies = pipeline(conn, None, count, build()).await?;
    let missing: Vec<usize> = replies
        .iter()
        .enumerate()
        .filter(|(_, reply)| is_noscript(reply))
        .map(|(index, _)| index)
        .collect();
    if missing.is_empty() {
        return Ok(replies);
    }
    tracing::debug!("script not loaded, loading it");
    // Only the calls that answered NOSCRIPT are sent again: on a cluster the others ran on nodes
    // that had the script, and sending them twice would, for a read, leave the entries of the
    // first run pending and unseen until they are claimed.
    let again: Vec<Cmd> = build()
        .enumerate()
        .filter(|(index, _)| missing.contains(index))
        .map(|(_, call)| call)
        .collect();
    let answers = pipeline(conn, Some(script), missing.len(), again.into_iter()).await?;
    for (index, answer) in missing.into_iter().zip(answers) {
        replies[index] = answer;
    }
    Ok(replies)
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
            &*READ_SCRIPT,
            &*CLAIM_SCRIPT,
            &*REPLAY_SCRIPT,
        ] {
            assert_eq!(script.get_hash().len(), 40);
        }
        assert_eq!(ttl_ms(std::time::Duration::ZERO), 1);
        assert_eq!(ttl_ms(std::time::Duration::from_secs(2)), 2000);
    }
}
