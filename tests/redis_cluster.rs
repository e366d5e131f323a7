//! A private Redis Cluster per test: six `redis-server --cluster-enabled yes` on free loopback
//! ports (each port below 55535, so its cluster bus port, 10000 higher, exists and was free too),
//! joined by `redis-cli --cluster create ... --cluster-replicas 1` into three masters with one
//! replica each, ready once every node reports `cluster_state:ok`; all killed when dropped.
//!
//! Nothing is skipped: when `redis-server` or `redis-cli` is missing, a node does not start, or
//! the cluster is not ready within 30 seconds, the harness panics with the output it got.
//!
//! Faults for tests: [`RedisCluster::kill`] SIGKILLs a node, [`RedisCluster::wait_failover`] waits
//! until its replica took over, [`RedisCluster::restart`] brings it back (as a replica of the
//! new master), and [`RedisCluster::reshard`] moves slots between masters with
//! `redis-cli --cluster reshard`. Nodes run with `cluster-node-timeout` 1000 ms, so a replica
//! takes over a dead master within a few seconds.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Nodes of the cluster: three masters, three replicas.
const NODES: usize = 6;
/// How long a node may take to listen after it was started.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the cluster may take to be ready on every node after `--cluster create`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Cluster bus ports are the node port plus this.
const BUS_OFFSET: u16 = 10_000;
/// `cluster-node-timeout` of every node: how long a master may be unreachable before its
/// replica starts a failover.
const NODE_TIMEOUT_MS: u32 = 1000;
/// How long a failover, a restarted node's rejoining or a reshard may take.
const FAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running local Redis Cluster owned by a test.
#[derive(Debug)]
pub struct RedisCluster {
    dir: TempDir,
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    port: u16,
    child: Child,
}

impl RedisCluster {
    /// Six nodes, three masters with a replica each, every slot served and every node agreeing.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redis-cluster-test-")
            .tempdir()
            .expect("a temporary folder for the cluster");
        let mut cluster = RedisCluster {
            dir,
            nodes: Vec::with_capacity(NODES),
        };
        while cluster.nodes.len() < NODES {
            let node = cluster.start_node();
            cluster.nodes.push(node);
        }
        cluster.create();
        cluster.wait_ready();
        cluster
    }

    /// The ports of the nodes (127.0.0.1).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// `redis+cluster://127.0.0.1:<port>,...` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of the master that serves `key`'s slot now.
    pub fn master_of(&self, key: &str) -> u16 {
        let mut conn = self.node_connection(self.live_port());
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .expect("CLUSTER KEYSLOT");
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        for range in ranges {
            let redis::Value::Array(fields) = range else {
                continue;
            };
            let (Some(redis::Value::Int(start)), Some(redis::Value::Int(end))) =
                (fields.first(), fields.get(1))
            else {
                continue;
            };
            if (*start..=*end).contains(&i64::from(slot))
                && let Some(redis::Value::Array(master)) = fields.get(2)
                && let Some(redis::Value::Int(port)) = master.get(1)
            {
                return u16::try_from(*port).expect("a port");
            }
        }
        panic!("no master serves slot {slot} of {key}");
    }

    /// A plain connection to one node (commands on keys of other nodes get `MOVED`).
    pub fn node_connection(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .expect("a valid URL")
            .get_connection()
            .unwrap_or_else(|error| panic!("cannot connect to cluster node {port}: {error}"))
    }

    /// A cluster connection for inspecting keys in tests.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect();
        redis::cluster::ClusterClient::new(seeds)
            .expect("cluster seeds")
            .get_async_connection()
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the test cluster: {error}"))
    }

    /// The ports of the masters now, each with the port of its replica (if it has one up).
    pub fn masters(&self) -> Vec<(u16, Option<u16>)> {
        let nodes = self.cluster_nodes(self.live_port());
        let mut masters: Vec<(u16, Option<u16>)> = Vec::new();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 8
                && fields[2].contains("master")
                && !fields[2].contains("fail")
                && fields.len() > 8
            {
                let replica = nodes.lines().find_map(|other| {
                    let other: Vec<&str> = other.split_whitespace().collect();
                    (other.len() >= 8
                        && other[3] == fields[0]
                        && !other[2].contains("fail")
                        && other[7] == "connected")
                        .then(|| port_of(other[1]))
                });
                masters.push((port_of(fields[1]), replica));
            }
        }
        masters.sort_unstable();
        masters
    }

    /// SIGKILLs the node on `port` (a master: its replica takes over after the node timeout).
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"));
        node.child.kill().expect("SIGKILL the node");
        node.child.wait().expect("reap the node");
    }

    /// Waits until the live nodes agree that `dead` failed, no slot is served by it and every
    /// live node reports `cluster_state:ok`; the port of the master that took over its slots.
    pub fn wait_failover(&self, dead: u16, slot_key: &str) -> u16 {
        let deadline = Instant::now() + FAULT_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let live: Vec<u16> = self.ports().into_iter().filter(|p| *p != dead).collect();
            let agreed = live.iter().all(|&port| {
                let info = cluster_info(port);
                let nodes = self.try_cluster_nodes(port).unwrap_or_default();
                let dead_failed = nodes.lines().any(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.len() >= 3
                        && port_of(fields[1]) == dead
                        && fields[2].contains("fail")
                        && !fields[2].contains("fail?")
                });
                let ok = info.contains("cluster_state:ok") && dead_failed;
                if !ok {
                    last = format!("node {port}:\n{info}\n{nodes}");
                }
                ok
            });
            if agreed {
                let master = self.master_of(slot_key);
                if master != dead {
                    return master;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no failover of node {dead} within {FAULT_TIMEOUT:?}; last state of a node not \
             agreeing: {last}\nnode logs:\n{}",
            self.logs()
        );
    }

    /// Starts the node on `port` again (killed before) from its own `nodes.conf`; it rejoins as
    /// a replica of the master that replaced it. Waits until it is a replica with its link to
    /// the master up and every node reports `cluster_state:ok`.
    pub fn restart(&mut self, port: u16) {
        let index = self
            .nodes
            .iter()
            .position(|node| node.port == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"));
        // The log of the first run is kept aside, so the new one says when this run listens.
        let log_path = self.node_dir(port).join("redis-server.log");
        let _ = std::fs::rename(
            &log_path,
            self.node_dir(port).join("redis-server.before-restart.log"),
        );
        let mut node = self.spawn_node(port);
        if let Err(output) = wait_listening(&mut node, &log_path) {
            panic!("the restarted node {port} did not listen:\n{output}");
        }
        self.nodes[index] = node;
        let deadline = Instant::now() + FAULT_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let replication = replication_info(port);
            let rejoined = replication.contains("role:slave")
                && replication.contains("master_link_status:up")
                && self
                    .ports()
                    .into_iter()
                    .all(|port| cluster_info(port).contains("cluster_state:ok"));
            if rejoined {
                return;
            }
            last = replication;
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the restarted node {port} did not rejoin as a replica within {FAULT_TIMEOUT:?}: \
             {last}\nnode logs:\n{}",
            self.logs()
        );
    }

    /// Moves `slots` hash slots from the master on `from` to the master on `to` with
    /// `redis-cli --cluster reshard` (keys migrated with `MIGRATE`, clients redirected with
    /// `ASK`/`MOVED` meanwhile), then waits until every node reports `cluster_state:ok`.
    /// `redis-cli` takes the source's slots in ascending order.
    pub fn reshard(&self, from: u16, to: u16, slots: usize) {
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("reshard")
            .arg(format!("127.0.0.1:{from}"))
            .arg("--cluster-from")
            .arg(self.node_id(from))
            .arg("--cluster-to")
            .arg(self.node_id(to))
            .arg("--cluster-slots")
            .arg(slots.to_string())
            .args(["--cluster-yes", "--cluster-pipeline", "100"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run `redis-cli` ({error})"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !stdout.contains("[ERR]"),
            "redis-cli --cluster reshard failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        self.wait_ready();
    }

    /// The slots the master on `port` serves now, in ascending order.
    pub fn slots_of(&self, port: u16) -> Vec<u16> {
        let mut conn = self.node_connection(port);
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        let mut slots = Vec::new();
        for range in ranges {
            let redis::Value::Array(fields) = range else {
                continue;
            };
            if let (
                Some(redis::Value::Int(start)),
                Some(redis::Value::Int(end)),
                Some(redis::Value::Array(master)),
            ) = (fields.first(), fields.get(1), fields.get(2))
                && master.get(1) == Some(&redis::Value::Int(i64::from(port)))
            {
                slots.extend(
                    (*start..=*end).map(|slot| u16::try_from(slot).expect("a slot number")),
                );
            }
        }
        slots.sort_unstable();
        slots
    }

    /// The hash slot of `key`.
    pub fn slot_of(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.node_connection(self.live_port()))
            .expect("CLUSTER KEYSLOT")
    }

    /// The cluster node id of the node on `port`.
    fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.node_connection(port))
            .expect("CLUSTER MYID")
    }

    /// The port of a node that is up.
    fn live_port(&self) -> u16 {
        self.ports()
            .into_iter()
            .find(|&port| self.try_cluster_nodes(port).is_some())
            .expect("a live cluster node")
    }

    /// `CLUSTER NODES` as the node on `port` sees it.
    fn cluster_nodes(&self, port: u16) -> String {
        self.try_cluster_nodes(port)
            .unwrap_or_else(|| panic!("CLUSTER NODES on {port} failed"))
    }

    fn try_cluster_nodes(&self, port: u16) -> Option<String> {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|client| client.get_connection())
            .and_then(|mut conn| redis::cmd("CLUSTER").arg("NODES").query(&mut conn))
            .ok()
    }

    /// The folder of the node on `port`: its `nodes.conf` and log.
    fn node_dir(&self, port: u16) -> PathBuf {
        self.dir.path().join(port.to_string())
    }

    /// Starts `redis-server` for a cluster node on `port`, with its folder (and `nodes.conf`,
    /// when it ran before); its output appended to its log.
    fn spawn_node(&self, port: u16) -> Node {
        let node_dir = self.node_dir(port);
        std::fs::create_dir_all(&node_dir).expect("a node folder");
        let log_path = node_dir.join("redis-server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("the node's log file");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            // Replicas synchronize at once, not after the default 5 s of waiting for others.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--port")
            .arg(port.to_string())
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout"])
            .arg(NODE_TIMEOUT_MS.to_string())
            .arg("--cluster-config-file")
            .arg(node_dir.join("nodes.conf"))
            .arg("--dir")
            .arg(&node_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `redis-server` ({error}); the Redis Cluster tests need it on \
                     PATH (Debian/Ubuntu: apt-get install redis-server)"
                )
            });
        Node { port, child }
    }

    /// Starts one node on a free port pair (node and bus); tries a few pairs, as another process
    /// may take a port between probing and binding.
    fn start_node(&self) -> Node {
        let mut last_output = String::new();
        for _ in 0..5 {
            let port = free_port_pair();
            let log_path = self.node_dir(port).join("redis-server.log");
            let mut node = self.spawn_node(port);
            match wait_listening(&mut node, &log_path) {
                Ok(()) => return node,
                Err(output) => last_output = output,
            }
        }
        panic!(
            "a cluster node did not start on a free port after 5 tries; its output:\n{last_output}"
        );
    }

    /// `redis-cli --cluster create` over every node, one replica per master.
    fn create(&self) {
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in self.ports() {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run `redis-cli` ({error}); the Redis Cluster tests need it on PATH")
            });
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("All 16384 slots covered"),
            "redis-cli --cluster create failed ({}):\n{stdout}\n{}\nnode logs:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
    }

    /// Waits until every node reports `cluster_state:ok`, knows all six nodes and sees every slot
    /// served.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let ready = self.ports().into_iter().all(|port| {
                let info = cluster_info(port);
                let ok = info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{NODES}"))
                    && info.contains("cluster_slots_ok:16384");
                if !ok {
                    last = format!("node {port}:\n{info}");
                }
                ok
            });
            // A replica takes over only once it synchronized with its master.
            let synced = self
                .ports()
                .into_iter()
                .filter(|&port| {
                    let replication = replication_info(port);
                    replication.contains("role:slave")
                        && replication.contains("master_link_status:up")
                })
                .count();
            if !ready {
            } else if synced == NODES / 2 {
                return;
            } else {
                last = format!("{synced} replicas synchronized with their master");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the test cluster was not ready within {READY_TIMEOUT:?}; last CLUSTER INFO of a node \
             not ready: {last}\nnode logs:\n{}",
            self.logs()
        );
    }

    /// Every node's log, for failure messages.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let path: PathBuf = self
                    .dir
                    .path()
                    .join(node.port.to_string())
                    .join("redis-server.log");
                format!(
                    "--- node {}:\n{}",
                    node.port,
                    std::fs::read_to_string(path).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// `CLUSTER INFO` of the node on `port`; empty when it does not answer.
fn cluster_info(port: u16) -> String {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| redis::cmd("CLUSTER").arg("INFO").query(&mut conn))
        .unwrap_or_default()
}

/// `INFO replication` of the node on `port`; empty when it does not answer.
fn replication_info(port: u16) -> String {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| redis::cmd("INFO").arg("replication").query(&mut conn))
        .unwrap_or_default()
}

/// The port of a `CLUSTER NODES` address, `127.0.0.1:<port>@<bus port>`.
fn port_of(address: &str) -> u16 {
    address
        .split(['@', ','])
        .next()
        .and_then(|address| address.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the node address `{address}`"))
}

/// Waits until `node` says it listens; on failure (it exited, e.g. its port was taken) returns
/// its output.
fn wait_listening(node: &mut Node, log_path: &std::path::Path) -> Result<(), String> {
    let deadline = Instant::now() + NODE_START_TIMEOUT;
    while Instant::now() < deadline {
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        if !matches!(node.child.try_wait(), Ok(None)) {
            return Err(log);
        }
        if log.contains("Ready to accept connections") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = node.child.kill();
    let _ = node.child.wait();
    panic!(
        "cluster node on port {} did not listen within {NODE_START_TIMEOUT:?}; its output:\n{}",
        node.port,
        std::fs::read_to_string(log_path).unwrap_or_default()
    );
}

/// A port below 55535 that was free a moment ago on 127.0.0.1, with its bus port (10000 higher)
/// free too.
fn free_port_pair() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        if port < 55_535 && TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free pair of loopback ports (node and bus) found");
}
