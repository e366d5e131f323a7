//! BullMQ interop (docs/contract.md section 5) against a real `redis-server` and stock BullMQ code on
//! Node.js: the npm packages `bullmq5` (latest BullMQ 5) and `bullmq6` (latest BullMQ 6), `ajv` and
//! `ajv-formats`, pinned in `tests/node/package-lock.json` and installed with
//! `npm ci --prefix tests/node`. The Node.js scripts are in `tests/node/bullmq/`.
//!
//! - Rust emits the image pipeline through [`BullmqTransport`]; a stock Node.js `Worker` of each
//!   major version receives every event once, with the right job name, id, type, payload and
//!   idempotency key, and the payload passes the exported JSON Schema (ajv, draft 2020-12).
//! - Node.js `Queue.add(type, envelope)` enqueues envelopes; the Rust [`BullmqConsumer`] handles
//!   each once (also a duplicate under another job id) and fails poison jobs without retrying.
//! - Retries, duplicate detection, the BullMQ 5 pause guard, secrets.
//! - Traces: a stock Node.js worker (BullMQ 5 and 6) with BullMQ's own telemetry (`bullmq-otel`)
//!   continues a trace started by a Rust emit, and the Rust consumer continues one started by a
//!   Node.js `Queue.add` with that telemetry; both sides export their spans to in-memory
//!   exporters.
//! - On a Redis Cluster (`tests/redis_cluster.rs`) with the hash-tagged prefix `{bull}`: Rust
//!   emits, a stock BullMQ 5 worker (ioredis `Cluster`) and the Rust consumer receive each once.
//!
//! Nothing is skipped: without `node` or the npm packages the tests fail and say what to run.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use domain_events::trace::{EMIT_SPAN, HANDLE_SPAN};
use domain_events::{
    ConsumerStats, EmitBatch, EmitError, Emitter, HandlerError, Handlers, OutgoingEvent,
    PublishOutcome, Timestamp, TransportError, Url, Uuid,
};
use domain_events_bullmq::{
    Backoff, BullmqConfig, BullmqConsumer, BullmqConsumerHandle, BullmqTransport, Error, job_id,
};
use domain_events_catalog::{
    DomainEvent, ImageFamilyCompletedEvent, ImageFamilyCompletedPayload,
    ImageVariationCompletedPayload, ImageVariationQueuedPayload, ImageVariationStartedPayload,
};
use domain_events_tests::otel::{Traces, ids_of, traceparent_of};
use domain_events_tests::redis_cluster::RedisCluster;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use tracing::Instrument;

/// How long a Node.js script may take (a bound against hanging, not a performance assertion).
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

/// The events of the image generator, as typed methods.
#[derive(domain_events::Emitter)]
#[emitter(
    catalog = domain_events_catalog,
    events(
        "image:variation_queued",
        "image:variation_started",
        "image:family_completed",
        "image:variation_completed"
    )
)]
struct ImageGeneratorEvents {
    emitter: Emitter,
}

// ---------------------------------------------------------------------------------------------
// Node.js processes
// ---------------------------------------------------------------------------------------------

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Panics, saying what to run, unless `node` and the pinned npm packages are installed.
fn require_node() {
    let modules = node_dir().join("node_modules");
    for package in [
        "bullmq5",
        "bullmq6",
        "ajv",
        "ajv-formats",
        "bullmq-otel",
        "@opentelemetry/api",
        "@opentelemetry/core",
        "@opentelemetry/sdk-trace-base",
    ] {
        assert!(
            modules.join(package).join("package.json").is_file(),
            "{} is missing: the BullMQ interop tests run stock BullMQ on Node.js; \
             run `npm ci --prefix tests/node` first",
            modules.join(package).display()
        );
    }
    let version = Command::new("node").arg("--version").output();
    assert!(
        matches!(&version, Ok(output) if output.status.success()),
        "`node` is not on PATH ({version:?}); the BullMQ interop tests need Node.js 20 or later"
    );
}

/// A Node.js script of `tests/node/bullmq`, its stdout lines parsed as JSON as they come.
struct NodeScript {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl NodeScript {
    fn spawn(script: &str, args: &[&str]) -> Self {
        require_node();
        let path = node_dir().join("bullmq").join(script);
        let mut child = Command::new("node")
            .arg(&path)
            .args(args)
            .current_dir(node_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run `node {}`: {error}", path.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn({
            let stderr = stderr.clone();
            move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                stderr.lock().expect("stderr").push_str(&text);
            }
        });
        Self {
            what: format!("node {script} {}", args.join(" ")),
            child,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        // The reader thread fills it when the process ends.
        std::thread::sleep(Duration::from_millis(50));
        self.stderr.lock().expect("stderr").clone()
    }

    /// The next stdout line, as JSON.
    fn next(&mut self) -> Value {
        match self.lines.recv_timeout(NODE_TIMEOUT) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|error| {
                panic!("`{}` printed `{line}`, not JSON: {error}", self.what)
            }),
            Err(error) => panic!(
                "`{}` printed no line ({error}); its stderr:\n{}",
                self.what,
                self.stderr()
            ),
        }
    }

    /// Waits for the script to exit successfully; returns the lines it printed since the last
    /// [`next`](Self::next).
    fn finish(mut self) -> Vec<Value> {
        let deadline = std::time::Instant::now() + NODE_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "`{}` did not exit within {NODE_TIMEOUT:?}; stderr:\n{}",
                    self.what,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(serde_json::from_str(&line).unwrap_or_else(|error| {
                panic!("`{}` printed `{line}`, not JSON: {error}", self.what)
            }));
        }
        assert!(
            status.success(),
            "`{}` failed ({status}); stdout: {out:?}\nstderr:\n{}",
            self.what,
            self.stderr()
        );
        out
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a script to its end on a blocking thread; returns its lines.
async fn run_node(script: &'static str, args: Vec<String>) -> Vec<Value> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeScript::spawn(script, &args).finish()
    })
    .await
    .expect("node script thread")
}

/// `inspect.mjs`: what a stock Node.js `Queue` says about each job, by id.
async fn inspect(version: &str, url: &str, ids: &[String]) -> HashMap<String, Value> {
    let mut args = vec![version.to_owned(), url.to_owned()];
    args.extend(ids.iter().cloned());
    run_node("inspect.mjs", args)
        .await
        .into_iter()
        .map(|job| (job["id"].as_str().expect("id").to_owned(), job))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rust emits, Node.js consumes
// ---------------------------------------------------------------------------------------------

fn url(raw: &str) -> Url {
    Url::parse(raw).expect("a valid URL")
}

/// Emits the image pipeline of `variation` (queued, started, 9 families as one batch, completed:
/// 12 events) plus two duplicates (family 0 again inside the batch, completed again); returns
/// the payload JSON and eventId of each published event by idempotency key, with its type.
async fn emit_pipeline(
    emitter: &Emitter,
    variation: &str,
) -> BTreeMap<String, (&'static str, Uuid, Value)> {
    let events = ImageGeneratorEvents {
        emitter: emitter.clone(),
    };
    let mut sent = BTreeMap::new();
    let mut record = |emitted: &domain_events::Emitted, payload: Value| {
        assert!(emitted.published(), "{emitted:?}");
        sent.insert(
            emitted.idempotency_key.clone(),
            (emitted.event_type, emitted.event_id, payload),
        );
    };

    let queued = ImageVariationQueuedPayload {
        variation_id: variation.into(),
        variation_name: "Autumn".into(),
        family_count: 9,
        queued_at: Timestamp::now(),
        priority: Some(2),
    };
    let emitted = events
        .emit_image_variation_queued(queued.clone())
        .await
        .expect("queued emitted");
    record(&emitted, serde_json::to_value(&queued).expect("json"));

    let started = ImageVariationStartedPayload {
        variation_id: variation.into(),
        variation_name: "Autumn".into(),
        family_count: 9,
        started_at: Timestamp::now(),
    };
    let emitted = events
        .emit_image_variation_started(started.clone())
        .await
        .expect("started emitted");
    record(&emitted, serde_json::to_value(&started).expect("json"));

    let mut batch = EmitBatch::new();
    let mut payloads = Vec::new();
    for index in 0..9 {
        let payload = ImageFamilyCompletedPayload {
            variation_id: variation.into(),
            variation_name: "Autumn".into(),
            family_name: format!("family-{index}"),
            family_index: index,
            public_url: url(&format!("https://cdn.example/{variation}/{index}.png")),
            generation_time_ms: 8_000 + 500 * index,
        };
        payloads.push(serde_json::to_value(&payload).expect("json"));
        batch.push(payload).expect("valid");
    }
    batch
        .push(family_completed(variation, 0))
        .expect("valid duplicate of family 0");
    let outcomes = emitter.emit_batch(batch).await.expect("batch emitted");
    assert_eq!(outcomes.len(), 10);
    for (emitted, payload) in outcomes.iter().zip(payloads) {
        record(emitted, payload);
    }
    let in_batch = &outcomes[9];
    assert!(
        in_batch.duplicate,
        "family 0 twice in one batch: the second is a duplicate"
    );
    assert_eq!(in_batch.existing_event_id, Some(outcomes[0].event_id));

    let completed = ImageVariationCompletedPayload {
        variation_id: variation.into(),
        variation_name: "Autumn".into(),
        families_completed: 9,
        total_generation_time_ms: 81_234,
        public_urls: vec![url("https://cdn.example/a.png")],
    };
    let first = events
        .emit_image_variation_completed(completed.clone())
        .await
        .expect("completed emitted");
    record(&first, serde_json::to_value(&completed).expect("json"));
    let again = events
        .emit_image_variation_completed(completed)
        .await
        .expect("emitted again");
    assert!(
        again.duplicate,
        "the second `image:variation_completed` is a duplicate"
    );
    assert_eq!(again.existing_event_id, Some(first.event_id));
    assert_ne!(again.event_id, first.event_id);
    sent
}

/// Job hashes of the queue (`bull:DOMAIN_EVENTS:ik-*`, without lock or log keys).
async fn job_hashes(conn: &mut MultiplexedConnection, queue_key: &str) -> Vec<String> {
    let keys: Vec<String> = conn.keys(format!("{queue_key}:ik-*")).await.expect("KEYS");
    let mut jobs: Vec<String> = keys
        .into_iter()
        .filter(|key| !key[queue_key.len() + 1..].contains(':'))
        .collect();
    jobs.sort();
    jobs
}

async fn rust_emits_and_a_stock_worker_receives(version: &'static str) {
    init_tracing();
    require_node();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");

    // The Node.js worker is up (blocked on the queue's marker) before anything is emitted, so the
    // Rust side's wake-up marker is exercised too.
    let mut worker = {
        let url = server.url();
        tokio::task::spawn_blocking(move || {
            let mut worker = NodeScript::spawn(
                "worker.mjs",
                &[version, &url, "12", "--timeout-ms", "45000"],
            );
            let ready = worker.next();
            assert_eq!(ready["ready"], true, "{ready}");
            worker
        })
        .await
        .expect("worker started")
    };

    let transport = BullmqTransport::new(config.clone()).expect("transport");
    transport.connect().await.expect("Redis answers");
    let emitter = Emitter::builder("image-generator", transport)
        .timeout(Duration::from_secs(10))
        .build();
    let sent = emit_pipeline(&emitter, "var-123").await;
    assert_eq!(sent.len(), 12);
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.duplicates), (12, 2));

    let mut jobs = tokio::task::spawn_blocking(move || {
        let mut jobs = Vec::new();
        for _ in 0..12 {
            jobs.push(worker.next());
        }
        jobs.extend(worker.finish());
        jobs
    })
    .await
    .expect("worker finished");
    assert_eq!(
        jobs.len(),
        12,
        "one job per event, none for the duplicates: {jobs:#?}"
    );
    jobs.sort_by(|a, b| {
        a["idempotencyKey"]
            .as_str()
            .cmp(&b["idempotencyKey"].as_str())
    });

    for (job, (key, (event_type, event_id, payload))) in jobs.iter().zip(&sent) {
        assert_eq!(job["idempotencyKey"], key.as_str(), "{job:#}");
        assert_eq!(job["name"], *event_type, "job name = type string: {job:#}");
        assert_eq!(job["type"], *event_type, "{job:#}");
        assert_eq!(job["version"], 1);
        assert_eq!(
            job["id"],
            job_id(key).as_str(),
            "job id from the key: {job:#}"
        );
        assert_eq!(job["eventId"], event_id.to_string(), "{job:#}");
        assert_eq!(&job["payload"], payload, "payload as emitted: {job:#}");
        assert_eq!(job["payloadValid"], true, "payload schema: {job:#}");
        assert_eq!(job["envelopeValid"], true, "event schema: {job:#}");
        assert_eq!(job["attemptsMade"], 0);
        assert_eq!(job["opts"]["attempts"], 5, "{job:#}");
        assert_eq!(
            job["opts"]["backoff"],
            json!({"type": "exponential", "delay": 1000})
        );
        assert_eq!(job["opts"]["removeOnComplete"], json!({"age": 86_400}));
        assert_eq!(job["opts"]["removeOnFail"], json!({"age": 86_400}));
        assert_eq!(job["opts"]["jobId"], job_id(key).as_str());
    }
    let keys: Vec<&str> = sent.keys().map(String::as_str).collect();
    assert!(keys.contains(&"image_complete:var-123"));
    assert!(keys.contains(&"image_family:var-123:8"));

    // Redis agrees: 12 jobs, all completed and kept (the dedup window), nothing waiting.
    let mut conn = server.connection().await;
    let queue_key = config.queue_key();
    assert_eq!(job_hashes(&mut conn, &queue_key).await.len(), 12);
    let completed: u64 = conn
        .zcard(format!("{queue_key}:completed"))
        .await
        .expect("ZCARD");
    assert_eq!(completed, 12);
    let waiting: u64 = conn.llen(format!("{queue_key}:wait")).await.expect("LLEN");
    assert_eq!(waiting, 0);

    // Still inside the window: emitting the pipeline again adds nothing.
    let again = ImageGeneratorEvents {
        emitter: emitter.clone(),
    }
    .emit_image_variation_queued(ImageVariationQueuedPayload {
        variation_id: "var-123".into(),
        variation_name: "Autumn".into(),
        family_count: 9,
        queued_at: Timestamp::now(),
        priority: None,
    })
    .await
    .expect("emitted");
    assert!(again.duplicate, "a completed job still blocks its key");
    assert_eq!(job_hashes(&mut conn, &queue_key).await.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_emits_and_a_stock_bullmq5_worker_receives_every_event_once() {
    rust_emits_and_a_stock_worker_receives("5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_emits_and_a_stock_bullmq6_worker_receives_every_event_once() {
    rust_emits_and_a_stock_worker_receives("6").await;
}

/// Jobs emitted onto a Redis Cluster, one per idempotency key of `family_completed(variation, n)`
/// for n in `range`: the event ids by key.
async fn emit_families(
    emitter: &Emitter,
    variation: &str,
    range: std::ops::Range<u64>,
) -> BTreeMap<String, Uuid> {
    let mut sent = BTreeMap::new();
    for n in range {
        let emitted = emitter
            .emit(family_completed(variation, n))
            .await
            .expect("emitted");
        assert!(emitted.published(), "{emitted:?}");
        sent.insert(emitted.idempotency_key.clone(), emitted.event_id);
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_rust_emits_with_a_hash_tagged_prefix_and_a_stock_worker_receives_each_once()
 {
    init_tracing();
    require_node();
    let cluster = RedisCluster::start();
    let url = cluster.url();

    // Without a hash tag the keys of the queue would spread over the masters: refused.
    let untagged = BullmqConfig::new(&url).expect("valid URL");
    let refused = BullmqTransport::new(untagged).expect_err("no hash tag");
    assert!(
        matches!(&refused, Error::Config(message) if message.contains("hash tag")),
        "{refused}"
    );

    let config = BullmqConfig::new(&url)
        .expect("valid URL")
        .bullmq_prefix("{bull}");
    const JOBS: u64 = 20;
    let mut worker = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut worker = NodeScript::spawn(
                "worker.mjs",
                &[
                    "5",
                    &url,
                    &JOBS.to_string(),
                    "--prefix",
                    "{bull}",
                    "--timeout-ms",
                    "45000",
                ],
            );
            let ready = worker.next();
            assert_eq!(ready["ready"], true, "{ready}");
            worker
        })
        .await
        .expect("worker started")
    };
    let transport = BullmqTransport::new(config.clone()).expect("transport");
    transport.connect().await.expect("the cluster answers");
    let emitter = Emitter::builder("image-generator", transport)
        .timeout(Duration::from_secs(10))
        .build();
    let sent = emit_families(&emitter, "cluster", 0..JOBS).await;
    let jobs = tokio::task::spawn_blocking(move || {
        let mut jobs = Vec::new();
        for _ in 0..JOBS {
            jobs.push(worker.next());
        }
        jobs.extend(worker.finish());
        jobs
    })
    .await
    .expect("worker finished");
    let received: BTreeMap<String, Uuid> = jobs
        .iter()
        .map(|job| {
            (
                job["idempotencyKey"].as_str().expect("a key").to_owned(),
                job["eventId"]
                    .as_str()
                    .expect("an id")
                    .parse()
                    .expect("a UUID"),
            )
        })
        .collect();
    assert_eq!(jobs.len(), sent.len(), "one job per event: {jobs:#?}");
    assert_eq!(received, sent, "each event received once, as emitted");

    // Our own consumer on the cluster: each further event handled once.
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let handle = consumer(config, "crm", counting(runs.clone()));
    let more = emit_families(&emitter, "cluster", JOBS..2 * JOBS).await;
    wait_stats(&handle, "the consumer handled every job", |stats| {
        stats.handled == JOBS
    })
    .await;
    handle.shutdown().await.expect("clean shutdown");
    let runs = runs.lock().expect("runs");
    let handled: std::collections::BTreeSet<&String> = runs.keys().collect();
    assert_eq!(handled, more.keys().collect());
    assert!(
        runs.values().all(|count| *count == 1),
        "each once: {runs:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Node.js enqueues, Rust consumes
// ---------------------------------------------------------------------------------------------

/// Handlers of `image:family_completed` that count their runs per idempotency key and know the
/// whole catalog (unknown types are poison).
fn counting(runs: Arc<Mutex<HashMap<String, u32>>>) -> Handlers {
    Handlers::new()
        .on(move |event: ImageFamilyCompletedEvent| {
            let runs = runs.clone();
            async move {
                *runs
                    .lock()
                    .map_err(|_| HandlerError::msg("poisoned"))?
                    .entry(event.idempotency_key.clone())
                    .or_default() += 1;
                Ok(())
            }
        })
        .knowing::<DomainEvent>()
}

fn consumer(config: BullmqConfig, group: &str, handlers: Handlers) -> BullmqConsumerHandle {
    BullmqConsumer::builder(config, group, handlers)
        .concurrency(4)
        .drain_delay(Duration::from_secs(1))
        .close_timeout(Duration::from_secs(10))
        .build()
        .expect("consumer")
        .spawn()
}

async fn wait_stats(
    handle: &BullmqConsumerHandle,
    what: &str,
    check: impl Fn(ConsumerStats) -> bool,
) {
    eventually(what, Duration::from_secs(30), || {
        let stats = handle.stats();
        let ok = check(stats);
        async move { ok }
    })
    .await;
}

async fn node_enqueues_and_the_rust_consumer_handles_each_once(version: &'static str) {
    init_tracing();
    require_node();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");
    let variation = format!("var-node{version}");

    let added = run_node(
        "enqueue.mjs",
        vec![version.into(), server.url(), variation.clone()],
    )
    .await;
    assert_eq!(added.len(), 7, "{added:#?}");
    let ids_of = |kind: &str| -> Vec<String> {
        added
            .iter()
            .filter(|job| job["kind"] == kind)
            .map(|job| job["id"].as_str().expect("id").to_owned())
            .collect()
    };

    let runs = Arc::new(Mutex::new(HashMap::new()));
    let handle = consumer(config.clone(), "admin-panel", counting(runs.clone()));
    wait_stats(&handle, "7 jobs were settled", |s| {
        s.handled + s.duplicates + s.poison >= 7
    })
    .await;
    let stats = handle.shutdown().await.expect("clean shutdown");
    assert_eq!(
        (
            stats.received,
            stats.handled,
            stats.duplicates,
            stats.poison,
            stats.retries,
            stats.failed,
            stats.unhandled
        ),
        (7, 3, 1, 3, 0, 0, 0),
        "poison jobs are not retried"
    );
    let runs = runs.lock().expect("runs").clone();
    let expected: HashMap<String, u32> = (0..3)
        .map(|index| (format!("image_family:{variation}:{index}"), 1))
        .collect();
    assert_eq!(runs, expected, "each envelope handled exactly once");

    // The done record of the duplicated key names the first envelope's eventId.
    let mut conn = server.connection().await;
    let done_key = config.done_key(
        "image",
        "admin-panel",
        &format!("image_family:{variation}:0"),
    );
    let done: Option<String> = conn.get(&done_key).await.expect("GET");
    let done = done.expect("done record written");
    assert!(Uuid::parse_str(&done).is_ok(), "{done}");
    let ttl: i64 = conn.pttl(&done_key).await.expect("PTTL");
    assert!(
        ttl > 6 * 24 * 3600 * 1000,
        "done records live 7 days: {ttl}"
    );

    // What a stock Node.js Queue reads back.
    let all: Vec<String> = added
        .iter()
        .map(|job| job["id"].as_str().expect("id").to_owned())
        .collect();
    let jobs = inspect(version, &server.url(), &all).await;
    for id in ids_of("valid").iter().chain(&ids_of("duplicate")) {
        let job = &jobs[id];
        assert_eq!(job["state"], "completed", "{job:#}");
        assert_eq!(job["attemptsMade"], 1, "{job:#}");
    }
    let reasons = [
        ("poison-not-envelope", "poison event: not an event envelope"),
        (
            "poison-unknown-type",
            "poison event: unknown event type `image:from_the_future`",
        ),
        (
            "poison-bad-payload",
            "poison event: payload of `image:family_completed` v1 does not match its schema",
        ),
    ];
    for (kind, reason) in reasons {
        let id = &ids_of(kind)[0];
        let job = &jobs[id];
        assert_eq!(job["state"], "failed", "{kind}: {job:#}");
        assert_eq!(
            job["attemptsMade"], 1,
            "{kind}: failed at once although it had 3 attempts: {job:#}"
        );
        let failed_reason = job["failedReason"].as_str().expect("a failedReason");
        assert!(
            failed_reason.starts_with(reason),
            "{kind}: `{failed_reason}` should start with `{reason}`"
        );
    }
    let failed: u64 = conn
        .zcard(format!("{}:failed", config.queue_key()))
        .await
        .expect("ZCARD");
    assert_eq!(failed, 3);
    let delayed: u64 = conn
        .zcard(format!("{}:delayed", config.queue_key()))
        .await
        .expect("ZCARD");
    assert_eq!(delayed, 0, "no retry is scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bullmq5_queue_add_envelopes_are_handled_once_by_the_rust_consumer_and_poison_fails_at_once()
 {
    node_enqueues_and_the_rust_consumer_handles_each_once("5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bullmq6_queue_add_envelopes_are_handled_once_by_the_rust_consumer_and_poison_fails_at_once()
 {
    node_enqueues_and_the_rust_consumer_handles_each_once("6").await;
}

// ---------------------------------------------------------------------------------------------
// Retries, duplicates, pause, secrets
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_by_bullmq_per_the_jobs_attempts_and_backoff() {
    init_tracing();
    require_node();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url())
        .expect("valid URL")
        .attempts(3)
        .backoff(Backoff::Fixed(Duration::from_millis(50)));
    let emitter = Emitter::new(
        "image-generator",
        BullmqTransport::new(config.clone()).expect("transport"),
    );
    let flaky = emitter
        .emit(family_completed("var-flaky", 0))
        .await
        .expect("emitted");
    let hopeless = emitter
        .emit(family_completed("var-hopeless", 0))
        .await
        .expect("emitted");

    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let handlers = Handlers::new()
        .on({
            let attempts = attempts.clone();
            move |event: ImageFamilyCompletedEvent| {
                let n = {
                    let mut attempts = attempts.lock().expect("attempts");
                    let n = attempts
                        .entry(event.payload.variation_id.clone())
                        .or_default();
                    *n += 1;
                    *n
                };
                async move {
                    match event.payload.variation_id.as_str() {
                        "var-flaky" if n < 3 => Err(HandlerError::msg(format!("try {n} failed"))),
                        "var-flaky" => Ok(()),
                        _ => Err(HandlerError::msg("always down")),
                    }
                }
            }
        })
        .knowing::<DomainEvent>();
    let handle = consumer(config.clone(), "analytics", handlers);
    wait_stats(&handle, "both jobs settled", |s| s.handled + s.failed >= 2).await;
    let stats = handle.shutdown().await.expect("clean shutdown");
    assert_eq!(
        (stats.handled, stats.failed, stats.retries),
        (1, 1, 4),
        "{stats:?}"
    );
    let attempts = attempts.lock().expect("attempts").clone();
    assert_eq!(attempts["var-flaky"], 3);
    assert_eq!(
        attempts["var-hopeless"], 3,
        "3 attempts, then failed for good"
    );

    let flaky_id = job_id(&flaky.idempotency_key);
    let hopeless_id = job_id(&hopeless.idempotency_key);
    let jobs = inspect("6", &server.url(), &[flaky_id.clone(), hopeless_id.clone()]).await;
    assert_eq!(
        jobs[&flaky_id]["state"], "completed",
        "{:#}",
        jobs[&flaky_id]
    );
    assert_eq!(jobs[&flaky_id]["attemptsMade"], 3);
    assert_eq!(jobs[&hopeless_id]["state"], "failed");
    assert_eq!(jobs[&hopeless_id]["attemptsMade"], 3);
    assert_eq!(
        jobs[&hopeless_id]["failedReason"],
        "handler failed: always down"
    );
}

fn outgoing(key: &str, event_id: Uuid) -> OutgoingEvent {
    let json = json!({
        "eventId": event_id, "type": "image:variation_completed", "version": 1,
        "occurredAt": "2026-11-26T17:04:05.123Z", "source": "tests", "correlationId": "var-1",
        "causationId": null, "idempotencyKey": key,
        "payload": {"variationId": "var-1", "variationName": "A", "familiesCompleted": 1,
                    "totalGenerationTimeMs": 1, "publicUrls": []}
    });
    OutgoingEvent {
        event_type: "image:variation_completed",
        category: "image",
        event_id,
        idempotency_key: key.to_owned(),
        correlation_id: "var-1".to_owned(),
        json: json.to_string().into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_detection_names_the_event_that_holds_the_job() {
    init_tracing();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url())
        .expect("valid URL")
        .queue("dedup")
        .bullmq_prefix("{bull}");
    let transport = BullmqTransport::new(config.clone()).expect("transport");
    let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());

    let outcomes = transport
        .publish_events(&[outgoing("k:1", first)])
        .await
        .expect("published");
    assert_eq!(outcomes, vec![PublishOutcome::Published]);
    // The same emission again (an emitter retrying after a timeout): still ours.
    let outcomes = transport
        .publish_events(&[outgoing("k:1", first)])
        .await
        .expect("published");
    assert_eq!(outcomes, vec![PublishOutcome::Published]);
    // Another emission of the key, and two of a new key in one batch.
    let outcomes = transport
        .publish_events(&[
            outgoing("k:1", second),
            outgoing("k:2", second),
            outgoing("k:2", third),
        ])
        .await
        .expect("published");
    assert_eq!(
        outcomes,
        vec![
            PublishOutcome::Duplicate {
                existing_event_id: Some(first)
            },
            PublishOutcome::Published,
            PublishOutcome::Duplicate {
                existing_event_id: Some(second)
            },
        ]
    );
    let mut conn = server.connection().await;
    let jobs = job_hashes(&mut conn, &config.queue_key()).await;
    assert_eq!(jobs, vec!["{bull}:dedup:ik-k%3A1", "{bull}:dedup:ik-k%3A2"]);
    let name: String = conn.hget(&jobs[0], "name").await.expect("HGET");
    assert_eq!(name, "image:variation_completed");

    // Once the job is gone (its retention ended), the key can be emitted again.
    let removed: u64 = conn.del(&jobs[0]).await.expect("DEL");
    assert_eq!(removed, 1);
    let _: u64 = conn
        .lrem(format!("{}:wait", config.queue_key()), 0, "ik-k%3A1")
        .await
        .expect("LREM");
    let outcomes = transport
        .publish_events(&[outgoing("k:1", third)])
        .await
        .expect("published");
    assert_eq!(outcomes, vec![PublishOutcome::Published]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_emissions_of_one_key_add_one_job_and_name_its_event() {
    // The read-back travels with the add on the same connection; racing emissions (over one
    // shared connection and over connections of their own) must still agree on one holder. The
    // first round runs with Redis's script cache flushed, so that every add goes through BullMQ's
    // NOSCRIPT fallback (EVAL re-sent after the read-back).
    init_tracing();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url())
        .expect("valid URL")
        .queue("race");
    let shared = BullmqTransport::new(config.clone()).expect("transport");
    shared.connect().await.expect("connected");
    let mut conn = server.connection().await;
    const TASKS: usize = 8;
    for (round, flush_scripts) in [(0, true), (1, false)] {
        if flush_scripts {
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut conn)
                .await
                .expect("SCRIPT FLUSH");
        }
        let key = format!("race:{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let transport = if task % 2 == 0 {
                shared.clone()
            } else {
                let own = BullmqTransport::new(config.clone()).expect("transport");
                own.connect().await.expect("connected");
                own
            };
            let barrier = barrier.clone();
            let event = outgoing(&key, Uuid::now_v7());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcomes = transport
                    .publish_events(std::slice::from_ref(&event))
                    .await
                    .expect("published");
                (event.event_id, outcomes)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        let winners: Vec<Uuid> = results
            .iter()
            .filter(|(_, outcomes)| outcomes == &[PublishOutcome::Published])
            .map(|(event_id, _)| *event_id)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0];
        for (event_id, outcomes) in &results {
            if *event_id != winner {
                assert_eq!(
                    outcomes,
                    &[PublishOutcome::Duplicate {
                        existing_event_id: Some(winner)
                    }],
                    "round {round}: {results:?}"
                );
            }
        }
        let data: String = conn
            .hget(config.job_key(&job_id(&key)), "data")
            .await
            .expect("HGET");
        let data: Value = serde_json::from_str(&data).expect("JSON");
        assert_eq!(data["eventId"], winner.to_string(), "round {round}");
        let waiting: Vec<String> = conn
            .lrange(format!("{}:wait", config.queue_key()), 0, -1)
            .await
            .expect("LRANGE");
        assert_eq!(
            waiting.iter().filter(|id| **id == job_id(&key)).count(),
            1,
            "round {round}: {waiting:?}"
        );
    }
    let jobs = job_hashes(&mut conn, &config.queue_key()).await;
    assert_eq!(jobs, vec!["bull:race:ik-race%3A0", "bull:race:ik-race%3A1"]);
}

/// Adds one job of `variation` with the guard as configured; the emission's result.
async fn emit_one(
    config: &BullmqConfig,
    variation: &str,
) -> Result<domain_events::Emitted, EmitError> {
    let emitter = Emitter::new(
        "image-generator",
        BullmqTransport::new(config.clone()).expect("transport"),
    );
    emitter.emit(family_completed(variation, 0)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_paused_by_bullmq5_with_waiting_jobs_refuses_new_jobs_until_resumed() {
    init_tracing();
    require_node();
    let server = RedisServer::start();
    let url = server.url();
    let config = BullmqConfig::new(&url).expect("valid URL");
    let before = emit_one(&config, "before")
        .await
        .expect("added while running");
    let mut conn = server.connection().await;
    let before_key = config.job_key(&job_id(&before.idempotency_key));
    let before_data: String = conn.hget(&before_key, "data").await.expect("HGET");

    run_node("pause.mjs", vec!["5".into(), url.clone(), "pause".into()]).await;
    let refused = emit_one(&config, "during")
        .await
        .expect_err("refused while v5-paused");
    let EmitError::Transport(error) = &refused else {
        panic!("a transport error, got {refused:?}")
    };
    assert!(error.is_transient(), "retry later: {error}");
    assert!(
        matches!(error, TransportError::Unavailable(_)) && error.to_string().contains("BullMQ 5"),
        "{error}"
    );
    // The guard travels with the add: the job the refused emission stored was removed again.
    let during_key = config.job_key(&job_id("image_family:during:0"));
    let left: bool = conn.exists(&during_key).await.expect("EXISTS");
    assert!(!left, "the refused event's job {during_key} is gone");
    let waiting: Vec<String> = conn
        .lrange(format!("{}:wait", config.queue_key()), 0, -1)
        .await
        .expect("LRANGE");
    assert!(waiting.is_empty(), "nothing left in `wait`: {waiting:?}");

    // Refusing never removes a job this emission did not store: neither the job of another
    // emission of the key, nor the one an earlier try of the same emission stored.
    let another = emit_one(&config, "before")
        .await
        .expect_err("refused while v5-paused");
    assert!(
        matches!(
            another,
            EmitError::Transport(TransportError::Unavailable(_))
        ),
        "{another:?}"
    );
    let retry = OutgoingEvent {
        event_type: before.event_type,
        category: "image",
        event_id: before.event_id,
        idempotency_key: before.idempotency_key.clone(),
        correlation_id: "before".to_owned(),
        json: before_data.as_str().into(),
    };
    let transport = BullmqTransport::new(config.clone()).expect("transport");
    let error = transport
        .publish_events(&[retry])
        .await
        .expect_err("refused while v5-paused");
    assert!(matches!(error, Error::NotReady { .. }), "{error}");
    let kept: String = conn.hget(&before_key, "data").await.expect("HGET");
    assert_eq!(kept, before_data, "the earlier job is untouched");
    let paused: Vec<String> = conn
        .lrange(format!("{}:paused", config.queue_key()), 0, -1)
        .await
        .expect("LRANGE");
    assert_eq!(paused, vec![job_id(&before.idempotency_key)]);

    run_node("pause.mjs", vec!["5".into(), url.clone(), "resume".into()]).await;
    emit_one(&config, "after")
        .await
        .expect("added after the resume");
    // A BullMQ 6 pause keeps no `paused` list: adds go on, and are delivered after the resume.
    run_node("pause.mjs", vec!["6".into(), url.clone(), "pause".into()]).await;
    emit_one(&config, "during-v6-pause")
        .await
        .expect("added while v6-paused");
    run_node("pause.mjs", vec!["6".into(), url.clone(), "resume".into()]).await;

    let mut worker = NodeScript::spawn("worker.mjs", &["5", &url, "3", "--timeout-ms", "30000"]);
    let jobs = tokio::task::spawn_blocking(move || {
        assert_eq!(worker.next()["ready"], true);
        let mut jobs: Vec<String> = (0..3)
            .map(|_| {
                worker.next()["payload"]["variationId"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect();
        worker.finish();
        jobs.sort();
        jobs
    })
    .await
    .expect("worker");
    assert_eq!(jobs, vec!["after", "before", "during-v6-pause"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_guard_a_bullmq5_resume_drops_a_job_added_while_paused() {
    // Documents why the guard exists (WIRE-REFERENCE.md 1.8): the port's BullMQ 6 add script
    // pushes to `wait` while BullMQ 5 keeps a paused queue's jobs in `paused`; BullMQ 5's resume
    // renames `paused` over `wait`.
    init_tracing();
    require_node();
    let server = RedisServer::start();
    let url = server.url();
    let config = BullmqConfig::new(&url)
        .expect("valid URL")
        .v5_pause_guard(false);
    emit_one(&config, "before").await.expect("added");
    run_node("pause.mjs", vec!["5".into(), url.clone(), "pause".into()]).await;
    let during = emit_one(&config, "during")
        .await
        .expect("added without the guard");
    run_node("pause.mjs", vec!["5".into(), url.clone(), "resume".into()]).await;

    let mut conn = server.connection().await;
    let waiting: Vec<String> = conn
        .lrange(format!("{}:wait", config.queue_key()), 0, -1)
        .await
        .expect("LRANGE");
    assert_eq!(
        waiting,
        vec![job_id("image_family:before:0")],
        "the job added while paused is gone"
    );
    let orphan: bool = conn
        .exists(config.job_key(&job_id(&during.idempotency_key)))
        .await
        .expect("EXISTS");
    assert!(orphan, "its hash stays, blocking its id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_shows_in_errors() {
    init_tracing();
    let server = RedisServer::start_with_args(false, &["--requirepass", "right-one"]);
    let url = format!("redis://:wr0ngpass@127.0.0.1:{}", server.port());
    let config = BullmqConfig::new(&url).expect("valid URL");
    let transport = BullmqTransport::new(config.clone()).expect("transport");
    let error = transport.connect().await.expect_err("wrong password");
    let shown = format!("{error} {error:?} {transport:?} {config:?}");
    assert!(!shown.contains("wr0ngpass"), "{shown}");
    assert!(
        matches!(
            error,
            Error::Redis(domain_events_redis::Error::Unavailable { .. })
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("authentication failed"),
        "Redis's reason: {error}"
    );

    let emitter = Emitter::new("tests", transport);
    let error = emitter
        .emit(family_completed("var-1", 0))
        .await
        .expect_err("wrong password");
    assert!(
        !format!("{error} {error:?}").contains("wr0ngpass"),
        "{error:?}"
    );

    // The consumer keeps trying (Redis may come back with the right password) and stops cleanly:
    // once Redis refused it twice, a consumer that gave up at the first refusal would be over.
    let admin = redis::Client::open(format!("redis://:right-one@127.0.0.1:{}", server.port()))
        .expect("a valid URL");
    let refusals = || async {
        let mut conn = admin
            .get_multiplexed_async_connection()
            .await
            .expect("the right password");
        let info: String = redis::cmd("INFO")
            .arg("errorstats")
            .query_async(&mut conn)
            .await
            .expect("INFO errorstats");
        info.lines()
            .find_map(|line| line.strip_prefix("errorstat_WRONGPASS:count="))
            .map_or(0, |count| count.trim().parse::<u64>().expect("a count"))
    };
    let before = refusals().await;
    let handle = consumer(config, "crm", counting(Arc::default()));
    eventually(
        "Redis refused the consumer twice",
        Duration::from_secs(30),
        || async { refusals().await >= before + 2 },
    )
    .await;
    assert!(!handle.is_finished(), "waits for Redis");
    let stats = handle.shutdown().await.expect("stops cleanly");
    assert_eq!(stats.received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_job_in_flight() {
    init_tracing();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");
    let emitter = Emitter::new(
        "image-generator",
        BullmqTransport::new(config.clone()).expect("transport"),
    );
    emitter
        .emit(family_completed("var-slow", 0))
        .await
        .expect("emitted");
    let started = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let handlers = Handlers::new()
        .on({
            let (started, finished) = (started.clone(), finished.clone());
            move |_: ImageFamilyCompletedEvent| {
                let (started, finished) = (started.clone(), finished.clone());
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }
        })
        .knowing::<DomainEvent>();
    let handle = consumer(config.clone(), "crm", handlers);
    eventually("the handler started", Duration::from_secs(20), || {
        let n = started.load(Ordering::SeqCst);
        async move { n == 1 }
    })
    .await;
    let stats = handle.shutdown().await.expect("clean shutdown");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the handler ran to its end"
    );
    assert_eq!(stats.handled, 1);
    let mut conn = server.connection().await;
    let completed: u64 = conn
        .zcard(format!("{}:completed", config.queue_key()))
        .await
        .expect("ZCARD");
    assert_eq!(completed, 1, "and its job completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_taken_while_stopping_go_back_to_the_queue_unstarted() {
    init_tracing();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");
    let emitter = Emitter::new(
        "image-generator",
        BullmqTransport::new(config.clone()).expect("transport"),
    );
    for index in 0..3 {
        emitter
            .emit(family_completed("var-stop", index))
            .await
            .expect("emitted");
    }
    // The first handler asks the consumer to stop; BullMQ may already fetch the next job as the
    // first completes.
    let stop: Arc<std::sync::OnceLock<domain_events::Shutdown>> = Arc::default();
    let handled = Arc::new(AtomicU32::new(0));
    let handlers = Handlers::new()
        .on({
            let (stop, handled) = (stop.clone(), handled.clone());
            move |_: ImageFamilyCompletedEvent| {
                handled.fetch_add(1, Ordering::SeqCst);
                if let Some(stop) = stop.get() {
                    stop.trigger();
                }
                async { Ok(()) }
            }
        })
        .knowing::<DomainEvent>();
    let consumer = BullmqConsumer::builder(config.clone(), "crm", handlers)
        .concurrency(1)
        .drain_delay(Duration::from_secs(1))
        .build()
        .expect("consumer");
    stop.set(consumer.shutdown_handle()).expect("set once");
    let stats = tokio::time::timeout(Duration::from_secs(30), consumer.run())
        .await
        .expect("stopped in time")
        .expect("clean shutdown");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "no job started after the stop"
    );
    assert_eq!(
        (stats.received, stats.handled, stats.failed, stats.retries),
        (1, 1, 0, 0)
    );

    let mut conn = server.connection().await;
    let queue_key = config.queue_key();
    let waiting: u64 = conn.llen(format!("{queue_key}:wait")).await.expect("LLEN");
    let failed: u64 = conn
        .zcard(format!("{queue_key}:failed"))
        .await
        .expect("ZCARD");
    let active: u64 = conn
        .llen(format!("{queue_key}:active"))
        .await
        .expect("LLEN");
    assert_eq!(
        (waiting, active, failed),
        (2, 0, 0),
        "the other jobs wait, unharmed"
    );

    // The next consumer handles them.
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let handle = consumer_of(config, runs.clone());
    wait_stats(&handle, "the remaining jobs were handled", |s| {
        s.handled == 2
    })
    .await;
    handle.shutdown().await.expect("clean shutdown");
    assert_eq!(runs.lock().expect("runs").len(), 2);
}

fn consumer_of(
    config: BullmqConfig,
    runs: Arc<Mutex<HashMap<String, u32>>>,
) -> BullmqConsumerHandle {
    consumer(config, "crm", counting(runs))
}

// ---------------------------------------------------------------------------------------------
// Traces across Rust and Node.js (BullMQ's telemetry option `tm`)
// ---------------------------------------------------------------------------------------------

/// The `{"spans": [...]}` line a Node.js script printed last with `--telemetry on`.
fn node_spans(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .find_map(|line| line["spans"].as_array().cloned())
        .unwrap_or_else(|| panic!("no spans line in {lines:#?}"))
}

/// The one Node.js span named `name` whose BullMQ job id is `job_id`.
fn node_span<'a>(spans: &'a [Value], name: &str, job_id: &str) -> &'a Value {
    let found: Vec<&Value> = spans
        .iter()
        .filter(|span| span["name"] == name && span["attributes"]["bullmq.job.id"] == job_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{name}` span of job {job_id}: {spans:#?}"
    );
    found[0]
}

async fn a_stock_worker_with_bullmq_telemetry_continues_the_trace_of_a_rust_emit(
    version: &'static str,
) {
    require_node();
    let traces = Traces::install();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let emitter = Emitter::new(
        "image-generator",
        BullmqTransport::new(config).expect("transport"),
    );
    // Started in Rust: the caller's span, the emit span inside it.
    let traced = emitter
        .emit(family_completed("var-traced", 0))
        .instrument(tracing::info_span!("caller"))
        .await
        .expect("emitted");
    // A duplicate of the key with a traceparent of its own leaves the job's `tm` alone.
    let duplicate = emitter
        .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .emit(family_completed("var-traced", 0))
        .await
        .expect("emitted");
    assert!(duplicate.duplicate, "{duplicate:?}");
    // Started elsewhere: the traceparent given to the emitter.
    let given_id = emitter
        .with_traceparent(given)
        .emit(family_completed("var-traced", 1))
        .await
        .expect("emitted")
        .event_id;

    // The jobs wait in the queue, their `tm` written, when the worker starts: the port's add
    // cannot write `tm` itself, so a worker already waiting may take a job before it is written
    // (see `BullmqTransport`).
    let emit = traces
        .wait_for(
            EMIT_SPAN,
            "event_id",
            &traced.event_id.to_string(),
            NODE_TIMEOUT,
        )
        .await;
    let mut conn = redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    for (family, traceparent) in [(0, traceparent_of(&emit)), (1, given.to_owned())] {
        let key = format!(
            "bull:DOMAIN_EVENTS:{}",
            job_id(&format!("image_family:var-traced:{family}"))
        );
        let opts: String = conn.hget(&key, "opts").await.expect("job options");
        let opts: Value = serde_json::from_str(&opts).expect("JSON options");
        let tm = opts["tm"].as_str().expect("a `tm` option");
        let carrier: Value = serde_json::from_str(tm).expect("a JSON carrier");
        assert_eq!(carrier, json!({ "traceparent": traceparent }), "{opts}");
    }

    // The worker starts with both jobs waiting, so it may print them before `ready`.
    let url = server.url();
    let lines = tokio::task::spawn_blocking(move || {
        let mut worker = NodeScript::spawn(
            "worker.mjs",
            &[
                version,
                &url,
                "2",
                "--timeout-ms",
                "45000",
                "--telemetry",
                "on",
            ],
        );
        let mut lines = Vec::new();
        while lines
            .iter()
            .filter(|line: &&Value| line["eventId"].is_string())
            .count()
            < 2
        {
            lines.push(worker.next());
        }
        lines.extend(worker.finish());
        lines
    })
    .await
    .expect("worker finished");
    let spans = node_spans(&lines);
    let job = |event_id: Uuid| {
        lines
            .iter()
            .find(|line| line["eventId"] == event_id.to_string())
            .unwrap_or_else(|| panic!("no job of {event_id}: {lines:#?}"))
    };

    let job_traced = job(traced.event_id);
    assert_eq!(job_traced["traceparent"], traceparent_of(&emit));
    let process = node_span(
        &spans,
        "process DOMAIN_EVENTS",
        job_traced["id"].as_str().expect("id"),
    );
    assert_eq!(
        process["traceId"],
        format!("{:032x}", emit.span_context.trace_id())
    );
    assert_eq!(
        process["parentSpanId"],
        format!("{:016x}", emit.span_context.span_id())
    );

    let job_given = job(given_id);
    assert_eq!(job_given["traceparent"], given);
    let process = node_span(
        &spans,
        "process DOMAIN_EVENTS",
        job_given["id"].as_str().expect("id"),
    );
    let (trace_id, parent_id) = ids_of(given);
    assert_eq!(process["traceId"], format!("{trace_id:032x}"));
    assert_eq!(process["parentSpanId"], format!("{parent_id:016x}"));
}

async fn the_rust_consumer_continues_the_trace_of_a_node_queue_add_with_bullmq_telemetry(
    version: &'static str,
) {
    require_node();
    let traces = Traces::install();
    let server = RedisServer::start();
    let config = BullmqConfig::new(&server.url()).expect("valid URL");

    let lines = run_node(
        "enqueue.mjs",
        vec![
            version.into(),
            server.url(),
            "var-node-traced".into(),
            "--telemetry".into(),
            "on".into(),
        ],
    )
    .await;
    let spans = node_spans(&lines);
    let valid: Vec<&Value> = lines
        .iter()
        .filter(|line| line["kind"] == "valid" || line["kind"] == "duplicate")
        .collect();
    assert_eq!(valid.len(), 4, "{lines:#?}");

    let runs = Arc::new(Mutex::new(HashMap::new()));
    let handle = consumer(config, "traced-group", counting(runs));
    for job in valid {
        let id = job["id"].as_str().expect("id");
        let add = node_span(&spans, "add DOMAIN_EVENTS.image:family_completed", id);
        let event_id = job["eventId"].as_str().expect("eventId");
        let span = traces
            .wait_for(HANDLE_SPAN, "event_id", event_id, NODE_TIMEOUT)
            .await;
        assert_eq!(
            format!("{:032x}", span.span_context.trace_id()),
            add["traceId"].as_str().expect("traceId"),
            "job {id}: the handler joins the trace of the add"
        );
        assert_eq!(
            format!("{:016x}", span.parent_span_id),
            add["spanId"].as_str().expect("spanId"),
            "job {id}: the add span is the handler's parent"
        );
    }
    handle.shutdown().await.expect("clean shutdown");
}

// The trace tests run on a current-thread runtime: `Traces` records the spans of this thread.

#[tokio::test]
async fn a_stock_bullmq5_worker_with_bullmq_telemetry_continues_the_trace_of_a_rust_emit() {
    a_stock_worker_with_bullmq_telemetry_continues_the_trace_of_a_rust_emit("5").await;
}

#[tokio::test]
async fn a_stock_bullmq6_worker_with_bullmq_telemetry_continues_the_trace_of_a_rust_emit() {
    a_stock_worker_with_bullmq_telemetry_continues_the_trace_of_a_rust_emit("6").await;
}

#[tokio::test]
async fn the_rust_consumer_continues_the_trace_of_a_bullmq5_queue_add_with_bullmq_telemetry() {
    the_rust_consumer_continues_the_trace_of_a_node_queue_add_with_bullmq_telemetry("5").await;
}

#[tokio::test]
async fn the_rust_consumer_continues_the_trace_of_a_bullmq6_queue_add_with_bullmq_telemetry() {
    the_rust_consumer_continues_the_trace_of_a_node_queue_add_with_bullmq_telemetry("6").await;
}
