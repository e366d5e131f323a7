//! A private PostgreSQL server per test: `initdb` into a temporary folder, `pg_ctl start` on a free
//! loopback port with its socket in that folder, crashed (`pg_ctl stop -m immediate`), stopped and
//! restarted on the same port and data, and removed when dropped.
//!
//! `initdb` refuses to run as root: as root, every PostgreSQL program runs as the `postgres` user
//! (`runuser -u postgres`, which the Debian package creates) in a folder owned by it. The
//! programs are looked up on `PATH`, then in `/usr/lib/postgresql/<newest>/bin` (where Debian
//! installs them). Nothing is skipped: a server that cannot start panics with its output.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::redis_server::free_port;

/// A PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: TempDir,
    bin: PathBuf,
    durable: bool,
    tls: bool,
    running: bool,
}

impl PostgresServer {
    /// A server for tests: `fsync` off (a crash of the machine may lose data, which no test
    /// needs; a crash of the server loses nothing that was committed).
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// A server for tests (as [`start`](Self::start)) that also accepts TLS (`ssl = on`),
    /// presenting the certificate `cert` with its key `key` (PEM files, copied into its data
    /// folder). Clients choose TLS or not with their `sslmode`.
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        Self::start_with(false, Some((cert, key)))
    }

    /// A server with PostgreSQL's default durability (`fsync`, `synchronous_commit` on), for
    /// measurements.
    pub fn start_durable() -> Self {
        Self::start_with(true, None)
    }

    fn start_with(durable: bool, tls: Option<(&Path, &Path)>) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("postgres-test-")
            .tempdir()
            .expect("a temporary folder for PostgreSQL");
        give_to_postgres(dir.path());
        let data = dir.path().join("data");
        let initdb = run_as_postgres(
            &bin.join("initdb"),
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("-A"),
                OsStr::new("trust"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
                OsStr::new("--locale=C"),
                OsStr::new("--no-sync"),
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        if let Some((cert, key)) = tls {
            install_tls_files(&data, cert, key);
        }
        let mut server = PostgresServer {
            port: 0,
            dir,
            bin,
            durable,
            tls: tls.is_some(),
            running: false,
        };
        // A free port can be taken by someone else between probing and binding: try a few.
        let mut output = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => return server,
                Err(out) => output = out,
            }
        }
        panic!("PostgreSQL did not start on a free port after 5 tries:\n{output}");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication: no password).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL with a password in it (`trust` authentication ignores it), for tests that check a
    /// password is never printed.
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Its folder (data in `data/`, the log in `server.log`, the socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Crashes the server: every process stops at once, without a checkpoint
    /// (`pg_ctl stop -m immediate`); the next start recovers from the write-ahead log.
    pub fn kill(&mut self) {
        self.pg_ctl_stop("immediate");
    }

    /// Stops the server gracefully (`pg_ctl stop -m fast`).
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    /// Starts a stopped or crashed server again on the same port and data.
    pub fn restart(&mut self) {
        if self.running {
            self.kill();
        }
        let mut output = String::new();
        // The port was just released; give the kernel a few tries.
        for _ in 0..20 {
            match self.pg_ctl_start() {
                Ok(()) => return,
                Err(out) => output = out,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "PostgreSQL did not restart on port {}:\n{output}",
            self.port
        );
    }

    fn pg_ctl_start(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("server.log").display().to_string();
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if !self.durable {
            options.push_str(" -c fsync=off");
        }
        if self.tls {
            // `server.crt` and `server.key` in the data folder are the defaults of
            // `ssl_cert_file` and `ssl_key_file`.
            options.push_str(" -c ssl=on");
        }
        let out = self.pg_ctl(&["-l", &log, "-o", &options, "-w", "-t", "30", "start"]);
        if out.status.success() {
            self.running = true;
            Ok(())
        } else {
            Err(format!(
                "{}{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ))
        }
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let out = self.pg_ctl(&["-m", mode, "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop -m {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    /// Runs `pg_ctl -D <data> <args>`.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.dir.path().join("data");
        let all = [OsStr::new("-D"), data.as_os_str()]
            .into_iter()
            .chain(args.iter().map(OsStr::new));
        run_as_postgres(&self.bin.join("pg_ctl"), all)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            // No assertion: a panic while dropping during a test's panic would abort.
            let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        }
    }
}

/// The folder of `initdb` and `pg_ctl`: the one on `PATH`, else Debian's newest.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin; \
             the outbox tests need them (Debian/Ubuntu: apt-get install postgresql)"
        ),
    }
}

/// Whether this process is root, so PostgreSQL must run as another user.
fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root.
fn run_as_postgres<'a>(program: &Path, args: impl IntoIterator<Item = &'a OsStr>) -> Output {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args);
    // The server inherits the standard streams of pg_ctl: give it none of the test's.
    command.stdin(std::process::Stdio::null());
    command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run {} ({error}); the outbox tests need PostgreSQL (Debian/Ubuntu: \
             apt-get install postgresql)",
            program.display()
        )
    })
}

/// Copies the server's certificate and key into its data folder as `server.crt` and `server.key`,
/// owned by the user the server runs as, the key readable by it alone (PostgreSQL refuses a key
/// that others can read).
fn install_tls_files(data: &Path, cert: &Path, key: &Path) {
    use std::os::unix::fs::PermissionsExt;

    for (from, name, mode) in [(cert, "server.crt", 0o644), (key, "server.key", 0o600)] {
        let to = data.join(name);
        std::fs::copy(from, &to)
            .unwrap_or_else(|error| panic!("cannot copy {} ({error})", from.display()));
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|error| panic!("cannot set the mode of {} ({error})", to.display()));
        give_to_postgres(&to);
    }
}

/// Hands `dir` (or a file) to the `postgres` user when we are root (initdb writes into it).
fn give_to_postgres(dir: &Path) {
    if !is_root() {
        return;
    }
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(dir)
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "cannot give {} to the postgres user (is there one? the Debian package creates it): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_crashes_and_comes_back_on_its_port() {
        let mut server = PostgresServer::start();
        let port = server.port();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.kill();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart();
        assert_eq!(server.port(), port);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}
