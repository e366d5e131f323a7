//! Cross-crate tests live in `tests/`. The library holds what they share: the Redis and PostgreSQL
//! test harnesses ([`redis_server`], [`redis_cluster`], [`postgres_server`]), the handlers and
//! payloads of the Redis worker processes ([`redis_worker`]) and of the partition tests
//! ([`partitioned`]), the protocol of the worker processes ([`worker_process`]), the passwords the secret-redaction tests use ([`secrets`]), a reader of the
//! Prometheus text format ([`prometheus_text`]), an in-memory OpenTelemetry span exporter
//! ([`otel`]), and a private CA with a server certificate for the TLS tests ([`test_certs`]).

pub mod otel;
pub mod partitioned;
pub mod postgres_server;
pub mod prometheus_text;
pub mod redis_cluster;
pub mod redis_server;
pub mod redis_worker;
pub mod secrets;
pub mod test_certs;
pub mod worker_process;
