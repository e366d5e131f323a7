//! Workspace tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask schema export [--out DIR]` writes the JSON Schema export of `schemas/` into
//!   `schemas/json` (or `DIR`);
//! - `cargo xtask schema check [--out DIR]` fails when that folder is not exactly what the export
//!   would write, or when the schemas have errors; CI runs it;
//! - `cargo xtask schema diff --against GIT_REF [--json]` compares `schemas/` with the schema files
//!   at a commit and fails when an event changed incompatibly without a new version; CI runs it
//!   against the previous commit;
//! - `cargo xtask test [-- ARGS]` runs the whole test suite, after checking the programs it needs
//!   besides Rust (`redis-server`, `redis-cli`, Node.js 20 or newer, npm; see `prereq.rs`);
//! - `cargo xtask bench [--quick] [--rounds N]` measures this library against BullMQ and raw Redis
//!   and writes `target/bench/results.json`, `report.md` and `ratios.svg` (docs/benchmarks.md).
//!
//! Paths are relative to the workspace root, wherever the task is started from.

mod bench;
mod diff;
mod prereq;
mod schema;
mod test_suite;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Workspace tasks of domain-events
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// The committed JSON Schema export of `schemas/`
    #[command(subcommand)]
    Schema(SchemaTask),
    /// Run the whole test suite: `cargo test --workspace --all-targets`, then the doc tests. Checks
    /// first that the programs it needs are installed (redis-server, redis-cli, Node.js 20+, npm,
    /// PostgreSQL's initdb and pg_ctl, chromium, chromedriver, openssl)
    Test {
        /// Passed to every test binary, e.g. a test name filter or `--nocapture`
        #[arg(last = true)]
        test_args: Vec<OsString>,
    },
    /// Benchmark against BullMQ on Node.js and raw Redis (docs/benchmarks.md); writes
    /// target/bench/results.json, report.md and ratios.svg
    Bench {
        /// Fewer rounds and smaller counts (under 3 minutes once built)
        #[arg(long)]
        quick: bool,
        /// Rounds per scenario (default 5, with --quick 3)
        #[arg(long, value_name = "N")]
        rounds: Option<usize>,
        /// Only these scenarios (comma-separated ids, e.g. emit_serial,consume_c1; `outbox` for the
        /// outbox part, `cluster` for the Redis Cluster part)
        #[arg(long, value_name = "IDS", value_delimiter = ',')]
        only: Vec<String>,
        /// Skip the code generation timings
        #[arg(long)]
        no_codegen: bool,
        /// Measure nothing: write report.md and ratios.svg again from this results.json
        #[arg(long, value_name = "RESULTS_JSON", conflicts_with_all = ["quick", "rounds", "only", "no_codegen"])]
        render: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaTask {
    /// Write the export of `schemas/` (index.json and per-event JSON Schemas)
    Export {
        /// Export folder, relative to the workspace root
        #[arg(long, value_name = "DIR", default_value = schema::EXPORT_DIR)]
        out: PathBuf,
    },
    /// Fail unless the export folder is exactly what `cargo xtask schema export` writes
    Check {
        /// Export folder, relative to the workspace root
        #[arg(long, value_name = "DIR", default_value = schema::EXPORT_DIR)]
        out: PathBuf,
    },
    /// Compare `schemas/` with the schema files at a git ref; fail on a breaking change made
    /// without a new version (docs/compatibility.md)
    Diff {
        /// The commit to compare with, e.g. `HEAD~1` or `origin/main`
        #[arg(long, value_name = "GIT_REF")]
        against: String,
        /// Print the changes as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let xtask = Xtask::parse();
    if let Err(error) = std::env::set_current_dir(workspace_root()) {
        eprintln!("error: cannot enter the workspace root: {error}");
        return ExitCode::FAILURE;
    }
    match xtask.task {
        Task::Schema(task) => match run_schema(task) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Task::Bench {
            quick,
            rounds,
            only,
            no_codegen,
            render,
        } => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let options = bench::Options {
                quick,
                rounds,
                only,
                no_codegen,
            };
            let done = match render {
                Some(results) => bench::render(&results),
                None => bench::run(&cargo, &options),
            };
            match done {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Task::Test { test_args } => {
            let problems = prereq::problems(prereq::installed_version);
            if !problems.is_empty() {
                eprint!("error: {}", prereq::message(&problems));
                return ExitCode::FAILURE;
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            match test_suite::run(&test_suite::steps(&cargo, &test_args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failed) => {
                    eprintln!("error: {failed}");
                    ExitCode::from(failed.exit_code())
                }
            }
        }
    }
}

/// The workspace root: the parent of this crate's folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn run_schema(task: SchemaTask) -> anyhow::Result<()> {
    let schemas = Path::new(schema::SCHEMA_DIR);
    let result = match &task {
        SchemaTask::Export { out } => schema::export(schemas, out),
        SchemaTask::Check { out } => schema::check(schemas, out),
        SchemaTask::Diff { against, json } => return run_diff(against, *json),
    };
    let files = match result {
        Ok(files) => files,
        Err(schema::Error::Schema(diagnostics)) => {
            // Every diagnostic first, each `file:line:col: error: ...`, then the summary.
            eprintln!("{diagnostics}");
            return Err(schema::Error::Schema(diagnostics)).context(match task {
                SchemaTask::Export { .. } => "nothing was exported",
                SchemaTask::Check { .. } => "the export was not checked",
                SchemaTask::Diff { .. } => "the schemas were not compared",
            });
        }
        Err(error) => return Err(error.into()),
    };
    match task {
        SchemaTask::Export { out } => println!("wrote {files} files to {}", out.display()),
        SchemaTask::Check { out } => {
            println!("ok: {} is up to date ({files} files)", out.display())
        }
        SchemaTask::Diff { .. } => {}
    }
    Ok(())
}

/// `cargo xtask schema diff`: prints the table (or JSON); fails on violations.
fn run_diff(against: &str, json: bool) -> anyhow::Result<()> {
    let outcome = match diff::against(Path::new("."), against) {
        Ok(outcome) => outcome,
        Err(error) => {
            if let Some(diagnostics) = error.diagnostics() {
                eprintln!("{diagnostics}");
            }
            return Err(error).context("the schemas were not compared");
        }
    };
    let diff = match outcome {
        diff::Outcome::NoSchemas => {
            if json {
                println!(
                    "{:#}",
                    domain_events_schema::diff::Diff::default().to_json()
                );
            }
            eprintln!(
                "ok: `{against}` has no `{}/*.toml`: nothing to compare",
                schema::SCHEMA_DIR
            );
            return Ok(());
        }
        diff::Outcome::Compared(diff) => diff,
    };
    if json {
        println!("{:#}", diff.to_json());
    } else {
        print!("{}", diff.table());
    }
    let violations = diff.violations().count();
    if violations > 0 {
        anyhow::bail!(
            "{violations} breaking {} against `{against}` without a new version",
            if violations == 1 { "change" } else { "changes" }
        );
    }
    Ok(())
}
