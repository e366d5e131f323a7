//! [`Connection`]: the one way this crate talks to Redis, a reconnecting connection that sends a
//! command again, once, when it failed only because the connection had died.
//!
//! Redis (or a proxy, or an operator's `CLIENT KILL`) closes connections that sat idle; a restart
//! closes them all. The Redis client's connection manager notices only when the next command fails
//! on the dead socket, then reconnects in the background. Without a second try, the first command
//! after every such drop fails although Redis is healthy: a producer that emits less often than
//! the server's idle timeout would lose almost every event.
//!
//! Sending again is safe for every command of this crate: a dead connection (broken pipe, reset,
//! end of file, refused) means the command never reached Redis or its answer was lost, and each
//! command is repeat-safe (the emit script finds an event's own claim and reports it published;
//! done records and `XACK` are idempotent; a re-sent read delivers entries that are then pending
//! under this consumer and recovered). A response timeout is not retried: Redis may still be
//! running the command, and the caller must be told the outcome is unknown.
//!
//! On Redis Cluster the connection is the `redis` crate's cluster connection, which routes each
//! command to the master of its key's slot and follows `MOVED`/`ASK` redirects itself; a pipeline
//! whose commands span several slots is split per slot first ([`split_pipeline`]).

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use crate::config::RedisConfig;
use crate::error::Error;
use crate::split_pipeline::send_split;

/// A reconnecting connection, to one server or to a cluster, whose commands are sent again once
/// on a fresh connection when the one they went out on had died. Cloning is cheap; clones share
/// the connection.
#[derive(Clone)]
pub(crate) struct Connection {
    link: Link,
}

/// What a [`Connection`] sends its commands through.
#[derive(Clone)]
enum Link {
    /// One server.
    Server(ConnectionManager),
    /// A Redis Cluster, routed by the `redis` crate.
    Cluster(ClusterConnection),
}

impl Connection {
    pub(crate) fn server(manager: ConnectionManager) -> Self {
        Self {
            link: Link::Server(manager),
        }
    }

    pub(crate) fn cluster(connection: ClusterConnection) -> Self {
        Self {
            link: Link::Cluster(connection),
        }
    }

    /// Whether this connection talks to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }

    /// The cluster connection, when this is one (for commands routed by hand, e.g. `SCAN` on
    /// every master).
    pub(crate) fn as_cluster(&self) -> Option<&ClusterConnection> {
        match &self.link {
            Link::Cluster(connection) => Some(connection),
            Link::Server(_) => None,
        }
    }

    /// Sends `cmd` once, without sending it again on a new connection when this one had died: for
    /// commands whose answer is about this connection (`WAIT` counts the replicas that have this
    /// connection's writes; on a fresh connection it would count none of them).
    pub(crate) async fn send_once(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let mut link = self.link.clone();
        link.command(cmd).await
    }

    /// The connection `maker` (e.g. `DeadLetters::new`) makes under `config`, without connecting
    /// yet; fails outside a Tokio runtime, which the connection manager needs.
    pub(crate) fn in_runtime(config: &RedisConfig, maker: &str) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(format!(
                "{maker} must be called inside a Tokio runtime"
            )));
        }
        config.connection().open(None)
    }
}

/// Whether `error` says the connection was dead (so the command may be sent again on a new one),
/// rather than that Redis refused the command or did not answer in time.
pub(crate) fn is_dead_connection(error: &RedisError) -> bool {
    !error.is_timeout() && (error.is_connection_dropped() || error.is_connection_refusal())
}

impl Link {
    async fn command(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Link::Server(manager) => manager.req_packed_command(cmd).await,
            Link::Cluster(cluster) => cluster.req_packed_command(cmd).await,
        }
    }

    async fn commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        match self {
            Link::Server(manager) => manager.req_packed_commands(pipeline, offset, count).await,
            Link::Cluster(cluster) => send_split(cluster, pipeline, offset, count).await,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.link.command(cmd).await {
                Err(error) if is_dead_connection(&error) => {
                    tracing::debug!(error = %error, "connection lost, sending again on a new one");
                    self.link.command(cmd).await
                }
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.link.commands(pipeline, offset, count).await {
                Err(error) if is_dead_connection(&error) => {
                    tracing::debug!(error = %error, "connection lost, sending again on a new one");
                    self.link.commands(pipeline, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Server(manager) => manager.get_db(),
            Link::Cluster(cluster) => cluster.get_db(),
        }
    }
}
