//! `cargo xtask test`: the whole test suite, as CI runs it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// The Node.js tools of the tests (`tests/tests/node_exports.rs`), relative to the workspace root.
pub const NODE_DIR: &str = "tests/node";

/// One command of the suite.
#[derive(Debug, Clone)]
pub struct Step {
    /// The program to run.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Where to run it, relative to the workspace root (default: the root).
    pub dir: Option<PathBuf>,
}

impl Step {
    /// `program args...`, run in the workspace root.
    pub fn new<I, S>(program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            dir: None,
        }
    }

    /// Runs the step in `dir` (relative to the workspace root) instead.
    #[allow(dead_code)] // for pre-steps that must run in a package folder
    pub fn in_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The command line as shown to people.
    pub fn display(&self) -> String {
        let mut text = self.program.to_string_lossy().into_owned();
        for arg in &self.args {
            text.push(' ');
            text.push_str(&arg.to_string_lossy());
        }
        if let Some(dir) = &self.dir {
            text = format!("(cd {} && {text})", dir.display());
        }
        text
    }
}

/// The suite, in order, run from the workspace root. `cargo` is the cargo to use; `test_args`
/// are passed to every test binary (after `--`), e.g. a test name filter or `--nocapture`.
///
/// First, when the Node.js tools of the tests are not installed or older than their lock file,
/// `npm ci --prefix tests/node` (see [`node_install`]); then the cargo steps ([`cargo_steps`]).
pub fn steps(cargo: &OsString, test_args: &[OsString]) -> Vec<Step> {
    let mut steps: Vec<Step> = node_install(Path::new("")).into_iter().collect();
    steps.extend(cargo_steps(cargo, test_args));
    steps
}

/// `npm ci --prefix tests/node` when `root/tests/node/node_modules` is missing or was installed
/// before `package-lock.json` last changed; `None` when it is up to date. npm rewrites
/// `node_modules/.package-lock.json` on every install, so its modification time is the install's.
pub fn node_install(root: &Path) -> Option<Step> {
    let dir = root.join(NODE_DIR);
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = modified(&dir.join("package-lock.json"));
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let needed = match (installed, lock) {
        (None, _) => true,
        (Some(installed), Some(lock)) => installed < lock,
        (Some(_), None) => false,
    };
    needed.then(|| Step::new("npm", ["ci", "--prefix", NODE_DIR]))
}

/// The cargo part of the suite: all targets, then the doc tests.
pub fn cargo_steps(cargo: &OsString, test_args: &[OsString]) -> Vec<Step> {
    let with_test_args = |mut step: Step| {
        if !test_args.is_empty() {
            step.args.push("--".into());
            step.args.extend(test_args.iter().cloned());
        }
        step
    };
    vec![
        with_test_args(Step::new(
            cargo.clone(),
            ["test", "--workspace", "--all-targets"],
        )),
        with_test_args(Step::new(cargo.clone(), ["test", "--workspace", "--doc"])),
    ]
}

/// A step that did not succeed.
#[derive(Debug)]
pub struct Failed {
    /// The step's command line.
    pub step: String,
    /// How it ended (`None` when it could not be started).
    pub status: Option<ExitStatus>,
    /// Why it could not be started.
    pub error: Option<std::io::Error>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.status, &self.error) {
            (Some(status), _) => write!(f, "`{}` failed ({status})", self.step),
            (None, Some(e)) => write!(f, "cannot run `{}`: {e}", self.step),
            (None, None) => write!(f, "`{}` failed", self.step),
        }
    }
}

impl std::error::Error for Failed {}

impl Failed {
    /// The exit code to end with: the step's own when it has one, else 1.
    pub fn exit_code(&self) -> u8 {
        self.status
            .and_then(|s| s.code())
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1)
    }
}

/// Runs the steps in order, stopping at the first that fails.
pub fn run(steps: &[Step]) -> Result<(), Failed> {
    for step in steps {
        eprintln!("==> {}", step.display());
        let mut command = Command::new(&step.program);
        command.args(&step.args);
        if let Some(dir) = &step.dir {
            command.current_dir(dir);
        }
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                return Err(Failed {
                    step: step.display(),
                    status: Some(status),
                    error: None,
                });
            }
            Err(error) => {
                return Err(Failed {
                    step: step.display(),
                    status: None,
                    error: Some(error),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_runs_all_targets_then_doc_tests() {
        let shown: Vec<String> = cargo_steps(&"cargo".into(), &[])
            .iter()
            .map(Step::display)
            .collect();
        assert_eq!(
            shown,
            [
                "cargo test --workspace --all-targets",
                "cargo test --workspace --doc"
            ]
        );
        let filtered = cargo_steps(&"cargo".into(), &["--nocapture".into()]);
        assert_eq!(
            filtered[0].display(),
            "cargo test --workspace --all-targets -- --nocapture"
        );
    }

    #[test]
    fn npm_ci_runs_when_node_modules_is_missing_or_older_than_the_lock_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(NODE_DIR);
        std::fs::create_dir_all(dir.join("node_modules")).unwrap();
        let lock = dir.join("package-lock.json");
        let installed = dir.join("node_modules/.package-lock.json");
        std::fs::write(&lock, "{}").unwrap();
        let step = node_install(root.path()).map(|s| s.display());
        assert_eq!(step.as_deref(), Some("npm ci --prefix tests/node"));

        std::fs::write(&installed, "{}").unwrap();
        let set_age = |path: &Path, seconds_ago: u64| {
            let time = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(time).unwrap();
        };
        set_age(&lock, 100);
        set_age(&installed, 50);
        assert!(
            node_install(root.path()).is_none(),
            "installed after the lock changed"
        );
        set_age(&installed, 200);
        assert!(
            node_install(root.path()).is_some(),
            "the lock changed since"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_failing_step_stops_the_suite() {
        let steps = [
            Step::new("false", Vec::<String>::new()),
            Step::new("does-not-exist-xtask", Vec::<String>::new()),
        ];
        let failed = run(&steps).unwrap_err();
        assert_eq!(failed.step, "false");
        assert_eq!(failed.exit_code(), 1);
        let failed = run(&steps[1..]).unwrap_err();
        assert!(failed.error.is_some());
        assert!(
            failed
                .to_string()
                .starts_with("cannot run `does-not-exist-xtask`")
        );
    }
}
