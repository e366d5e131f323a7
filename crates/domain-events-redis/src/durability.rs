//! Opt-in durability of emits: after the emit script wrote, `WAIT <replicas> <timeout>` on the
//! master that holds the written keys, so an emit returns only once its write reached that many
//! replicas ([`RedisConfig::wait_for_replicas`]).
//!
//! `WAIT` cannot run inside a Lua script, so it follows the script calls as a command of its own:
//! on one server on the transport's connection; on a Redis Cluster routed by the `redis` crate to
//! the master of each slot written (one `WAIT` per slot, sent at once). `WAIT` counts the replicas
//! that acknowledged the writes of the connection it runs on, which is the one the writes went
//! out on (the cluster client keeps one connection per node).

use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Value};

use crate::config::RedisConfig;
use crate::connection::Connection;
use crate::error::Error;

/// How many replicas must have acknowledged an emit's write before the emit returns, and how long
/// to wait for them ([`RedisConfig::wait_for_replicas`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// Replicas that must acknowledge the write (at least 1).
    pub replicas: u32,
    /// How long `WAIT` may block (at least one millisecond; below the response timeout).
    pub timeout: Duration,
}

impl ReplicaWait {
    /// `WAIT <replicas> <timeout ms>`.
    fn command(&self) -> Cmd {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.replicas).arg(
            u64::try_from(self.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        cmd
    }

    /// Checks the setting against the connection's response timeout: `WAIT` must be answered
    /// before the client gives up on it.
    pub(crate) fn check(&self, config: &RedisConfig) -> Result<(), Error> {
        let response = config.connection().response_timeout_value();
        if self.replicas == 0 || self.timeout.is_zero() || self.timeout >= response {
            return Err(Error::Config(format!(
                "wait_for_replicas({}, {:?}) needs at least one replica and a timeout above zero \
                 and below the response timeout ({response:?})",
                self.replicas, self.timeout
            )));
        }
        Ok(())
    }
}

/// Confirms the writes of the events whose `results` are `Ok` with the configured `WAIT`, when
/// one is configured: `key_of(i)` is the key event `i` was written to (its stream). The results of
/// events whose `WAIT` counted too few replicas become [`Error::NotReplicated`]; of those whose
/// `WAIT` got no answer (the connection broke), [`Error::Timeout`] (the write may have happened);
/// of those whose `WAIT` Redis refused, that error. The others are returned as they were.
pub(crate) async fn confirm<T, K: AsRef<[u8]>>(
    conn: &Connection,
    config: &RedisConfig,
    mut results: Vec<Result<T, Error>>,
    key_of: impl Fn(usize) -> K,
) -> Vec<Result<T, Error>> {
    let Some(wait) = config.replica_wait() else {
        return results;
    };
    // The events of each slot written (one group on a single server).
    let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
    for (index, result) in results.iter().enumerate() {
        if result.is_err() {
            continue;
        }
        let slot = conn.is_cluster().then(|| Slot::for_key(key_of(index)));
        match groups.iter_mut().find(|(group, _)| *group == slot) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((slot, vec![index])),
        }
    }
    let answers = join_all(
        groups
            .iter()
            .map(|(slot, _)| wait_on(conn, config, wait, *slot)),
    )
    .await;
    for ((_, indices), answer) in groups.iter().zip(answers) {
        if let Err(error) = answer {
            for &index in indices {
                results[index] = Err(error.clone());
            }
        }
    }
    results
}

/// `WAIT` on the server, or on the master of `slot`; an error unless enough replicas answered.
async fn wait_on(
    conn: &Connection,
    config: &RedisConfig,
    wait: ReplicaWait,
    slot: Option<Slot>,
) -> Result<(), Error> {
    let cmd = wait.command();
    let reply = match (slot, conn.as_cluster()) {
        (Some(slot), Some(cluster)) => {
            let route = Route::with_slot(slot, SlotAddr::Master);
            cluster
                .clone()
                .route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
        }
        _ => conn.send_once(&cmd).await,
    }
    .map_err(|error| match config.error(&error) {
        // The write went out before: its outcome is unknown, not "not sent".
        Error::Unavailable { url, message } => Error::Timeout {
            url,
            message: format!("no answer to WAIT after the write: {message}"),
        },
        other => other,
    })?;
    let reached = match reply {
        Value::Int(count) => u32::try_from(count).unwrap_or(0),
        other => return Err(Error::Protocol(format!("WAIT answered {other:?}"))),
    };
    if reached < wait.replicas {
        tracing::warn!(reached, wanted = wait.replicas, timeout = ?wait.timeout,
            "an emit's write did not reach enough replicas in time");
        return Err(Error::NotReplicated {
            url: config.redacted_url().to_owned(),
            reached,
            wanted: wait.replicas,
            timeout: wait.timeout,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_command_and_its_limits() {
        let wait = ReplicaWait {
            replicas: 2,
            timeout: Duration::from_millis(250),
        };
        let args: Vec<Vec<u8>> = wait
            .command()
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(args, [&b"WAIT"[..], b"2", b"250"]);
        let config = RedisConfig::new("redis://cache").unwrap();
        assert!(wait.check(&config).is_ok());
        for bad in [
            ReplicaWait {
                replicas: 0,
                timeout: Duration::from_millis(250),
            },
            ReplicaWait {
                replicas: 1,
                timeout: Duration::ZERO,
            },
            ReplicaWait {
                replicas: 1,
                timeout: config.connection().response_timeout_value(),
            },
        ] {
            let error = bad.check(&config).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{error:?}");
        }
    }
}
