//! `outbox migrate | status | relay | dead list | dead retry` run as a user would, against a
//! private PostgreSQL and Redis per test; the relay as a process that is stopped, killed and
//! started again.

mod support;

use std::collections::HashSet;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use domain_events_catalog::{ImageFamilyCompletedPayload, SeoTextGeneratedPayload};
use domain_events_outbox::{Outbox, OutboxTable, migrate};
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, family_completed};
use domain_events_tests::secrets::{PASSWORD, assert_clean, encode};
use domain_events_tests::test_certs::TestCerts;
use serde_json::Value;
use sqlx::PgPool;
use support::{finish, stderr, stdout};

/// A bound against hanging, not a performance assertion.
const WAIT: Duration = Duration::from_secs(60);
const IMAGE_STREAM: &str = "domain-events:{image}";

struct Setup {
    pg: PostgresServer,
    redis: RedisServer,
}

impl Setup {
    fn new() -> Self {
        Setup {
            pg: PostgresServer::start(),
            redis: RedisServer::start(),
        }
    }

    /// The URL with a password (which the test server's `trust` authentication ignores): it must
    /// never be printed.
    fn url(&self) -> String {
        self.pg.url_with_password(&encode(PASSWORD))
    }

    /// The binary with `args`, `--postgres` and `--redis` from the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_domain-events"));
        command
            .arg("outbox")
            .args(args)
            .env("DOMAIN_EVENTS_POSTGRES_URL", self.url())
            .env("DOMAIN_EVENTS_REDIS_URL", self.redis.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = finish(self.command(args).spawn().expect("the binary starts"));
        assert_clean(&stdout(&output), "stdout");
        assert_clean(&stderr(&output), "stderr");
        output
    }

    fn relay(&self, args: &[&str]) -> Child {
        let mut all = vec!["relay", "--poll-interval-ms", "200"];
        all.extend_from_slice(args);
        self.command(&all).spawn().expect("the relay starts")
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.pg.url()).await.unwrap()
    }

    async fn stream_len(&self, key: &str) -> usize {
        let mut conn = self.redis.connection().await;
        redis::AsyncCommands::xlen(&mut conn, key).await.unwrap()
    }
}

async fn write_families(pool: &PgPool, variation: &str, count: u64) {
    let outbox = Outbox::new("cli-test");
    let mut tx = pool.begin().await.unwrap();
    let mut batch = domain_events::EmitBatch::new();
    for i in 0..count {
        batch.push(family_completed(variation, i)).unwrap();
    }
    outbox.emit_batch(&mut tx, batch).await.unwrap();
    tx.commit().await.unwrap();
}

async fn pending(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM public.domain_events_outbox \
         WHERE published_at IS NULL AND dead_at IS NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Stops a relay process with SIGTERM and returns its output.
fn terminate(child: Child) -> Output {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    finish(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_status_relay_and_dead_rows_from_the_command_line_without_printing_the_password() {
    let setup = Setup::new();
    let migrated = setup.run(&["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_eq!(
        stdout(&migrated),
        "ok: outbox public.domain_events_outbox is migrated\n"
    );
    assert!(setup.run(&["migrate"]).status.success(), "idempotent");

    let pool = setup.pool().await;
    write_families(&pool, "var-cli", 5).await;
    // Rejected for good by Redis: the seo stream's key holds a string.
    let mut conn = setup.redis.connection().await;
    let _: () = redis::AsyncCommands::set(&mut conn, "domain-events:{seo}", "x")
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let dead = Outbox::new("cli-test")
        .emit(
            &mut tx,
            SeoTextGeneratedPayload {
                content_id: "post:1".into(),
                locale: "en".into(),
                word_count: 10,
                generation_time_ms: 5,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let before = stdout(&setup.run(&["status"]));
    assert!(before.contains("pending: 6\n"), "{before}");
    assert!(before.contains("oldest pending: "), "{before}");
    assert!(!before.contains("oldest pending: none"), "{before}");
    assert!(before.contains("dead: 0\n"), "{before}");
    assert!(before.contains("relays seen: 0\n"), "{before}");

    let relay = setup.relay(&[]);
    eventually("the relay published or buried every row", WAIT, || async {
        pending(&pool).await == 0
    })
    .await;
    let running: Value = serde_json::from_str(&stdout(&setup.run(&["status", "--json"]))).unwrap();
    assert_eq!(running["pending"], 0);
    assert_eq!(running["oldestPendingAgeSecs"], Value::Null);
    assert_eq!(running["dead"], 1);
    assert_eq!(running["published"], 5);
    assert_eq!(running["relays"].as_array().unwrap().len(), 1);
    assert_eq!(running["relays"][0]["stopped"], false);

    let stopped = terminate(relay);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert_clean(&stderr(&stopped), "the relay's stderr");
    let stats: Value = serde_json::from_str(stdout(&stopped).trim()).unwrap();
    assert_eq!(
        (stats["published"].as_u64(), stats["dead"].as_u64()),
        (Some(5), Some(1))
    );
    let after = stdout(&setup.run(&["status"]));
    assert!(after.contains("relays seen: 1\n"), "{after}");
    assert!(after.contains(", stopped\n"), "{after}");

    let listed = setup.run(&["dead", "list"]);
    let lines: Vec<Value> = stdout(&listed)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["eventId"], dead.event_id.to_string());
    assert_eq!(lines[0]["type"], "seo:text_generated");
    assert!(
        lines[0]["reason"].as_str().unwrap().contains("WRONGTYPE"),
        "{}",
        lines[0]
    );
    let retried = setup.run(&["dead", "retry", "--id", &dead.event_id.to_string()]);
    assert_eq!(stdout(&retried), "ok: 1 dead rows are pending again\n");
    assert_eq!(pending(&pool).await, 1);
    assert!(
        !setup.run(&["dead", "retry"]).status.success(),
        "--id or --all is required"
    );
}

#[test]
fn bad_or_unreachable_postgres_urls_fail_without_showing_the_password() {
    let secret = encode(PASSWORD);
    for url in [
        format!("postgres://app:{secret}@127.0.0.1:1/app"),
        format!("postgres://app:{secret}@127.0.0.1:notaport/app"),
        format!("mysql://app:{secret}@127.0.0.1/app"),
    ] {
        let output = finish(
            Command::new(env!("CARGO_BIN_EXE_domain-events"))
                .args(["outbox", "status", "--postgres", &url])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary starts"),
        );
        assert!(!output.status.success(), "{url}");
        let err = stderr(&output);
        assert!(err.starts_with("error: "), "{err}");
        assert_clean(&err, &url);
        assert_clean(&stdout(&output), &url);
    }
}

/// The relay process is SIGKILLed while it publishes (between batches or in one), then started
/// again: every committed event is on the stream exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_process_killed_mid_run_and_restarted_publishes_every_event_once() {
    const EVENTS: u64 = 3000;
    let setup = Setup::new();
    let pool = setup.pool().await;
    migrate(&pool, &OutboxTable::default()).await.unwrap();
    for chunk in 0..3 {
        write_families(&pool, &format!("var-kill-{chunk}"), EVENTS / 3).await;
    }

    let mut first = setup.relay(&["--batch-size", "50"]);
    eventually(
        "the first relay has published some events",
        WAIT,
        || async { setup.stream_len(IMAGE_STREAM).await > 0 },
    )
    .await;
    first.kill().expect("SIGKILL");
    first.wait().expect("the killed relay's status");
    let left = pending(&pool).await;
    assert!(left > 0, "killed before it finished");

    let second = setup.relay(&["--batch-size", "50"]);
    eventually("every event is published", WAIT, || async {
        pending(&pool).await == 0
    })
    .await;
    let output = terminate(second);
    assert!(output.status.success(), "{}", stderr(&output));

    let mut conn = setup.redis.connection().await;
    let mut ids = HashSet::new();
    let mut from = "-".to_owned();
    loop {
        let reply: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_count(&mut conn, IMAGE_STREAM, &from, "+", 500)
                .await
                .unwrap();
        let Some(last) = reply.ids.last() else { break };
        from = format!("({}", last.id);
        for entry in &reply.ids {
            let json: String = entry.get("event").unwrap();
            let raw = domain_events::RawEnvelope::from_slice(json.as_bytes()).unwrap();
            raw.decode::<ImageFamilyCompletedPayload>().unwrap();
            assert!(ids.insert(raw.event_id), "{} twice", raw.event_id);
        }
    }
    assert_eq!(ids.len(), usize::try_from(EVENTS).unwrap());
}

/// `--postgres` with `sslmode=verify-full` and the private CA of a server with `ssl = on`: the
/// migration runs and a relay process publishes over TLS; without the CA the server is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_reach_postgres_over_verified_tls() {
    let certs = TestCerts::new();
    let pg = PostgresServer::start_tls(&certs.server_cert(), &certs.server_key());
    let redis = RedisServer::start();
    let base = pg.url_with_password(&encode(PASSWORD));
    let verified = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        certs.ca_cert().display()
    );
    let command = |url: &str, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_domain-events"));
        command
            .arg("outbox")
            .args(args)
            .args(["--postgres", url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    let migrated = finish(command(&verified, &["migrate"]).spawn().unwrap());
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert_clean(&stderr(&migrated), "migrate's stderr");

    // This test's own connections are plain, so a TLS session is the relay's.
    let pool = PgPool::connect(&format!("{}?sslmode=disable", pg.url()))
        .await
        .unwrap();
    let relay = command(
        &verified,
        &[
            "relay",
            "--redis",
            &redis.url(),
            "--poll-interval-ms",
            "200",
        ],
    )
    .spawn()
    .expect("the relay starts");
    write_families(&pool, "var-tls", 3).await;
    let conn = redis.connection().await;
    eventually("the relay published over TLS", WAIT, || {
        let mut conn = conn.clone();
        async move {
            let len: usize = redis::AsyncCommands::xlen(&mut conn, IMAGE_STREAM)
                .await
                .unwrap();
            len == 3
        }
    })
    .await;
    let tls_sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_ssl WHERE ssl")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(tls_sessions >= 1, "the relay's sessions are not over TLS");
    let output = terminate(relay);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_clean(&stderr(&output), "the relay's stderr");

    // Without the CA the server's certificate is from an unknown issuer.
    let refused = finish(
        command(&format!("{base}?sslmode=verify-full"), &["status"])
            .spawn()
            .unwrap(),
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_clean(&err, "status's stderr");
}
