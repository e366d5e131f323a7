//! What the tests' worker processes (`tests/src/bin/*`) and the tests that start them share: the
//! environment they read, their logs, the "ready, then serve until standard input closes"
//! protocol, and the test side of it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use domain_events::ConsumerStats;
use domain_events_redis::RedisConsumer;
use tokio::io::AsyncReadExt;

/// The environment variable `name`; `Err` says it is not set.
pub fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// The environment variable `name` as a number; `Err` says it is not set or not a number.
pub fn env_number(name: &str) -> Result<u64, String> {
    env_var(name)?
        .parse()
        .map_err(|_| format!("{name} is not a number"))
}

/// A worker's logs, on its standard error (`RUST_LOG` filters; default `warn`).
pub fn init_worker_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints `ready`, runs `consumer` until standard input closes (a graceful shutdown), then prints
/// `handled=<n> duplicates=<m> received=<r>` and returns the counters.
pub async fn serve(consumer: RedisConsumer) -> Result<ConsumerStats, String> {
    let stop = consumer.shutdown_handle();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        stop.trigger();
    });
    println!("ready");
    let _ = std::io::stdout().flush();
    let stats = consumer.run().await.map_err(|e| e.to_string())?;
    println!(
        "handled={} duplicates={} received={}",
        stats.handled, stats.duplicates, stats.received
    );
    Ok(stats)
}

/// Starts `command` (a worker binary, its environment set) with piped standard input and output,
/// and waits until it printed `ready` ([`serve`]).
pub fn spawn_ready(command: &mut Command) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {:?}: {error}", command.get_program()));
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("worker output");
    assert_eq!(line.trim(), "ready", "the worker started");
    child
}
