//! What the command-line tests against a real Redis share: a private `redis-server`, a schema
//! folder, and running the `domain-events` binary with a time limit.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use domain_events_tests::redis_server::RedisServer;
use tempfile::TempDir;

/// A `shop` category with one event, `shop:order_placed` (`orderId`, `total`).
pub const SHOP: &str = r#"category = "shop"
correlation = "orderId"

[events.order_placed]
idempotency_key = "order_placed:{orderId}"

[events.order_placed.fields]
orderId = { type = "string", min_length = 1 }
total   = "uint"
"#;

/// How long one run of the binary may take before it is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A private Redis and a folder holding `schemas/shop.toml`.
pub struct Setup {
    pub redis: RedisServer,
    pub dir: TempDir,
}

impl Setup {
    /// Starts Redis and writes `schema` as `schemas/shop.toml`.
    pub fn new(schema: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let schemas = dir.path().join("schemas");
        std::fs::create_dir(&schemas).expect("the schema folder");
        std::fs::write(schemas.join("shop.toml"), schema).expect("the schema file");
        Setup {
            redis: RedisServer::start(),
            dir,
        }
    }

    /// Like [`new`](Self::new), with more `redis-server` arguments (e.g. `--requirepass x`).
    pub fn with_redis_args(schema: &str, redis_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let schemas = dir.path().join("schemas");
        std::fs::create_dir(&schemas).expect("the schema folder");
        std::fs::write(schemas.join("shop.toml"), schema).expect("the schema file");
        Setup {
            redis: RedisServer::start_with_args(false, redis_args),
            dir,
        }
    }

    /// The binary with `args` in the schema folder's parent (so `--schemas` defaults to it) and
    /// `--redis` from the environment, as a user would set it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_domain-events"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("DOMAIN_EVENTS_REDIS_URL", self.redis.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the binary with `args` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        finish(self.command(args).spawn().expect("the binary starts"))
    }

    /// Runs the binary with `args` to its end, at the Redis `url` given in the environment
    /// (`from_env`) or as `--redis URL`.
    pub fn run_at(&self, args: &[&str], url: &str, from_env: bool) -> Output {
        let mut command = self.command(args);
        if from_env {
            command.env("DOMAIN_EVENTS_REDIS_URL", url);
        } else {
            command.arg("--redis").arg(url);
        }
        finish(command.spawn().expect("the binary starts"))
    }

    /// Appends an entry whose `event` is not JSON to `stream`, as a broken producer would; returns
    /// its id.
    pub fn add_not_json(&self, stream: &str) -> String {
        redis::cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("type")
            .arg("shop:order_placed")
            .arg("event")
            .arg("not json")
            .query(&mut self.conn())
            .expect("XADD")
    }

    /// The length of the stream `key`.
    pub fn xlen(&self, key: &str) -> i64 {
        redis::cmd("XLEN")
            .arg(key)
            .query(&mut self.conn())
            .expect("XLEN")
    }

    /// A connection to the test Redis.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .and_then(|client| client.get_connection())
            .expect("a connection to the test Redis")
    }
}

/// Waits for `child` to exit (killing it after [`RUN_LIMIT`]) and collects its output.
pub fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            if let Some(mut out) = child.stdout.take() {
                out.read_to_end(&mut stdout).expect("stdout");
            }
            if let Some(mut err) = child.stderr.take() {
                err.read_to_end(&mut stderr).expect("stderr");
            }
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("the killed child's output");
            panic!(
                "the binary did not exit within {RUN_LIMIT:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the run printed.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// The JSON lines of a successful run; fails on an unsuccessful one.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// What the run printed as errors.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
