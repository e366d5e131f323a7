//! Emitting to Redis Streams (docs/contract.md section 4) against a real `redis-server`: the stream
//! layout, the producer-side idempotency claim under races from tasks and from processes, batches,
//! `MAXLEN ~` trimming, script reloading, and keeping the password out of everything printed.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use domain_events::{
    EmitBatch, EmitError, Emitter, Handlers, PublishOutcome, Timestamp, Transport,
};
use domain_events_catalog::{FunnelSignupMethod, FunnelSignupPayload, SeoTextGeneratedPayload};
use domain_events_redis::{RedisConfig, RedisConsumer, RedisTransport};
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{family_completed, init_tracing};
use domain_events_tests::test_certs::TestCerts;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::Value;

/// `(entry id, type field, event JSON)` of every entry of `stream`, oldest first.
async fn entries(conn: &mut MultiplexedConnection, stream: &str) -> Vec<(String, String, Value)> {
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).await.expect("XRANGE");
    reply
        .ids
        .iter()
        .map(|entry| {
            let keys: HashSet<&str> = entry.map.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                HashSet::from(["type", "event"]),
                "entry fields are exactly `type` and `event`"
            );
            let event: String = entry.get("event").expect("event field");
            (
                entry.id.clone(),
                entry.get("type").expect("type field"),
                serde_json::from_str(&event).expect("event is JSON"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicate_emissions_from_many_tasks_give_one_entry_per_key() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("race-tasks");
    let transport = RedisTransport::new(config.clone()).unwrap();
    const KEYS: u64 = 50;
    const TASKS: u64 = 8;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        // Each task has its own emitter on its own connection, and walks the keys in its own order.
        let emitter = Emitter::new(
            format!("task-{task}"),
            RedisTransport::new(config.clone()).unwrap(),
        );
        let shared = Emitter::new("shared", transport.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..KEYS {
                let index = if task % 2 == 0 {
                    (i + task * 13) % KEYS
                } else {
                    (KEYS - 1 - i + task * 7) % KEYS
                };
                let emitter = if i % 2 == 0 { &emitter } else { &shared };
                results.push(
                    emitter
                        .emit(family_completed("race", index))
                        .await
                        .expect("emitted"),
                );
            }
            results
        }));
    }
    let mut by_key: HashMap<String, Vec<domain_events::Emitted>> = HashMap::new();
    for task in tasks {
        for emitted in task.await.unwrap() {
            by_key
                .entry(emitted.idempotency_key.clone())
                .or_default()
                .push(emitted);
        }
    }

    let mut conn = server.connection().await;
    let stream = config.keys().stream("image");
    assert_eq!(stream, "race-tasks:{image}");
    let stored = entries(&mut conn, &stream).await;
    assert_eq!(stored.len() as u64, KEYS, "one entry per idempotency key");
    let stored_ids: HashSet<String> = stored
        .iter()
        .map(|(_, _, event)| event["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(by_key.len() as u64, KEYS);
    for (key, emissions) in &by_key {
        assert_eq!(emissions.len() as u64, TASKS);
        let published: Vec<_> = emissions.iter().filter(|e| e.published()).collect();
        assert_eq!(
            published.len(),
            1,
            "exactly one emission of {key} was published"
        );
        let winner = published[0].event_id;
        assert!(stored_ids.contains(&winner.to_string()));
        for duplicate in emissions.iter().filter(|e| e.duplicate) {
            assert_eq!(
                duplicate.existing_event_id,
                Some(winner),
                "the duplicate learns who holds the claim"
            );
        }
        let claim: String = conn.get(config.keys().idem("image", key)).await.unwrap();
        assert_eq!(
            claim,
            winner.to_string(),
            "the claim holds the published eventId"
        );
        let ttl: i64 = conn.pttl(config.keys().idem("image", key)).await.unwrap();
        assert!(
            ttl > 0 && ttl <= 24 * 3600 * 1000,
            "claim TTL {ttl} ms within 24 h"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicate_emissions_from_two_processes_give_one_entry_per_key() {
    init_tracing();
    let server = RedisServer::start();
    const COUNT: usize = 200;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_redis-emitter-worker"))
            .envs([
                ("REDIS_URL", server.url()),
                ("KEY_PREFIX", "race-procs".to_owned()),
                ("VARIATION", "procs".to_owned()),
                ("COUNT", COUNT.to_string()),
                ("BATCH", "10".to_owned()),
                ("BARRIER_KEY", "race-procs:barrier".to_owned()),
                ("PARTIES", "2".to_owned()),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-emitter-worker")
    };
    let (one, two) = (spawn(), spawn());
    let mut totals = (0, 0);
    for child in [one, two] {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "worker failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let numbers: Vec<usize> = stdout
            .trim()
            .split(' ')
            .map(|part| part.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        totals.0 += numbers[0];
        totals.1 += numbers[1];
    }
    assert_eq!(
        totals,
        (COUNT, COUNT),
        "(published, duplicates) over both processes"
    );
    let mut conn = server.connection().await;
    let stored = entries(&mut conn, "race-procs:{image}").await;
    assert_eq!(stored.len(), COUNT, "one entry per idempotency key");
    let keys: HashSet<&str> = stored
        .iter()
        .map(|(_, _, e)| e["idempotencyKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_that_differ_only_in_where_a_colon_falls_are_both_stored() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("colons");
    let emitter = Emitter::new("colon-test", RedisTransport::new(config.clone()).unwrap());
    let seo_text = |content_id: &str, locale: &str| SeoTextGeneratedPayload {
        content_id: content_id.into(),
        locale: locale.into(),
        word_count: 800,
        generation_time_ms: 1200,
    };
    let first = emitter.emit(seo_text("post:42", "en")).await.unwrap();
    let second = emitter.emit(seo_text("post", "42:en")).await.unwrap();
    assert!(first.published(), "{first:?}");
    assert!(
        second.published(),
        "a different payload was reported a duplicate: {second:?}"
    );
    // The same payload again is still a duplicate of the first.
    let again = emitter.emit(seo_text("post:42", "en")).await.unwrap();
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.existing_event_id, Some(first.event_id));

    let mut conn = server.connection().await;
    let stored = entries(&mut conn, &config.keys().stream("seo")).await;
    let stored: Vec<(&str, &str, &str)> = stored
        .iter()
        .map(|(_, _, event)| {
            (
                event["payload"]["contentId"].as_str().unwrap(),
                event["payload"]["locale"].as_str().unwrap(),
                event["idempotencyKey"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        vec![
            ("post:42", "en", "seo_text:post%3A42:en"),
            ("post", "42:en", "seo_text:post:42%3Aen"),
        ],
        "one stream entry per payload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_pipeline_with_one_outcome_per_event_in_order() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("batch");
    let emitter = Emitter::new("batch-test", RedisTransport::new(config.clone()).unwrap());
    let earlier = emitter.emit(family_completed("batch", 3)).await.unwrap();
    assert!(earlier.published());

    let mut conn = server.connection().await;
    server.reset_command_stats().await;
    let mut batch = EmitBatch::new();
    let indexes = [0u64, 1, 2, 3, 4, 1, 5, 6, 7, 8];
    for index in indexes {
        batch.push(family_completed("batch", index)).unwrap();
    }
    let results = emitter.emit_batch(batch).await.unwrap();
    let duplicates: Vec<bool> = results.iter().map(|e| e.duplicate).collect();
    assert_eq!(
        duplicates,
        vec![
            false, false, false, true, false, true, false, false, false, false
        ]
    );
    assert_eq!(
        results[3].existing_event_id,
        Some(earlier.event_id),
        "claimed before the batch"
    );
    assert_eq!(
        results[5].existing_event_id,
        Some(results[1].event_id),
        "claimed earlier in the same batch"
    );

    // One script call for the batch (one category), and nothing else per event.
    assert_eq!(server.command_calls("evalsha").await, 1);
    // Inside the scripts: a claim per event, an append per published event.
    assert_eq!(server.command_calls("set").await, indexes.len() as u64);
    assert_eq!(server.command_calls("xadd").await, 8);

    let stored = entries(&mut conn, &config.keys().stream("image")).await;
    let stored_ids: Vec<String> = stored
        .iter()
        .map(|(_, _, e)| e["eventId"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = vec![earlier.event_id.to_string()];
    expected.extend(
        results
            .iter()
            .filter(|e| e.published())
            .map(|e| e.event_id.to_string()),
    );
    assert_eq!(stored_ids, expected, "entries in emission order");
    for (_, event_type, event) in &stored {
        assert_eq!(event_type, "image:family_completed");
        assert_eq!(event["type"], "image:family_completed");
        assert_eq!(event["source"], "batch-test");
    }

    // After the script cache is flushed (as after a restart), the batch still goes through.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut batch = EmitBatch::new();
    batch.push(family_completed("batch", 20)).unwrap();
    batch.push(family_completed("batch", 21)).unwrap();
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(results.iter().all(|e| e.published()));
    assert_eq!(
        conn.xlen::<_, usize>(config.keys().stream("image"))
            .await
            .unwrap(),
        expected.len() + 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_several_categories_makes_one_script_call_per_category() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("mixed");
    let emitter = Emitter::new("mixed-test", RedisTransport::new(config.clone()).unwrap());
    let signup = |user: &str| FunnelSignupPayload {
        user_id: user.to_owned(),
        anonymous_id: None,
        method: FunnelSignupMethod::Email,
        occurred_at: Timestamp::now(),
    };
    // Loads the script, so the counts below hold the batch's calls only.
    assert!(emitter.emit(signup("u0")).await.unwrap().published());
    let mut conn = server.connection().await;
    server.reset_command_stats().await;
    let mut batch = EmitBatch::new();
    batch.push(family_completed("mixed", 0)).unwrap();
    batch.push(signup("u1")).unwrap();
    batch.push(family_completed("mixed", 1)).unwrap();
    batch.push(signup("u1")).unwrap();
    batch.push(signup("u2")).unwrap();
    let results = emitter.emit_batch(batch).await.unwrap();
    let types: Vec<&str> = results.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            "image:family_completed",
            "funnel:signup",
            "image:family_completed",
            "funnel:signup",
            "funnel:signup"
        ]
    );
    let duplicates: Vec<bool> = results.iter().map(|e| e.duplicate).collect();
    assert_eq!(duplicates, [false, false, false, true, false]);
    assert_eq!(results[3].existing_event_id, Some(results[1].event_id));
    assert_eq!(server.command_calls("evalsha").await, 2);

    let image = entries(&mut conn, &config.keys().stream("image")).await;
    let funnel = entries(&mut conn, &config.keys().stream("funnel")).await;
    let ids = |stored: &[(String, String, Value)]| -> Vec<String> {
        stored
            .iter()
            .map(|(_, _, e)| e["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&image),
        [
            results[0].event_id.to_string(),
            results[2].event_id.to_string()
        ]
    );
    assert_eq!(
        ids(&funnel)[1..],
        [
            results[1].event_id.to_string(),
            results[4].event_id.to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_emits_go_to_redis_together_with_their_own_outcomes() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("together");
    let emitter = Emitter::new(
        "together-test",
        RedisTransport::new(config.clone()).unwrap(),
    );
    // Loads the script, so the counts below hold the concurrent emits' calls only.
    let earlier = emitter.emit(family_completed("together", 0)).await.unwrap();
    let mut conn = server.connection().await;
    server.reset_command_stats().await;
    // 64 emits in flight at once; keys 0..32 twice each (key 0 was emitted before).
    let emits = (0..64u64).map(|i| emitter.emit(family_completed("together", i % 32)));
    let results: Vec<_> = futures_util::future::join_all(emits)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Without the group commit, one call per emit. With it, the first emit's call is in flight
    // (it cannot answer within the poll that sent it) while `join_all` polls the next ones, which
    // queue behind it and go out together: fewer calls than emits, however fast the machine.
    // (How many fewer depends on when `join_all` yields; `coalesce.rs` tests the exact grouping.)
    let calls = server.command_calls("evalsha").await;
    assert!(calls < 64, "64 concurrent emits made {calls} script calls");
    for key in 0..32usize {
        let (first, second) = (&results[key], &results[key + 32]);
        if key == 0 {
            assert!(first.duplicate && second.duplicate);
            assert_eq!(first.existing_event_id, Some(earlier.event_id));
            assert_eq!(second.existing_event_id, Some(earlier.event_id));
        } else {
            assert!(first.published(), "key {key}: {first:?}");
            assert!(second.duplicate, "key {key}: {second:?}");
            assert_eq!(second.existing_event_id, Some(first.event_id));
        }
    }
    let stored = entries(&mut conn, &config.keys().stream("image")).await;
    assert_eq!(stored.len(), 32);
    // The counters agree with what the emits returned: updated before each emit resolves.
    let published = results.iter().filter(|e| e.published()).count() as u64;
    let stats = emitter.stats();
    assert_eq!((published, stats.emitted), (31, 32), "{stats:?}");
    assert_eq!(stats.duplicates, 64 - published, "{stats:?}");
    assert_eq!((stats.failed, stats.unknown), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_fails_releases_its_claim_and_names_the_event() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("wrong");
    let emitter = Emitter::new("wrong-test", RedisTransport::new(config.clone()).unwrap());
    let mut conn = server.connection().await;
    // The stream key holds a string: every XADD to it fails with WRONGTYPE.
    let stream = config.keys().stream("image");
    let _: () = conn.set(&stream, "not a stream").await.unwrap();
    let mut batch = EmitBatch::new();
    batch.push(family_completed("wrong", 0)).unwrap();
    batch.push(family_completed("wrong", 1)).unwrap();
    // An emit to another stream, in flight at the same time (so sent in the same call), is not
    // failed by the broken one.
    let signup = FunnelSignupPayload {
        user_id: "u1".into(),
        anonymous_id: None,
        method: FunnelSignupMethod::Email,
        occurred_at: Timestamp::now(),
    };
    let (failed, other) = tokio::join!(emitter.emit_batch(batch), emitter.emit(signup));
    assert!(other.unwrap().published());
    let error = failed.expect_err("WRONGTYPE");
    let message = error.to_string();
    assert!(message.contains("WRONGTYPE"), "{message}");
    assert!(message.contains("event 1 of 2"), "{message}");
    let claims: Vec<String> = conn.keys("wrong:{image}:idem:*").await.unwrap();
    assert!(claims.is_empty(), "claims released: {claims:?}");

    // Once the key is free the same events go through: no claim was left behind.
    let _: () = conn.del(&stream).await.unwrap();
    let mut batch = EmitBatch::new();
    batch.push(family_completed("wrong", 0)).unwrap();
    batch.push(family_completed("wrong", 1)).unwrap();
    let results = emitter.emit_batch(batch).await.unwrap();
    assert!(results.iter().all(|e| e.published()));
    assert_eq!(conn.xlen::<_, usize>(&stream).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_call_retried_with_the_same_event_reports_it_published() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("retry");
    let transport = RedisTransport::new(config.clone()).unwrap();
    let event = domain_events::OutgoingEvent {
        event_type: "image:family_completed",
        category: "image",
        event_id: domain_events::Uuid::now_v7(),
        idempotency_key: "image_family:retry:1".into(),
        correlation_id: "retry".into(),
        json: Arc::from(r#"{"opaque":"the transport never parses the envelope"}"#),
    };
    let first = transport
        .publish(std::slice::from_ref(&event))
        .await
        .unwrap();
    let again = transport
        .publish(std::slice::from_ref(&event))
        .await
        .unwrap();
    assert_eq!(first, vec![PublishOutcome::Published]);
    assert_eq!(
        again,
        vec![PublishOutcome::Published],
        "its own claim: the earlier call published it"
    );
    let other = domain_events::OutgoingEvent {
        event_id: domain_events::Uuid::now_v7(),
        ..event.clone()
    };
    assert_eq!(
        transport.publish(&[other]).await.unwrap(),
        vec![PublishOutcome::Duplicate {
            existing_event_id: Some(event.event_id)
        }]
    );
    let mut conn = server.connection().await;
    assert_eq!(conn.xlen::<_, usize>("retry:{image}").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_trimmed_to_about_their_max_len() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .key_prefix("trim")
        .stream_max_len(100);
    let emitter = Emitter::new("trim-test", RedisTransport::new(config.clone()).unwrap());
    const TOTAL: u64 = 1000;
    for start in (0..TOTAL).step_by(50) {
        let mut batch = EmitBatch::new();
        for index in start..start + 50 {
            batch.push(family_completed("trim", index)).unwrap();
        }
        assert!(
            emitter
                .emit_batch(batch)
                .await
                .unwrap()
                .iter()
                .all(|e| e.published())
        );
    }
    let mut conn = server.connection().await;
    let len: u64 = conn.xlen(config.keys().stream("image")).await.unwrap();
    // `MAXLEN ~` trims whole internal nodes (100 entries each by default), never below the bound.
    assert!(
        (100..300).contains(&len),
        "stream length {len} after {TOTAL} appends with MAXLEN ~ 100"
    );
    let last = entries(&mut conn, &config.keys().stream("image"))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        last.2["payload"]["familyIndex"],
        TOTAL - 1,
        "the newest entries are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_shows_in_debug_output_or_errors() {
    init_tracing();
    const PASSWORD: &str = "s3cr3t-Pa55word";
    let server = RedisServer::start_with_args(
        false,
        &[
            "--user",
            "default",
            "off",
            "--user",
            "alice",
            "on",
            &format!(">{PASSWORD}"),
            "~*",
            "&*",
            "+@all",
        ],
    );
    let url = format!("redis://alice:{PASSWORD}@127.0.0.1:{}", server.port());

    // The right password works (ACL user), and nothing printed shows it.
    let config = RedisConfig::new(&url).unwrap().key_prefix("acl");
    let transport = RedisTransport::new(config.clone()).unwrap();
    transport.ping().await.expect("authenticated as alice");
    let emitter = Emitter::new("acl-test", transport.clone());
    assert!(
        emitter
            .emit(family_completed("acl", 1))
            .await
            .unwrap()
            .published()
    );
    let consumer = RedisConsumer::builder(
        config.clone(),
        "g",
        Handlers::new().on(|_: domain_events_catalog::ImageFamilyCompletedEvent| async { Ok(()) }),
    )
    .build()
    .unwrap();
    for shown in [
        format!("{config:?}"),
        format!("{transport:?}"),
        format!("{consumer:?}"),
    ] {
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains("alice:***@127.0.0.1"), "{shown}");
    }
    assert!(!format!("{emitter:?}").contains(PASSWORD));

    // A wrong password and an unreachable server fail without showing the password either.
    const WRONG: &str = "wr0ng-Pa55word";
    let wrong = RedisConfig::new(&format!(
        "redis://alice:{WRONG}@127.0.0.1:{}",
        server.port()
    ))
    .unwrap();
    let wrong_transport = RedisTransport::new(wrong).unwrap();
    let error = wrong_transport
        .ping()
        .await
        .expect_err("authentication fails");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(WRONG) && shown.contains("***"), "{shown}");
    let emitter = Emitter::builder("acl-test", wrong_transport)
        .timeout(Duration::from_secs(5))
        .build();
    let error = emitter
        .emit(family_completed("acl", 2))
        .await
        .expect_err("authentication fails");
    let shown = format!("{error} {error:?} {:?}", std::error::Error::source(&error));
    assert!(!shown.contains(WRONG), "{shown}");

    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable =
        RedisConfig::new(&format!("redis://alice:{PASSWORD}@127.0.0.1:{nowhere}")).unwrap();
    let error = RedisTransport::new(unreachable)
        .unwrap()
        .ping()
        .await
        .expect_err("nothing listens there");
    assert!(error.is_transient(), "{error:?}");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(PASSWORD) && shown.contains("alice:***@127.0.0.1"),
        "{shown}"
    );

    let error = RedisConfig::new(&format!("redis://alice:{PASSWORD}@127.0.0.1:notaport"))
        .expect_err("bad port");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(matches!(
        EmitError::from(domain_events::TransportError::from(error)),
        EmitError::Transport(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_urls_connect_over_tls_with_an_acl_user() {
    init_tracing();
    // A private CA and a server certificate for 127.0.0.1 / localhost.
    let certs = TestCerts::new();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let path = |file: std::path::PathBuf| file.display().to_string();
    const PASSWORD: &str = "tls-Pa55word";
    let _server = RedisServer::start_with_args(
        false,
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &path(certs.server_cert()),
            "--tls-key-file",
            &path(certs.server_key()),
            "--tls-ca-cert-file",
            &path(certs.ca_cert()),
            "--tls-auth-clients",
            "no",
            "--user",
            "bob",
            "on",
            &format!(">{PASSWORD}"),
            "~*",
            "&*",
            "+@all",
        ],
    );
    let url = format!("rediss://bob:{PASSWORD}@127.0.0.1:{tls_port}");
    let ca = std::fs::read(certs.ca_cert()).unwrap();
    let config = RedisConfig::new(&url)
        .unwrap()
        .key_prefix("tls")
        .tls_root_cert(ca);
    assert!(config.is_tls());

    let transport = RedisTransport::new(config.clone()).unwrap();
    transport
        .ping()
        .await
        .expect("TLS handshake with the private CA and ACL login");
    let emitter = Emitter::new("tls-test", transport);
    assert!(
        emitter
            .emit(family_completed("tls", 1))
            .await
            .unwrap()
            .published()
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handlers = Handlers::new().on(
        move |event: domain_events_catalog::ImageFamilyCompletedEvent| {
            let tx = tx.clone();
            async move {
                tx.send(event.payload.family_index)
                    .map_err(|_| "gone".into())
            }
        },
    );
    let consumer = RedisConsumer::builder(config, "tls-group", handlers)
        .block(Duration::from_millis(50))
        .build()
        .unwrap()
        .spawn();
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("consumed over TLS");
    assert_eq!(got, Some(1));
    consumer.shutdown().await.unwrap();

    // Without the private CA the certificate is refused, and the error keeps the password out.
    let untrusted = RedisTransport::new(RedisConfig::new(&url).unwrap()).unwrap();
    let error = untrusted
        .ping()
        .await
        .expect_err("an unknown CA is refused");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(PASSWORD) && shown.contains("bob:***@127.0.0.1"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_a_transport_get_every_answer_while_calls_start_and_end() {
    init_tracing();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix("share");
    let emitter = Emitter::new("share-test", RedisTransport::new(config.clone()).unwrap());
    const TASKS: u64 = 8;
    const EACH: u64 = 300;
    // Emits from many tasks, each pausing a varying number of turns between emits, so group
    // commits keep starting, draining and ending while others arrive.
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let emitter = emitter.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let index = task * EACH + i;
                    let emitted = emitter
                        .emit(family_completed("share", index))
                        .await
                        .unwrap_or_else(|error| panic!("emit {index}: {error}"));
                    assert!(emitted.published(), "emit {index}");
                    for _ in 0..(index % 3) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut conn = server.connection().await;
    let stored: usize = conn.xlen(config.keys().stream("image")).await.unwrap();
    assert_eq!(stored as u64, TASKS * EACH);
}
