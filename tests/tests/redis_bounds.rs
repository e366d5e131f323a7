//! Byte bounds of the Redis consumer against a real `redis-server`: a consumer process fed entries
//! far larger than its entry limit dead-letters them with their size as the reason, without ever
//! holding them all at once (its peak memory is measured), and goes on with the normal events.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain_events::{EmitBatch, Emitter};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{
    WorkerSettings, counter_key, counting_handlers, family_completed, init_tracing,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// Big entries appended.
const BIG_ENTRIES: usize = 30;
/// The `event` field of each big entry: 20 MiB.
const BIG_EVENT_BYTES: usize = 20 * 1024 * 1024;
/// The consumer's default entry limit (`DEFAULT_MAX_ENTRY_BYTES`).
const ENTRY_LIMIT: usize = 1024 * 1024;
/// The most the consumer process may use at its peak.
const PEAK_LIMIT_KB: u64 = 400 * 1024;
/// A bound against hanging, not a performance assertion.
const WAIT: Duration = Duration::from_secs(180);
/// The type of every entry.
const EVENT_TYPE: &str = "image:family_completed";

/// Emits `image:family_completed` of `variation` for each index, as one batch; their eventIds.
async fn emit_families(
    emitter: &Emitter,
    variation: &str,
    indices: std::ops::Range<u64>,
) -> Vec<String> {
    let mut batch = EmitBatch::new();
    for index in indices {
        batch.push(family_completed(variation, index)).unwrap();
    }
    emitter
        .emit_batch(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|emitted| emitted.event_id.to_string())
        .collect()
}

/// A worker process whose standard error is echoed and kept; killed when dropped.
struct Worker {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn spawn(settings: &WorkerSettings) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_redis-consumer-worker"))
            .envs(settings.to_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-consumer-worker");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("worker: {line}");
                kept.lock().expect("log").push(line);
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("worker output");
        assert_eq!(line.trim(), "ready", "the worker started");
        Worker { child, log }
    }

    /// Closes its standard input (a graceful shutdown), waits for it to exit and returns its peak
    /// resident memory in KiB.
    fn stop(mut self) -> u64 {
        drop(self.child.stdin.take());
        let mut output = String::new();
        let mut stdout = BufReader::new(self.child.stdout.take().expect("stdout"));
        while stdout.read_line(&mut output).expect("worker output") > 0 {}
        let status = self.child.wait().expect("exited");
        assert!(status.success(), "worker exited with {status}");
        output
            .lines()
            .find_map(|line| line.strip_prefix("peak_rss_kb="))
            .and_then(|kb| kb.trim().parse().ok())
            .unwrap_or_else(|| panic!("the worker printed no peak memory: {output}"))
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Each dead letter's `entryId`, `reason` and the length of its `event` field, read inside Redis
/// (the letters hold 600 MB).
async fn dead_letters(
    conn: &mut redis::aio::MultiplexedConnection,
    dlq: &str,
) -> Vec<(String, String, u64)> {
    const SUMMARY: &str = r#"
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f, row = entry[2], {'', '', 0}
  for i = 1, #f, 2 do
    if f[i] == 'entryId' then row[1] = f[i + 1] end
    if f[i] == 'reason' then row[2] = f[i + 1] end
    if f[i] == 'event' then row[3] = #f[i + 1] end
  end
  out[#out + 1] = row
end
return out
"#;
    redis::Script::new(SUMMARY)
        .key(dlq)
        .invoke_async(conn)
        .await
        .expect("dead letters")
}

/// Appends a raw entry with `event` as its event field; returns its id.
async fn append_big(conn: &mut MultiplexedConnection, stream: &str, event: &str) -> String {
    redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("type")
        .arg(EVENT_TYPE)
        .arg("event")
        .arg(event.as_bytes())
        .query_async(conn)
        .await
        .expect("XADD of a big entry")
}

/// Waits until `letters` dead letters were written, every event of `event_ids` was handled and
/// nothing is pending; false if that did not happen within [`WAIT`].
async fn wait_settled(
    conn: &mut MultiplexedConnection,
    (stream, dlq, group): (&str, &str, &str),
    letters: usize,
    event_ids: &[String],
) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let written: u64 = conn.xlen(dlq).await.expect("XLEN");
        let pending: redis::streams::StreamPendingReply =
            conn.xpending(stream, group).await.expect("XPENDING");
        let mut handled = 0;
        for event_id in event_ids {
            let count: Option<u64> = conn
                .get(counter_key("bounds-test", event_id))
                .await
                .expect("GET");
            handled += usize::from(count.is_some());
        }
        if written >= letters as u64 && pending.count() == 0 && handled == event_ids.len() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_over_the_limit_are_dead_lettered_with_their_size_and_memory_stays_bounded() {
    init_tracing();
    let server = RedisServer::start();
    let prefix = "bounds";
    let group = "bounds-group";
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix(prefix);
    let keys = config.keys();
    let stream = keys.stream("image");
    let dlq = keys.dlq("image", group);
    let emitter = Emitter::new("bounds-test", RedisTransport::new(config).unwrap());
    let mut conn = server.connection().await;
    // Redis may be busy for seconds sending big replies to the consumer.
    conn.set_response_timeout(Duration::from_secs(60));

    // Normal events before and after the big ones.
    let mut event_ids = emit_families(&emitter, "bounds", 0..3).await;
    let padding = "x".repeat(BIG_EVENT_BYTES - r#"{"padding":""}"#.len());
    let big_event = format!(r#"{{"padding":"{padding}"}}"#);
    drop(padding);
    assert_eq!(big_event.len(), BIG_EVENT_BYTES);
    // An entry's size: its field names and values.
    let big_size = "type".len() + EVENT_TYPE.len() + "event".len() + BIG_EVENT_BYTES;
    let mut big_ids = Vec::new();
    for _ in 0..BIG_ENTRIES {
        big_ids.push(append_big(&mut conn, &stream, &big_event).await);
    }
    event_ids.extend(emit_families(&emitter, "bounds", 3..6).await);

    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(group)
        .arg("0")
        .query_async(&mut conn)
        .await
        .expect("XGROUP CREATE");
    let started = Instant::now();
    let worker = Worker::spawn(&WorkerSettings {
        url: server.url(),
        prefix: prefix.into(),
        group: group.into(),
        consumer: "bounds-worker".into(),
        counters: "bounds-test".into(),
        concurrency: domain_events_redis::DEFAULT_CONCURRENCY,
        prefetch: domain_events_redis::DEFAULT_PREFETCH,
        delay: Duration::ZERO,
        claim_idle: Duration::from_secs(5),
    });
    // Everything settled: the big entries dead-lettered, the normal events handled, nothing
    // pending. Polled with a deadline; on a timeout the figures are still reported below.
    let keys = (stream.as_str(), dlq.as_str(), group);
    let mut settled = wait_settled(&mut conn, keys, BIG_ENTRIES, &event_ids).await;
    let elapsed = started.elapsed();
    if settled {
        // More while the consumer waits for new entries: a big one may arrive through the
        // blocking read (received once, then dead-lettered without being sent back).
        for _ in 0..2 {
            big_ids.push(append_big(&mut conn, &stream, &big_event).await);
        }
        event_ids.extend(emit_families(&emitter, "bounds", 6..7).await);
        settled = wait_settled(&mut conn, keys, big_ids.len(), &event_ids).await;
    }
    drop(big_event);
    let log = worker.log();
    let peak_kb = worker.stop();
    eprintln!(
        "big entries: {BIG_ENTRIES} of {big_size} bytes; settled: {settled}, the first {BIG_ENTRIES} after {elapsed:?}; \
         consumer peak memory: {} MB",
        peak_kb / 1024
    );

    assert!(
        settled,
        "not everything was settled within {WAIT:?} (peak memory {} MB)",
        peak_kb / 1024
    );
    assert!(
        peak_kb < PEAK_LIMIT_KB,
        "the consumer's peak memory was {} MB, more than {} MB",
        peak_kb / 1024,
        PEAK_LIMIT_KB / 1024
    );
    let letters = dead_letters(&mut conn, &dlq).await;
    assert_eq!(
        letters.len(),
        big_ids.len(),
        "one dead letter per big entry"
    );
    let reason =
        format!("entry of {big_size} bytes is larger than the limit of {ENTRY_LIMIT} bytes");
    for (entry_id, letter_reason, event_len) in &letters {
        assert!(big_ids.contains(entry_id), "dead letter of {entry_id}");
        assert!(
            letter_reason.contains(&reason),
            "reason of {entry_id}: {letter_reason}"
        );
        assert_eq!(
            *event_len, BIG_EVENT_BYTES as u64,
            "the dead letter of {entry_id} keeps the raw event"
        );
    }
    for event_id in &event_ids {
        let count: Option<u64> = conn
            .get(counter_key("bounds-test", event_id))
            .await
            .expect("GET");
        assert_eq!(count, Some(1), "event {event_id} handled once");
    }
    let unavailable: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("Redis unavailable"))
        .collect();
    assert!(
        unavailable.is_empty(),
        "the consumer logged Redis as unavailable: {unavailable:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_byte_budgets_deliver_everything_once_and_claims_dead_letter_entries_over_the_limit()
{
    init_tracing();
    let server = RedisServer::start();
    let group = "small-group";
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("small");
    let keys = config.keys();
    let stream = keys.stream("image");
    let dlq = keys.dlq("image", group);
    let mut conn = server.connection().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .expect("XGROUP CREATE");
    // An entry over the limit already pending for the consumer (a restart under the same name)
    // goes through the claim script; one appended later through the read script.
    let over = format!(r#"{{"padding":"{}"}}"#, "y".repeat(3000));
    let over_size = "type".len() + EVENT_TYPE.len() + "event".len() + over.len();
    let pending_id = append_big(&mut conn, &stream, &over).await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg("small-consumer")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .expect("XREADGROUP");
    let emitter = Emitter::new("small-test", RedisTransport::new(config.clone()).unwrap());
    let mut event_ids = Vec::new();
    for start in [0, 20] {
        event_ids.extend(emit_families(&emitter, "small", start..start + 20).await);
        if start == 0 {
            append_big(&mut conn, &stream, &over).await;
        }
    }
    let counter = redis::Client::open(server.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    let handlers = counting_handlers(counter, "bounds-test".into(), Duration::ZERO);
    // Room for a few events (of about 650 bytes) per read or claim.
    let consumer = RedisConsumer::builder(config, group, handlers)
        .consumer_name("small-consumer")
        .max_entry_bytes(2048)
        .max_batch_bytes(4096)
        .block(Duration::from_millis(50))
        .build()
        .unwrap();
    let handle = consumer.spawn();
    let keys = (stream.as_str(), dlq.as_str(), group);
    assert!(
        wait_settled(&mut conn, keys, 2, &event_ids).await,
        "everything settled"
    );
    let stats = handle.shutdown().await.unwrap();
    assert_eq!((stats.handled, stats.poison), (40, 2), "{stats:?}");
    for event_id in &event_ids {
        let count: Option<u64> = conn
            .get(counter_key("bounds-test", event_id))
            .await
            .expect("GET");
        assert_eq!(count, Some(1), "event {event_id} handled once");
    }
    let letters: redis::streams::StreamRangeReply = conn.xrange_all(&dlq).await.unwrap();
    assert_eq!(letters.ids.len(), 2);
    let reason = format!("entry of {over_size} bytes is larger than the limit of 2048 bytes");
    for letter in &letters.ids {
        let field = |name: &str| -> String {
            letter
                .get::<String>(name)
                .unwrap_or_else(|| panic!("dead letter field {name}"))
        };
        assert_eq!(field("reason"), reason);
        assert_eq!(field("event"), over, "the raw event is kept");
        assert_eq!(field("group"), group);
        assert_eq!(field("stream"), stream);
        // The pending one was delivered once before, and once more by the claim.
        let deliveries = if field("entryId") == pending_id {
            "2"
        } else {
            "1"
        };
        assert_eq!(field("deliveries"), deliveries, "{}", field("entryId"));
    }
}
