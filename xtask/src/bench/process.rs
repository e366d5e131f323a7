//! Child processes: the private Redis and PostgreSQL of a run, running a program to completion with a timeout,
//! the preparation steps, and finding tools on `PATH`.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

/// How long one run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// A private server of the run that `domain-events-bench <command>` runs (the test harness's):
/// it prints its URL and runs until told to stop, which dropping this does.
pub(super) struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its URL.
    pub(super) url: String,
}

impl Server {
    /// Starts `domain-events-bench <command>` and reads the URL it prints.
    pub(super) fn start(bench_bin: &Path, command: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(bench_bin)
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start `domain-events-bench {command}`"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout")?;
        let mut url = String::new();
        BufReader::new(stdout).read_line(&mut url)?;
        let mut server = Server {
            child,
            stdin,
            url: url.trim().to_owned(),
        };
        if server.url.is_empty() {
            let status = server.child.wait()?;
            bail!("`domain-events-bench {command}` printed no URL ({status})");
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "stop");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The private Redis of the run: `domain-events-bench redis_server`, stopped when dropped.
pub(super) struct Redis {
    _server: Server,
    /// `redis://host:port`.
    pub(super) url: String,
    /// Its host.
    pub(super) host: String,
    /// Its port.
    pub(super) port: u16,
}

impl Redis {
    /// Starts it and reads its URL.
    pub(super) fn start(bench_bin: &Path) -> anyhow::Result<Self> {
        let server = Server::start(bench_bin, "redis_server")?;
        let url = server.url.clone();
        let address = url
            .strip_prefix("redis://")
            .with_context(|| format!("unexpected Redis URL `{url}`"))?;
        let (host, port) = address
            .rsplit_once(':')
            .context("no port in the Redis URL")?;
        let port: u16 = port
            .trim_end_matches('/')
            .parse()
            .context("bad Redis port")?;
        let redis = Redis {
            host: host.to_owned(),
            port,
            url,
            _server: server,
        };
        eprintln!("bench: redis-server at {}", redis.url);
        Ok(redis)
    }

    /// `FLUSHALL`.
    pub(super) fn flush(&self) -> anyhow::Result<()> {
        let out = capture(Command::new("redis-cli").args([
            "-h",
            &self.host,
            "-p",
            &self.port.to_string(),
            "FLUSHALL",
        ]))?;
        ensure!(out.trim() == "OK", "FLUSHALL answered `{}`", out.trim());
        Ok(())
    }
}

/// Runs `command` to completion (killed after [`RUN_TIMEOUT`]) and returns its stdout; fails
/// with its output when it fails.
pub(super) fn capture(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {shown:.200}"))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown:.200} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!("{shown:.200} failed ({status}):\n{stdout}{stderr}");
    }
    Ok(stdout)
}

/// Runs a preparation step with inherited output.
pub(super) fn step<I, S>(
    program: impl Into<OsString>,
    args: I,
    env: Option<(&str, &Path)>,
) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let program = program.into();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Command::new(&program);
    command.args(&args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let shown = std::iter::once(&program)
        .chain(&args)
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("bench: {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot run `{shown}`"))?;
    ensure!(status.success(), "`{shown}` failed ({status})");
    Ok(())
}

/// `npm ci --prefix <dir>` when `dir/node_modules` is missing or older than `package-lock.json`
/// (npm rewrites `node_modules/.package-lock.json` on every install).
pub(super) fn npm_install_needed(dir: &Path) -> Option<Vec<OsString>> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = modified(&dir.join("package-lock.json"));
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let needed = match (installed, lock) {
        (None, _) => true,
        (Some(installed), Some(lock)) => installed < lock,
        (Some(_), None) => false,
    };
    needed.then(|| {
        ["ci", "--no-audit", "--no-fund", "--prefix"]
            .into_iter()
            .map(OsString::from)
            .chain([dir.as_os_str().to_owned()])
            .collect()
    })
}

/// The path of `tool` on `PATH`.
pub(super) fn which(tool: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{tool}` not found"))
}
