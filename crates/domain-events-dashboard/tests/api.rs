//! The JSON API over HTTP against a real `redis-server`, seeded by the runtime itself: what the
//! pages show, what the guard refuses, and what a replay does.

mod support;

use std::sync::Arc;
use std::time::Duration;

use domain_events::Emitter;
use domain_events_dashboard::{Dashboard, router};
use domain_events_redis::{DeadLetters, RedisTransport};
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{RECIPIENT, WAIT, dashboard, seed};

async fn get(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.unwrap()
}

fn group<'a>(overview: &'a Value, category: &str, name: &str) -> &'a Value {
    overview["status"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["category"] == category)
        .flat_map(|s| s["groups"].as_array().unwrap())
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} of {category} in {overview}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_dashboard_shows_everything_and_changes_nothing() {
    init_tracing();
    let seeded = seed().await;
    let base = dashboard(&seeded, |b| b).await;
    let client = reqwest::Client::new();

    // The session says what the page may do: no actions, so no CSRF token either.
    let session = get(&format!("{base}api/session")).await;
    assert_eq!(session["actionsAllowed"], false);
    assert_eq!(session["csrfToken"], Value::Null);
    assert_eq!(session["prefix"], "dash");

    // Streams, groups, lag, pending and dead letters at a glance.
    let overview = get(&format!("{base}api/overview")).await;
    let streams = overview["status"]["streams"].as_array().unwrap();
    let length = |category: &str| {
        streams.iter().find(|s| s["category"] == category).unwrap()["length"].clone()
    };
    assert_eq!(length("image"), 3);
    assert_eq!(length("email"), 3);
    let notifications = group(&overview, "image", "notifications");
    assert_eq!(notifications["lag"], 0);
    assert_eq!(notifications["pending"], 0);
    assert_eq!(group(&overview, "email", "mailer")["deadLetters"], 3);

    // Throughput: events emitted while the dashboard samples show as a positive rate.
    let emitter = Emitter::new(
        "dashboard-test",
        RedisTransport::new(seeded.config.clone()).unwrap(),
    );
    let mut index = 100;
    eventually("the image stream's throughput shows", WAIT, || {
        index += 1;
        let emitter = emitter.clone();
        let url = format!("{base}api/overview");
        async move {
            emitter.emit(family_completed("t", index)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let overview = get(&url).await;
            overview["throughput"]["streams"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| {
                    s["category"] == "image"
                        && s["points"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["perSecond"].as_f64().unwrap() > 0.0)
                })
        }
    })
    .await;

    // Dead letters: reason, deliveries, the event with the sensitive recipient redacted.
    let text = client
        .get(format!(
            "{base}api/dead-letters?category=email&group=mailer"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(RECIPIENT), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["total"], 3);
    let letters = list["letters"].as_array().unwrap();
    let emails: Vec<&Value> = letters.iter().filter(|l| l["replayable"] == true).collect();
    assert_eq!(emails.len(), 2, "{list}");
    for letter in &emails {
        assert!(
            letter["reason"]
                .as_str()
                .unwrap()
                .contains("the mail provider is down"),
            "{letter}"
        );
        assert_eq!(letter["deliveries"], 1);
        assert_eq!(letter["event"]["redaction"], "sensitiveFields");
        let payload = &letter["event"]["envelope"]["payload"];
        assert_eq!(payload["recipient"], "[redacted]");
        assert_eq!(payload["templateId"], "welcome");
    }
    let poison = letters.iter().find(|l| l["replayable"] == false).unwrap();
    assert_eq!(poison["event"], Value::Null);
    assert_eq!(poison["eventBytes"], 8);

    // One dead letter by id; an unknown id is 404.
    let id = emails[0]["id"].as_str().unwrap();
    let one = get(&format!(
        "{base}api/dead-letter?category=email&group=mailer&id={id}"
    ))
    .await;
    assert_eq!(one["id"], id);
    let missing = client
        .get(format!(
            "{base}api/dead-letter?category=email&group=mailer&id=1-1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Read-only: replay and delete are refused, and nothing changed.
    for action in ["replay", "delete"] {
        let response = client
            .post(format!("{base}api/dead-letters/{action}"))
            .json(&json!({"category": "email", "group": "mailer", "id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
    }
    let letters = DeadLetters::new(seeded.config.clone()).unwrap();
    assert_eq!(letters.len("email", "mailer").await.unwrap(), 3);

    // Lookup by event id and by idempotency key: the entry, the claim, the done records.
    let (image_id, image_key) = &seeded.images[0];
    for query in [
        format!("eventId={image_id}"),
        format!("idempotencyKey={}", urlencode(image_key)),
    ] {
        let found = get(&format!("{base}api/lookup?{query}")).await;
        let entries = found["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{query}: {found}");
        assert_eq!(
            entries[0]["event"]["envelope"]["eventId"],
            image_id.as_str()
        );
        assert_eq!(found["idempotencyKey"], image_key.as_str());
        let claims = found["claims"].as_array().unwrap();
        assert_eq!(claims.len(), 1, "{found}");
        assert_eq!(claims[0]["eventId"], image_id.as_str());
        assert_eq!(claims[0]["key"], format!("dash:{{image}}:idem:{image_key}"));
        let groups = found["groups"].as_array().unwrap();
        let done = groups
            .iter()
            .find(|g| g["group"] == "notifications")
            .unwrap();
        assert_eq!(done["done"]["eventId"], image_id.as_str(), "{found}");
        assert!(done["done"]["ttlMs"].as_u64().unwrap() > 0);
    }
    // An email the mailer gave up on: claimed, not done, its recipient redacted.
    let (email_id, email_key) = &seeded.emails[0];
    let text = client
        .get(format!("{base}api/lookup?eventId={email_id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(RECIPIENT), "{text}");
    let found: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(found["idempotencyKey"], email_key.as_str());
    assert_eq!(found["claims"][0]["eventId"], email_id.as_str());
    let mailer = found["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "mailer")
        .unwrap();
    assert_eq!(mailer["done"], Value::Null);
    // Nothing known: no entry, no claim.
    let unknown = get(&format!("{base}api/lookup?idempotencyKey=nobody")).await;
    assert_eq!(unknown["entries"], json!([]));
    assert_eq!(unknown["claims"], json!([]));

    // The catalog from the schemas, with the sensitive field marked.
    let catalog = get(&format!("{base}api/catalog")).await;
    let queued = catalog["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["events"].as_array().unwrap())
        .find(|e| e["type"] == "email:queued")
        .unwrap();
    let recipient = queued["versions"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "recipient")
        .unwrap();
    assert_eq!(recipient["sensitive"], true);
    assert_eq!(recipient["type"], "email");

    // `/metrics`: the dashboard's own gauges in Prometheus's text format.
    let metrics = client.get(format!("{base}metrics")).send().await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.unwrap();
    for line in [
        "# TYPE domain_events_group_lag gauge",
        "domain_events_dead_letters{category=\"email\",group=\"mailer\"} 3",
        "domain_events_group_pending{stream=\"dash:{image}\",category=\"image\",group=\"notifications\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }

    // The page and its files, with no reference to anything but the dashboard itself.
    let page = client.get(&base).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("<base href=\"/\">"), "{page}");
    for asset in ["assets/app.js", "assets/style.css"] {
        let body = get_text(&format!("{base}{asset}")).await;
        // No file from anywhere else (the one URL in the script is the SVG namespace).
        let urls = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !urls.contains("http://") && !urls.contains("https://") && !urls.contains("//cdn"),
            "{asset}"
        );
    }
    assert!(!page.contains("https://"));
}

async fn get_text(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.text().await.unwrap()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_api_and_metrics_but_not_the_page() {
    init_tracing();
    let seeded = seed().await;
    let base = dashboard(&seeded, |b| b.token("s3cret-token")).await;
    let client = reqwest::Client::new();
    for path in ["api/session", "api/overview", "metrics", "api/catalog"] {
        let url = format!("{base}{path}");
        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let wrong = client
            .get(&url)
            .bearer_auth("s3cret-tokeN")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let right = client
            .get(&url)
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), StatusCode::OK, "{path}");
    }
    // The page holds no data: it loads, then asks for the token.
    let page = client.get(&base).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("token-form"));
    // A POST without the token is refused before anything else is checked.
    let post = client
        .post(format!("{base}api/dead-letters/delete"))
        .json(&json!({"category": "email", "group": "mailer", "id": "1-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_actions_allowed_a_replay_is_handled_and_cross_site_requests_are_refused() {
    init_tracing();
    let mut seeded = seed().await;
    let base = dashboard(&seeded, |b| b.allow_actions(true)).await;
    let client = reqwest::Client::new();
    let session = get(&format!("{base}api/session")).await;
    assert_eq!(session["actionsAllowed"], true);
    let csrf = session["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);

    let list = get(&format!(
        "{base}api/dead-letters?category=email&group=mailer"
    ))
    .await;
    let letters = list["letters"].as_array().unwrap();
    let email = letters.iter().find(|l| l["replayable"] == true).unwrap();
    let id = email["id"].as_str().unwrap().to_owned();
    let event_id = email["event"]["envelope"]["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    let poison = letters.iter().find(|l| l["replayable"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"category": "email", "group": "mailer", "id": id});
    let replay = format!("{base}api/dead-letters/replay");
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    // Cross-site attempts: no token, a wrong token, another origin, a cross-site fetch.
    let attempts = [
        client.post(&replay).json(&body),
        client
            .post(&replay)
            .json(&body)
            .header("x-csrf-token", "0".repeat(64)),
        client
            .post(&replay)
            .json(&body)
            .header("x-csrf-token", &csrf)
            .header("origin", "http://evil.example"),
        client
            .post(&replay)
            .json(&body)
            .header("x-csrf-token", &csrf)
            .header("origin", format!("http://{host}"))
            .header("sec-fetch-site", "cross-site"),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let dead = DeadLetters::new(seeded.config.clone()).unwrap();
    assert_eq!(dead.len("email", "mailer").await.unwrap(), 3);

    // The page's own request: replayed, gone from the dead letters, handled by the mailer.
    let response = client
        .post(&replay)
        .json(&body)
        .header("x-csrf-token", &csrf)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replayed: Value = response.json().await.unwrap();
    assert!(replayed["entryId"].as_str().unwrap().contains('-'));
    assert_eq!(dead.len("email", "mailer").await.unwrap(), 2);
    eventually("the replayed email is handled", WAIT, || async {
        let found = get(&format!("{base}api/lookup?eventId={event_id}")).await;
        found["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "mailer" && g["done"]["eventId"] == event_id.as_str())
    })
    .await;
    let found = get(&format!("{base}api/lookup?eventId={event_id}")).await;
    assert_eq!(
        found["entries"].as_array().unwrap().len(),
        2,
        "the entry and its replay: {found}"
    );
    // Replaying it again: it is gone.
    let again = client
        .post(&replay)
        .json(&body)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // The entry that is no event cannot be replayed, only deleted.
    let poison_body = json!({"category": "email", "group": "mailer", "id": poison});
    let refused = client
        .post(&replay)
        .json(&poison_body)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let delete = format!("{base}api/dead-letters/delete");
    for expected in [true, false] {
        let deleted: Value = client
            .post(&delete)
            .json(&poison_body)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(deleted["deleted"], expected);
    }
    assert_eq!(dead.len("email", "mailer").await.unwrap(), 1);
    seeded.mailer.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_nests_in_a_service_app_and_metrics_can_come_from_the_caller() {
    init_tracing();
    let seeded = seed().await;
    let dashboard = Dashboard::builder(seeded.config.clone())
        .metrics(Arc::new(|| "my_service_up 1\n".to_owned()))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest("/ops/events", router(dashboard));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");

    let page = get_text(&format!("{base}/ops/events")).await;
    assert!(page.contains("<base href=\"/ops/events/\">"), "{page}");
    assert!(
        get_text(&format!("{base}/ops/events/assets/app.js"))
            .await
            .contains("function route")
    );
    let session = get(&format!("{base}/ops/events/api/session")).await;
    assert_eq!(session["catalogLoaded"], false);
    assert_eq!(
        get_text(&format!("{base}/ops/events/metrics")).await,
        "my_service_up 1\n"
    );
    assert_eq!(get_text(&format!("{base}/health")).await, "ok");
    // Without a catalog nobody can tell which fields are sensitive: no payload is shown.
    let list = get(&format!(
        "{base}/ops/events/api/dead-letters?category=email&group=mailer"
    ))
    .await;
    let email = list["letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["replayable"] == true)
        .unwrap();
    assert_eq!(email["event"]["redaction"], "wholePayload");
    assert_eq!(email["event"]["envelope"]["payload"], "[redacted]");
}
