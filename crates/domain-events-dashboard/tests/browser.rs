//! The pages in a real headless Chromium, driven through `chromedriver` (WebDriver), as an
//! operator uses them: open the dashboard, see the seeded streams and counts, open a dead letter,
//! replay it, see it handled and gone. Needs Debian's `chromium` and `chromium-driver` on `PATH`
//! (`.ci/run` installs them); without them the test fails, it never skips.
//!
//! It saves a screenshot of each main page: into a temporary folder, or into the folder
//! `DASHBOARD_SCREENSHOTS` names (relative to the repository root), e.g.
//! `DASHBOARD_SCREENSHOTS=docs/screenshots cargo test -p domain-events-dashboard --test browser`
//! refreshes the ones the README shows.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain_events::Emitter;
use domain_events_redis::RedisTransport;
use domain_events_tests::redis_worker::{eventually, family_completed, init_tracing};
use fantoccini::{Client, ClientBuilder, Locator};
use support::{RECIPIENT, WAIT, dashboard, seed};

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): install Debian's `chromium` and `chromium-driver` (.ci/run does)")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--hide-scrollbars"],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session through chromedriver")
}

/// Debian's `chromium`, found on `PATH`.
fn chromium() -> String {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("no `chromium` on PATH: install Debian's `chromium` and `chromium-driver` (.ci/run does)"))
        .display()
        .to_string()
}

/// The text of the first element `css` selects, if there is one.
async fn text(client: &Client, css: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Waits until the element `css` selects shows a text that `check` accepts.
async fn wait_text(client: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let mut last = None;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(text) = text(client, css).await {
            if check(&text) {
                return text;
            }
            last = Some(text);
        }
        if Instant::now() > deadline {
            let page = text(client, "#main").await.unwrap_or_default();
            panic!("timed out waiting on `{css}`; it showed {last:?}; the page shows:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshots() -> PathBuf {
    match std::env::var_os("DASHBOARD_SCREENSHOTS") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir),
        None => std::env::temp_dir().join(format!("dashboard-screenshots-{}", std::process::id())),
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = screenshots();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_streams_and_replays_a_dead_letter_until_it_is_handled() {
    init_tracing();
    let mut seeded = seed().await;
    let base = dashboard(&seeded, |b| b.allow_actions(true)).await;
    let driver = Driver::start();
    let client = browser(&driver).await;

    // The overview: the seeded streams and their counts.
    client.goto(&base).await.unwrap();
    wait_text(
        &client,
        r#"tr[data-stream="dash:{image}"] td.length"#,
        |t| t == "3",
    )
    .await;
    wait_text(
        &client,
        r#"tr[data-stream="dash:{email}"] td.length"#,
        |t| t == "3",
    )
    .await;
    wait_text(&client, "#total-dead .value", |t| t == "3").await;
    wait_text(
        &client,
        r#"tr[data-group="image/notifications"] td.lag"#,
        |t| t == "0",
    )
    .await;
    wait_text(&client, r#"tr[data-group="email/mailer"] td.dead"#, |t| {
        t == "3"
    })
    .await;
    wait_text(&client, "#mode", |t| t.starts_with("actions allowed")).await;
    // Events arriving show as throughput, refreshed live.
    let emitter = Emitter::new(
        "dashboard-test",
        RedisTransport::new(seeded.config.clone()).unwrap(),
    );
    let mut index = 100;
    eventually("the page shows the image stream's throughput", WAIT, || {
        index += 1;
        let emitter = emitter.clone();
        let client = client.clone();
        async move {
            emitter.emit(family_completed("live", index)).await.unwrap();
            text(&client, r#"tr[data-stream="dash:{image}"] td.rate"#)
                .await
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|rate| rate > 0.0)
        }
    })
    .await;
    screenshot(&client, "overview").await;

    // The group's dead letters, then one of them: reason, deliveries, the event redacted.
    client
        .find(Locator::Css(r#"tr[data-group="email/mailer"] a.dlq-link"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "#dead-letter-total", |t| {
        t.starts_with("3 dead letter")
    })
    .await;
    let rows = client
        .find_all(Locator::Css("#dead-letters tbody tr"))
        .await
        .unwrap();
    let mut email_row = None;
    for row in rows {
        if row.text().await.unwrap().contains("email:queued") {
            email_row = Some(row);
            break;
        }
    }
    let email_row = email_row.expect("a dead email in the list");
    email_row
        .find(Locator::Css("a.letter-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "#reason", |t| {
        t.contains("the mail provider is down")
    })
    .await;
    assert_eq!(text(&client, "#deliveries").await.as_deref(), Some("1"));
    let event = wait_text(&client, "pre#event", |t| t.contains("email:queued")).await;
    assert!(event.contains("\"recipient\": \"[redacted]\""), "{event}");
    assert!(!client.source().await.unwrap().contains(RECIPIENT));
    let event_id = text(&client, "#letter tr:nth-child(8) td").await.unwrap();
    screenshot(&client, "dead-letter").await;

    // Replay: done, then looked up: handled by the mailer.
    client
        .find(Locator::Css("#replay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&client, "#action-done", |t| {
        t.starts_with("Replayed as entry")
    })
    .await;
    client
        .find(Locator::Css("#lookup-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(
        &client,
        r#"#lookup-groups tr[data-group="email/mailer"] td.done"#,
        |t| t.starts_with("done"),
    )
    .await;
    let summary = wait_text(&client, "#lookup-summary", |t| t.contains("2 entries")).await;
    assert!(summary.contains(&event_id), "{summary}");
    screenshot(&client, "lookup").await;

    // Gone from the dead letters.
    client
        .goto(&format!("{base}#/dlq/email/mailer"))
        .await
        .unwrap();
    wait_text(&client, "#dead-letter-total", |t| {
        t.starts_with("2 dead letter")
    })
    .await;
    assert!(!client.source().await.unwrap().contains(&event_id));

    // The catalog, with the sensitive field marked.
    client.goto(&format!("{base}#/catalog")).await.unwrap();
    let queued = wait_text(&client, r#"[data-type="email:queued"]"#, |t| {
        t.contains("recipient")
    })
    .await;
    assert!(queued.contains("sensitive"), "{queued}");
    screenshot(&client, "catalog").await;

    client.close().await.unwrap();
    seeded.mailer.take().unwrap().shutdown().await.unwrap();
}
