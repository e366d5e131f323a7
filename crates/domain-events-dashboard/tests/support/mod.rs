//! What the dashboard tests share: a private `redis-server` seeded by the runtime itself (an
//! emitter, consumers that handle or dead-letter), and a dashboard served on a free loopback port.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain_events::{Email, Emitter, HandlerError, Handlers, Timestamp};
use domain_events_catalog::{
    DomainEvent, EmailQueuedEvent, EmailQueuedPayload, ImageFamilyCompletedEvent,
};
use domain_events_dashboard::{Dashboard, DashboardBuilder};
use domain_events_redis::{
    DeadLetters, Inspector, RedisConfig, RedisConsumerHandle, RedisTransport,
};
use domain_events_schema::Catalog;
use domain_events_tests::redis_server::RedisServer;
use domain_events_tests::redis_worker::{eventually, exact_consumer, family_completed};

pub const WAIT: Duration = Duration::from_secs(30);
pub const PREFIX: &str = "dash";
/// The recipient of the seeded emails: sensitive, never to be shown.
pub const RECIPIENT: &str = "secret-recipient@example.com";

/// A seeded Redis: three image events handled by group `notifications`; two email events and an
/// entry that is no JSON, dead-lettered by group `mailer`, whose consumer keeps running and
/// handles what is replayed.
pub struct Seeded {
    pub server: RedisServer,
    pub config: RedisConfig,
    /// The emitted emails, by event id and idempotency key.
    pub emails: Vec<(String, String)>,
    /// The image events, by event id and idempotency key.
    pub images: Vec<(String, String)>,
    pub mailer: Option<RedisConsumerHandle>,
}

pub fn email(index: u32) -> EmailQueuedPayload {
    EmailQueuedPayload {
        email_log_id: format!("log-{index}"),
        template_id: "welcome".into(),
        recipient: Email::parse(RECIPIENT).unwrap(),
        queued_at: Timestamp::now(),
    }
}

pub async fn seed() -> Seeded {
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().key_prefix(PREFIX);
    let emitter = Emitter::new(
        "dashboard-test",
        RedisTransport::new(config.clone()).unwrap(),
    );
    let mut images = Vec::new();
    for index in 1..=3 {
        let emitted = emitter.emit(family_completed("v", index)).await.unwrap();
        images.push((
            emitted.event_id.to_string(),
            emitted.idempotency_key.clone(),
        ));
    }
    let mut emails = Vec::new();
    for index in 1..=2 {
        let emitted = emitter.emit(email(index)).await.unwrap();
        emails.push((
            emitted.event_id.to_string(),
            emitted.idempotency_key.clone(),
        ));
    }
    let mut conn = server.connection().await;
    let _: String = redis::AsyncCommands::xadd(
        &mut conn,
        format!("{PREFIX}:{{email}}"),
        "*",
        &[("type", "email:queued"), ("event", "not json")],
    )
    .await
    .unwrap();

    // `notifications` handles every image event.
    let fine = Handlers::new()
        .on(|_: ImageFamilyCompletedEvent| async { Ok(()) })
        .knowing::<DomainEvent>();
    let notifications = exact_consumer(config.clone(), "notifications", fine)
        .build()
        .unwrap()
        .spawn();
    let inspector = Inspector::new(config.clone()).unwrap();
    eventually("notifications handled the images", WAIT, || async {
        let status = inspector.status().await.unwrap();
        status.streams.iter().any(|s| {
            s.category == "image"
                && s.groups
                    .iter()
                    .any(|g| g.group == "notifications" && g.lag == Some(0) && g.pending == 0)
        })
    })
    .await;
    notifications.shutdown().await.unwrap();

    // `mailer` fails until told otherwise: the two emails and the poison entry are dead letters.
    let broken = Arc::new(AtomicBool::new(true));
    let mailer = Handlers::new()
        .on({
            let broken = broken.clone();
            move |_: EmailQueuedEvent| {
                let broken = broken.load(Ordering::SeqCst);
                async move {
                    if broken {
                        Err(HandlerError::msg("the mail provider is down"))
                    } else {
                        Ok(())
                    }
                }
            }
        })
        .knowing::<DomainEvent>();
    let mailer = exact_consumer(config.clone(), "mailer", mailer)
        .build()
        .unwrap()
        .spawn();
    let letters = DeadLetters::new(config.clone()).unwrap();
    eventually("mailer dead-lettered the emails", WAIT, || async {
        letters.len("email", "mailer").await.unwrap() == 3
    })
    .await;
    broken.store(false, Ordering::SeqCst);
    Seeded {
        server,
        config,
        emails,
        images,
        mailer: Some(mailer),
    }
}

/// The repository's schema folder.
pub fn catalog() -> Catalog {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    Catalog::load(&dir).unwrap()
}

/// `dashboard` served on a free loopback port; its base URL, `http://127.0.0.1:PORT/`.
pub async fn serve(dashboard: Dashboard) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(domain_events_dashboard::serve(
        listener,
        dashboard,
        std::future::pending(),
    ));
    format!("http://{addr}/")
}

/// A dashboard of `seeded` with the repository's catalog, fast throughput samples, and `more`.
pub async fn dashboard(
    seeded: &Seeded,
    more: impl FnOnce(DashboardBuilder) -> DashboardBuilder,
) -> String {
    let builder = Dashboard::builder(seeded.config.clone())
        .catalog(catalog())
        .sample_every(Duration::from_millis(200));
    serve(more(builder).build().unwrap()).await
}
