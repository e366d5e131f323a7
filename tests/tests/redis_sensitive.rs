//! Values of sensitive fields never reach a log line, an error or a dead letter's reason: a
//! malformed sensitive `recipient` (`email` schema) decoded directly, and consumed from a real
//! `redis-server` where the entry is dead-lettered.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain_events::{Handlers, RawEnvelope};
use domain_events_catalog::{DomainEvent, EmailQueuedEvent, EmailQueuedPayload};
use domain_events_redis::{DeadLetters, RedisConfig, RedisConsumer};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::eventually;
use redis::AsyncCommands;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "SECRET123";

/// Every log line of the process, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn envelope(key: &str, payload: &str) -> String {
    format!(
        r#"{{"eventId":"{}","type":"email:queued","version":1,"occurredAt":"2026-11-26T17:04:05.123Z","source":"test","correlationId":"log-1","causationId":null,"idempotencyKey":"{key}","payload":{payload}}}"#,
        domain_events::Uuid::now_v7()
    )
}

/// Payloads whose sensitive `recipient` is wrong in every way serde or a check can see.
fn bad_payloads() -> Vec<String> {
    let base = r#""emailLogId":"log-1","templateId":"t-1","queuedAt":"2026-11-26T17:04:05.123Z""#;
    [
        format!(r#""not-an-email-{SECRET}""#),
        format!(r#""{SECRET}@""#),
        "123456789123".to_owned(),
        "true".to_owned(),
        "98765.4321".to_owned(),
        format!(r#"["{SECRET}"]"#),
    ]
    .into_iter()
    .map(|recipient| format!(r#"{{{base},"recipient":{recipient}}}"#))
    .collect()
}

#[test]
fn decode_errors_carry_no_value_of_a_sensitive_field() {
    let error = domain_events::Email::parse(format!("not-an-email-{SECRET}"))
        .expect_err("not an email address");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("email address"), "{shown}");

    for payload in bad_payloads() {
        let raw = RawEnvelope::from_slice(envelope("k", &payload).as_bytes()).expect("envelope");
        let error = raw
            .decode::<EmailQueuedPayload>()
            .expect_err("the recipient is wrong");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(SECRET), "{payload}: {shown}");
        assert!(!shown.contains("123456789123"), "{payload}: {shown}");
        assert!(!shown.contains("98765.4321"), "{payload}: {shown}");
        assert!(shown.contains("does not match its schema"), "{shown}");
        assert_eq!(EmailQueuedPayload::TYPE, "email:queued");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_sensitive_value_is_dead_lettered_without_it() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test binary's only subscriber");

    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .expect("valid")
        .key_prefix("sensitive");
    let stream = config.keys().stream("email");
    let mut conn = server.connection().await;
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for (i, payload) in bad_payloads().iter().enumerate() {
        let event = envelope(&format!("k{i}"), payload);
        let id: String = conn
            .xadd(&stream, "*", &[("type", "email:queued"), ("event", &event)])
            .await
            .expect("XADD");
        ids.push(id);
        events.push(event);
    }

    let handlers = Handlers::new()
        .on(|_: EmailQueuedEvent| async { Ok(()) })
        .knowing::<DomainEvent>();
    let handle = RedisConsumer::builder(config.clone(), "g", handlers)
        .block(Duration::from_millis(50))
        .build()
        .expect("a consumer")
        .spawn();
    let dead = DeadLetters::new(config.clone()).expect("dead letters");
    eventually("every entry is dead-lettered", WAIT, || {
        let dead = dead.clone();
        let want = ids.len() as u64;
        async move { dead.len("email", "g").await.unwrap_or(0) == want }
    })
    .await;
    let stats = handle.shutdown().await.expect("a clean shutdown");
    assert_eq!(stats.poison, ids.len() as u64);

    let letters = dead
        .list("email", "g", 100)
        .await
        .expect("the dead letters");
    assert_eq!(letters.len(), ids.len());
    for letter in &letters {
        assert!(
            letter.reason.contains("does not match its schema"),
            "{}",
            letter.reason
        );
        for value in [SECRET, "123456789123", "98765.4321"] {
            assert!(!letter.reason.contains(value), "reason: {}", letter.reason);
        }
        assert!(!format!("{letter:?}").contains(SECRET), "{letter:?}");
        let index = ids
            .iter()
            .position(|id| *id == letter.entry_id)
            .expect("a dead letter of an appended entry");
        assert_eq!(
            letter.event,
            events[index].as_bytes(),
            "the raw bytes are kept"
        );
    }
    let logged = logs.text();
    assert!(
        logged.contains("dead"),
        "the dead letters are logged: {logged}"
    );
    for value in [SECRET, "123456789123", "98765.4321"] {
        assert!(
            !logged.contains(value),
            "the log shows `{value}`:\n{logged}"
        );
    }
}
