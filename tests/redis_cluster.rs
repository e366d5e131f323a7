//! A private Redis Cluster per test: six `redis-server --cluster-enabled yes` on free loopback
//! ports (each port below 55535, so its cluster bus port, 10000 higher, exists and was free too),
//! joined by `redis-cli --cluster create ... --cluster-replicas 1` into three masters with one
//! replica each, ready once every node reports `cluster_state:ok`; all killed when dropped.
//!
//! Nothing is skipped: when `redis-server` or `redis-cli` is missing, a node does not start, or
//! the cluster is not ready within 30 seconds, the harness panics with the output it got.

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
        let mut conn = self.node_connection(self.nodes[0].port);
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

    /// Starts one node on a free port pair (node and bus); tries a few pairs, as another process
    /// may take a port between probing and binding.
    fn start_node(&self) -> Node {
        let mut last_output = String::new();
        for _ in 0..5 {
            let port = free_port_pair();
            let node_dir = self.dir.path().join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("a node folder");
            let log_path = node_dir.join("redis-server.log");
            let log = File::create(&log_path).expect("the node's log file");
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--port")
                .arg(port.to_string())
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
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
            let mut node = Node { port, child };
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
                let info: String = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .and_then(|client| client.get_connection())
                    .and_then(|mut conn| redis::cmd("CLUSTER").arg("INFO").query(&mut conn))
                    .unwrap_or_default();
                let ok = info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{NODES}"))
                    && info.contains("cluster_slots_ok:16384");
                if !ok {
                    last = format!("node {port}:\n{info}");
                }
                ok
            });
            if ready {
                return;
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
