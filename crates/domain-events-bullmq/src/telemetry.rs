//! BullMQ's telemetry metadata: the job option `tm`, where BullMQ's own telemetry (the
//! `bullmq-otel` package) carries the trace context of a job, as the JSON text of an
//! OpenTelemetry propagation carrier (`{"traceparent":"00-…"}`). The transport writes the
//! envelope's `traceparent` there too, so that a Node.js worker with BullMQ telemetry continues
//! the trace; the consumer reads it for an envelope that has none (docs/contract.md section 5).

use serde::Deserialize;

/// Adds `"tm":…` (`ARGV[2]`) to the options of the job hash `KEYS[1]` when its data is the event
/// `ARGV[1]` (never another emission's job) and its options hold no `tm` yet. The options are
/// the JSON BullMQ's add script wrote; the entry is added before their closing brace, so nothing
/// else of them is rewritten. Answers 1 when it added it.
pub(crate) const ADD_TM_SCRIPT: &str = r#"
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return 0 end
local ok, event = pcall(cjson.decode, data)
if not ok or type(event) ~= 'table' or event['eventId'] ~= ARGV[1] then return 0 end
local opts = redis.call('HGET', KEYS[1], 'opts')
if not opts then return 0 end
local parsed, decoded = pcall(cjson.decode, opts)
if not parsed or type(decoded) ~= 'table' or decoded['tm'] ~= nil then return 0 end
local body = string.match(opts, '^%s*{(.-)}%s*$')
if not body then return 0 end
if string.match(body, '^%s*$') then
  opts = '{' .. ARGV[2] .. '}'
else
  opts = '{' .. body .. ',' .. ARGV[2] .. '}'
end
redis.call('HSET', KEYS[1], 'opts', opts)
return 1
"#;

/// The `"tm":…` entry of job options carrying `traceparent`, for [`ADD_TM_SCRIPT`].
pub(crate) fn tm_entry(traceparent: &str) -> String {
    let carrier = serde_json::json!({ "traceparent": traceparent }).to_string();
    format!("\"tm\":{}", serde_json::Value::String(carrier))
}

/// The job options of interest here.
#[derive(Deserialize)]
struct Options {
    tm: Option<String>,
}

/// The carrier in `tm`.
#[derive(Deserialize)]
struct Carrier {
    traceparent: Option<String>,
}

/// The `traceparent` in the `tm` of the job options `opts` (their JSON, as stored), if any.
pub(crate) fn traceparent_of_options(opts: &str) -> Option<String> {
    let tm = serde_json::from_str::<Options>(opts).ok()?.tm?;
    serde_json::from_str::<Carrier>(&tm).ok()?.traceparent
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn tm_holds_the_carrier_as_json_text() {
        let entry = tm_entry(TP);
        assert_eq!(
            entry,
            r#""tm":"{\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"}""#
        );
        let opts = format!(r#"{{"attempts":3,{entry}}}"#);
        assert_eq!(traceparent_of_options(&opts).as_deref(), Some(TP));
    }

    #[test]
    fn options_without_a_carrier_have_no_traceparent() {
        assert_eq!(traceparent_of_options(r#"{"attempts":3}"#), None);
        assert_eq!(traceparent_of_options(r#"{"tm":"not json"}"#), None);
        assert_eq!(traceparent_of_options(r#"{"tm":"{}"}"#), None);
        assert_eq!(traceparent_of_options("not json"), None);
    }
}
