//! The outbox over TLS to PostgreSQL: a server with `ssl = on` and a certificate of a private CA
//! (both started and made by the test), reached with `sslmode=require` and with `sslmode=verify-full`
//! and the CA (`sslrootcert`); an event is written in a transaction and relayed. Without the CA,
//! `verify-full` refuses the server.

use std::time::Duration;

use domain_events::MemoryBus;
use domain_events_outbox::{Outbox, OutboxTable, Relay, migrate};
use domain_events_tests::postgres_server::PostgresServer;
use domain_events_tests::redis_worker::{family_completed, init_tracing};
use domain_events_tests::test_certs::TestCerts;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A bound against hanging, not a performance assertion.
const WAIT: Duration = Duration::from_secs(60);

async fn pool(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// Whether the session of `pool` runs over TLS, as the server sees it.
async fn over_tls(pool: &PgPool) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_written_and_relayed_over_tls_with_the_servers_certificate_verified() {
    init_tracing();
    let certs = TestCerts::new();
    let pg = PostgresServer::start_tls(&certs.server_cert(), &certs.server_key());
    let ca = certs.ca_cert().display().to_string();

    // Encrypted, the certificate not checked.
    let required = pool(&format!("{}?sslmode=require", pg.url()))
        .await
        .expect("connects with sslmode=require");
    assert!(over_tls(&required).await);
    // The server accepts plain connections too: the default `prefer` still chooses TLS.
    let preferred = pool(&pg.url()).await.unwrap();
    assert!(over_tls(&preferred).await);
    let plain = pool(&format!("{}?sslmode=disable", pg.url()))
        .await
        .unwrap();
    assert!(!over_tls(&plain).await);

    // Encrypted, the certificate checked against the private CA and the host name.
    let url = format!("{}?sslmode=verify-full&sslrootcert={ca}", pg.url());
    let verified = pool(&url)
        .await
        .expect("connects with verify-full and the CA");
    assert!(over_tls(&verified).await);

    migrate(&verified, &OutboxTable::default()).await.unwrap();
    let bus = MemoryBus::new();
    let mut subscription = bus.subscribe(domain_events::Filter::All);
    // The relay on its own pool over TLS, as a relay process has (it LISTENs on one of its
    // connections).
    let relay = Relay::builder(pool(&url).await.unwrap(), bus.clone())
        .build()
        .spawn();
    let outbox = Outbox::new("svc");
    let mut tx = required.begin().await.unwrap();
    let written = outbox
        .emit(&mut tx, family_completed("var-tls", 1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let delivered = tokio::time::timeout(WAIT, subscription.recv())
        .await
        .expect("relayed")
        .unwrap();
    assert_eq!(delivered.envelope().unwrap().event_id, written.event_id);
    relay.shutdown().await;

    // Without the CA, the server's certificate is from an unknown issuer.
    let error = pool(&format!("{}?sslmode=verify-full", pg.url()))
        .await
        .expect_err("an unknown CA is refused");
    let shown = format!("{error} {error:?}");
    assert!(
        shown.to_lowercase().contains("certificate"),
        "not a certificate error: {shown}"
    );
}
