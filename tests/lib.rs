//! Cross-crate tests live in `tests/`. The library holds what they share: the Redis test harness
//! ([`redis_server`]) and the handlers and payloads of the Redis worker processes
//! ([`redis_worker`]), the passwords the secret-redaction tests use ([`secrets`]), and a reader
//! of the Prometheus text format ([`prometheus_text`]).

pub mod prometheus_text;
pub mod redis_server;
pub mod redis_worker;
pub mod secrets;
