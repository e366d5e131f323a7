//! A private `redis-server` per test: started on a free loopback port with its own data folder,
//! stopped, killed and restarted on the same port and folder, killed when dropped.
//!
//! Nothing is skipped: when `redis-server` is not on `PATH` or does not answer `PING` within
//! 10 seconds, the harness panics with the server's output.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer `PING` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server without persistence.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server with `appendonly yes|no`.
    pub fn start_with(appendonly: bool) -> Self {
        Self::start_with_args(appendonly, &[])
    }

    /// A server with `appendonly yes|no` and more command-line arguments (e.g. `--requirepass x`).
    pub fn start_with_args(appendonly: bool, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .expect("a temporary folder for redis-server");
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            if appendonly { "yes" } else { "no" },
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push("--dir".into());
        args.push(dir.path().display().to_string());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut last_output = String::new();
        let mut server = RedisServer {
            port: 0,
            dir,
            args,
            child: None,
        };
        // A free port can be taken by someone else between probing and binding: try a few.
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(output) => last_output = output,
            }
        }
        panic!(
            "redis-server did not start on a free port after 5 tries; its output:\n{last_output}"
        );
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A new connection to it (for inspecting and preparing keys in tests).
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to the test Redis on port {}: {error}",
                    self.port
                )
            })
    }

    /// Zeroes its command statistics (`CONFIG RESETSTAT`), for [`command_calls`](Self::command_calls).
    pub async fn reset_command_stats(&self) {
        let mut conn = self.connection().await;
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut conn)
            .await
            .expect("CONFIG RESETSTAT");
    }

    /// How often `command` (lower case, e.g. `evalsha`) ran since it started or since
    /// [`reset_command_stats`](Self::reset_command_stats), from `INFO commandstats`.
    pub async fn command_calls(&self, command: &str) -> u64 {
        let mut conn = self.connection().await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO commandstats");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().expect("a number of calls"))
    }

    /// Its data folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server with `SIGTERM` (it writes its append-only file and exits), waiting until
    /// it exited; kills it if it takes longer than 10 seconds.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with `SIGKILL` (no chance to write anything).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server with `SIGSTOP`: connections stay open but nothing is answered, as when
    /// a host stalls. [`thaw`](Self::thaw) resumes it.
    pub fn freeze(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// Resumes a server frozen by [`freeze`](Self::freeze) (`SIGCONT`).
    pub fn thaw(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&mut self, signal: libc::c_int) {
        let Some(child) = &self.child else {
            panic!("the test Redis on port {} is not running", self.port);
        };
        let pid = libc::pid_t::try_from(child.id()).expect("a process id");
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} to the test Redis");
    }

    /// How often Redis answered an error of `code` (e.g. `OOM`), from `INFO errorstats`.
    pub async fn error_count(&self, code: &str) -> u64 {
        let mut conn = self.connection().await;
        let info: String = redis::cmd("INFO")
            .arg("errorstats")
            .query_async(&mut conn)
            .await
            .expect("INFO errorstats");
        let prefix = format!("errorstat_{code}:count=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |count| count.trim().parse().expect("a count"))
    }

    /// Stops the server if it runs and starts it again on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        // The port was just released; give the kernel a few tries.
        let mut output = String::new();
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(out) => output = out,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart on port {}; its output:\n{output}",
            self.port
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis-server.log")
    }

    /// Starts the process and waits for `PING`; on failure returns the server's output.
    fn spawn(&mut self) -> Result<(), String> {
        // The log is appended to across restarts: only what this process writes counts.
        let log_start = self.log().len();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the server's log file");
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => panic!(
                "cannot run `redis-server` ({error}); the Redis tests need it on PATH \
                 (Debian/Ubuntu: apt-get install redis-server)"
            ),
        };
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return Err(self.log());
            }
            // A `PING` may be answered by another test's server that got the same port between
            // `free_port` and this one binding it (this one then fails with "Address already in
            // use" and exits): the answer counts only once this process says it is listening.
            if ping(self.port) && self.log().get(log_start..).is_some_and(is_ready) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        panic!(
            "redis-server on port {} did not answer PING within {START_TIMEOUT:?}; its output:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `log` (a server's output since it started) says it listens for connections.
fn is_ready(log: &str) -> bool {
    log.contains("Ready to accept connections")
}

/// How many entries of `stream` are pending in `group` (`XPENDING`), on a test's own connection.
pub async fn pending(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> u64 {
    let reply: redis::streams::StreamPendingReply =
        redis::AsyncCommands::xpending(conn, stream, group)
            .await
            .expect("XPENDING");
    reply.count() as u64
}

/// A port that was free a moment ago on 127.0.0.1 (the PostgreSQL harness uses it too).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Whether a Redis server on `port` answers `PING` and has loaded its data (`-NOAUTH` counts as an
/// answer: the server is up and asks for a password).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) if n > 0 => buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_whose_port_is_taken_does_not_count_as_started_when_another_answers() {
        let first = RedisServer::start();
        // A second server on the same port fails to bind and exits, while `first` answers PING
        // there: that must not pass for the second one having started.
        let mut second = RedisServer {
            port: first.port(),
            dir: tempfile::Builder::new()
                .prefix("redis-test-")
                .tempdir()
                .expect("a temporary folder for redis-server"),
            args: ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            child: None,
        };
        second.args.push("--dir".into());
        second.args.push(second.dir.path().display().to_string());
        let output = second.spawn().expect_err("the port is taken");
        assert!(output.contains("Address already in use"), "{output}");
        assert!(!second.is_running());
    }

    #[test]
    fn only_a_server_that_says_it_listens_is_ready() {
        assert!(is_ready(
            "1:M 03 Dec 2026 18:41:34.102 * Ready to accept connections tcp"
        ));
        assert!(!is_ready(
            "1:M 03 Dec 2026 18:41:34.102 # Failed listening on port 6379 (TCP), aborting."
        ));
    }
}
