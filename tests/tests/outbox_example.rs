//! Runs the outbox example (`cargo run -p domain-events-outbox --example outbox`, README "The
//! transactional outbox on PostgreSQL") as users do, against a PostgreSQL and a Redis this test
//! starts: its business row commits, and the event it printed is on the stream.

use std::path::PathBuf;
use std::process::Command;

use domain_events::RawEnvelope;
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::redis_server::RedisServer;

/// The example's binary, built (or found up to date) by cargo: `cargo test` builds examples only
/// as test harnesses, so the plain binary may be missing or stale.
fn example() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "domain-events-outbox",
            "--example",
            "outbox",
        ])
        .status()
        .expect("run cargo to build the example");
    assert!(status.success(), "building the outbox example failed");
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir
        .join("examples")
        .join(format!("outbox{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing after building it",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_outbox_example_commits_its_row_and_the_relay_puts_its_event_on_the_stream() {
    let pg = PostgresServer::start();
    let redis = RedisServer::start();
    let output = Command::new(example())
        .env("DATABASE_URL", pg.url())
        .env("REDIS_URL", redis.url())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // "committed var-<uuid> (event <uuid>)"
    let committed = stdout
        .lines()
        .find_map(|line| line.strip_prefix("committed "))
        .unwrap_or_else(|| panic!("no `committed` line in:\n{stdout}"));
    let (variation, rest) = committed.split_once(" (event ").expect("an event id");
    let event_id = rest.trim_end_matches(')');
    assert!(
        stdout.contains("published to Redis stream domain-events:{image} (1 event(s) this run)"),
        "{stdout}"
    );

    // The business row committed, and the stream holds exactly that event.
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM variations WHERE id = $1")
        .bind(variation)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    let mut conn = redis.connection().await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("domain-events:{image}")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ids: Vec<String> = reply
        .ids
        .iter()
        .map(|entry| {
            let json: String = entry.get("event").expect("an event field");
            let envelope = RawEnvelope::from_slice(json.as_bytes()).expect("an envelope");
            assert_eq!(envelope.event_type, "image:variation_completed");
            envelope.event_id.to_string()
        })
        .collect();
    assert_eq!(ids, [event_id]);
}
