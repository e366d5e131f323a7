//! Stream entries read from raw Redis replies, tolerating anything: field names and values are
//! kept as bytes, so one odd entry can never make a whole read fail.

use redis::Value;

use crate::error::Error;

/// One stream entry: its id and fields, as bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The entry id, `<ms>-<seq>`.
    pub(crate) id: String,
    /// The fields in order; `None` when the entry was deleted while pending.
    pub(crate) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    /// The first value of `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }
}

impl std::fmt::Debug for Entry {
    /// Shows field names and sizes, never values (they may hold sensitive payload data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Option<Vec<String>> = self.fields.as_ref().map(|fields| {
            fields
                .iter()
                .map(|(k, v)| format!("{}: {} bytes", String::from_utf8_lossy(k), v.len()))
                .collect()
        });
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("fields", &fields)
            .finish()
    }
}

/// Bytes of a string-like value.
pub(crate) fn bytes_of(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => {
            Some(text.clone().into_bytes())
        }
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// A string-like value as text (lossy).
pub(crate) fn text_of(value: &Value) -> Option<String> {
    bytes_of(value).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The bytes of a string-like value, moved out of it (replies are read once, so nothing is
/// copied: an entry's `event` JSON goes from the reply to the handler without a copy).
fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// A string-like value as text (lossy), moved out of it.
fn into_text(value: Value) -> Option<String> {
    into_bytes(value).map(|bytes| {
        String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    })
}

/// One entry, `[id, [k, v, k, v, ...]]` (fields nil for a deleted entry). `None` for anything
/// else, including the nil that old servers send for claimed entries that were deleted.
pub(crate) fn parse_entry(value: Value) -> Option<Entry> {
    let Value::Array(parts) = value else {
        return None;
    };
    let mut parts = parts.into_iter();
    let id = into_text(parts.next()?)?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(Value::Array(flat)) => {
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                if let Some(k) = into_bytes(k) {
                    fields.push((k, into_bytes(v).unwrap_or_default()));
                }
            }
            Some(fields)
        }
        Some(Value::Map(pairs)) => Some(
            pairs
                .into_iter()
                .filter_map(|(k, v)| Some((into_bytes(k)?, into_bytes(v).unwrap_or_default())))
                .collect(),
        ),
        Some(_) => None,
    };
    Some(Entry { id, fields })
}

/// A list of entries (`XRANGE`, `XCLAIM`).
pub(crate) fn parse_entries(value: Value) -> Result<Vec<Entry>, Error> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => Ok(items.into_iter().filter_map(parse_entry).collect()),
        other => Err(Error::Protocol(format!(
            "expected a list of stream entries, got {}",
            kind(&other)
        ))),
    }
}

/// An `XREAD`/`XREADGROUP` reply: entries per stream key (RESP2 array or RESP3 map); nil when the
/// block timed out.
pub(crate) fn parse_read(value: Value) -> Result<Vec<(String, Vec<Entry>)>, Error> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    Some((pair.next()?, pair.next()?))
                }
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        other => {
            return Err(Error::Protocol(format!(
                "expected a stream read reply, got {}",
                kind(&other)
            )));
        }
    };
    pairs
        .into_iter()
        .map(|(key, entries)| {
            let key = into_text(key)
                .ok_or_else(|| Error::Protocol("stream name is not a string".into()))?;
            Ok((key, parse_entries(entries)?))
        })
        .collect()
}

/// An entry a consumer script dead-lettered inside Redis (too large to deliver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadLettered {
    /// The entry id.
    pub(crate) id: String,
    /// Why, e.g. `entry of 20971551 bytes is larger than the limit of 4194304 bytes`.
    pub(crate) reason: String,
    /// Its delivery count when it was dead-lettered.
    pub(crate) deliveries: u64,
}

/// The reply of the consumer's read and claim scripts: `{entries, dead}`, the entries delivered
/// (as `XREADGROUP`/`XCLAIM` list them) and those dead-lettered (`[id, reason, deliveries]`).
pub(crate) fn parse_scripted(value: Value) -> Result<(Vec<Entry>, Vec<DeadLettered>), Error> {
    let Value::Array(parts) = value else {
        return Err(Error::Protocol(format!(
            "expected the entries and dead letters of a consumer script, got {}",
            kind(&value)
        )));
    };
    let mut parts = parts.into_iter();
    let entries = parts.next().map_or(Ok(Vec::new()), parse_entries)?;
    let dead = match parts.next() {
        Some(Value::Array(rows)) => rows
            .into_iter()
            .filter_map(|row| {
                let Value::Array(cols) = row else {
                    return None;
                };
                let mut cols = cols.into_iter();
                Some(DeadLettered {
                    id: into_text(cols.next()?)?,
                    reason: into_text(cols.next()?)?,
                    deliveries: match cols.next() {
                        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
                        Some(other) => into_text(other)?.parse().ok()?,
                        None => 0,
                    },
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok((entries, dead))
}

/// The size of an entry as the consumer's scripts count it: its field names' and values' lengths.
pub(crate) fn entry_size(entry: &Entry) -> usize {
    entry.fields.as_ref().map_or(0, |fields| {
        fields.iter().map(|(k, v)| k.len() + v.len()).sum()
    })
}

/// One row of `XPENDING <key> <group> [IDLE ms] <start> <end> <count>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) id: String,
    pub(crate) consumer: String,
    pub(crate) deliveries: u64,
}

/// An extended `XPENDING` reply.
pub(crate) fn parse_pending(value: &Value) -> Result<Vec<Pending>, Error> {
    let Value::Array(rows) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            other => Err(Error::Protocol(format!(
                "expected XPENDING rows, got {}",
                kind(other)
            ))),
        };
    };
    Ok(rows
        .iter()
        .filter_map(|row| match row {
            Value::Array(cols) if cols.len() >= 4 => Some(Pending {
                id: text_of(&cols[0])?,
                consumer: text_of(&cols[1])?,
                deliveries: match &cols[3] {
                    Value::Int(n) => u64::try_from(*n).unwrap_or(0),
                    other => text_of(other)?.parse().ok()?,
                },
            }),
            _ => None,
        })
        .collect())
}

/// A short name of a value's kind, for errors (never its content).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::ServerError(_) => "an error",
        _ => "another kind of value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    #[test]
    fn odd_entries_are_read_or_skipped_never_fail_the_read() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(b"p:{image}"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk(b"1-0"),
                    Value::Array(vec![
                        bulk(b"type"),
                        bulk(b"t"),
                        bulk(b"event"),
                        bulk(b"\xff\xfe"),
                    ]),
                ]),
                Value::Array(vec![bulk(b"2-0"), Value::Nil]),
                Value::Array(vec![
                    bulk(b"3-0"),
                    Value::Array(vec![bulk(b"\xffodd"), bulk(b"x"), bulk(b"dangling")]),
                ]),
                Value::Nil,
                Value::Int(7),
            ]),
        ])]);
        let read = parse_read(reply).expect("parsed");
        assert_eq!(read.len(), 1);
        let (stream, entries) = &read[0];
        assert_eq!(stream, "p:{image}");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].field("event"), Some(&b"\xff\xfe"[..]));
        assert_eq!(entries[0].field("type"), Some(&b"t"[..]));
        assert_eq!(entries[1].fields, None);
        assert_eq!(entries[2].field("event"), None);
        assert!(
            !format!("{:?}", entries[0]).contains('t')
                || format!("{:?}", entries[0]).contains("bytes")
        );
        assert_eq!(parse_read(Value::Nil).expect("timeout"), Vec::new());
        assert!(parse_read(Value::Int(1)).is_err());
    }

    #[test]
    fn script_replies_are_parsed() {
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Array(vec![
                bulk(b"1-0"),
                Value::Array(vec![bulk(b"type"), bulk(b"t"), bulk(b"event"), bulk(b"{}")]),
            ])]),
            Value::Array(vec![
                Value::Array(vec![bulk(b"2-0"), bulk(b"too large"), Value::Int(3)]),
                Value::Int(1),
            ]),
        ]);
        let (entries, dead) = parse_scripted(reply).expect("parsed");
        assert_eq!(entries.len(), 1);
        assert_eq!(entry_size(&entries[0]), 4 + 1 + 5 + 2);
        assert_eq!(
            dead,
            vec![DeadLettered {
                id: "2-0".into(),
                reason: "too large".into(),
                deliveries: 3
            }]
        );
        let empty = Value::Array(vec![Value::Array(vec![]), Value::Array(vec![])]);
        assert_eq!(
            parse_scripted(empty).expect("parsed"),
            (Vec::new(), Vec::new())
        );
        assert!(parse_scripted(Value::Int(1)).is_err());
    }

    #[test]
    fn pending_rows_are_parsed() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk(b"1-0"),
                bulk(b"c1"),
                Value::Int(10),
                Value::Int(3),
            ]),
            Value::Array(vec![bulk(b"bad")]),
        ]);
        let rows = parse_pending(&reply).expect("parsed");
        assert_eq!(
            rows,
            vec![Pending {
                id: "1-0".into(),
                consumer: "c1".into(),
                deliveries: 3
            }]
        );
    }
}
