//! Runs the `image_pipeline` example as users do: on the in-memory bus, and across processes
//! through a real `redis-server` this test starts.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use domain_events_tests::redis_server::RedisServer;

/// The example's binary, built (or found up to date) by cargo once per test run: `cargo test`
/// builds examples only as test harnesses, so the plain binary may be missing or stale.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "domain-events-catalog",
                    "--example",
                    "image_pipeline",
                ])
                .status()
                .expect("run cargo to build the example");
            assert!(
                status.success(),
                "building the image_pipeline example failed"
            );
            let exe = std::env::current_exe().expect("test binary path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>");
            let path = profile_dir
                .join("examples")
                .join(format!("image_pipeline{}", std::env::consts::EXE_SUFFIX));
            assert!(
                path.exists(),
                "{} is missing after building it",
                path.display()
            );
            path
        })
        .clone()
}

fn run(args: &[&str]) -> (String, Output) {
    let output = Command::new(example())
        .args(args)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "example failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, output)
}

fn assert_pipeline(stdout: &str) {
    assert_eq!(
        stdout.matches("emitted image:family_completed").count(),
        9,
        "{stdout}"
    );
    assert!(
        stdout.contains("emitted image:variation_completed"),
        "{stdout}"
    );
    assert!(stdout.contains("again (key image_complete:"), "{stdout}");
    assert!(stdout.contains("duplicate = true"), "{stdout}");
    assert!(
        stdout.contains("image-generator: emitted 12, duplicates 1, failed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("admin-panel: received 12, handled 12"),
        "{stdout}"
    );
    assert!(
        stdout.contains("analytics: received 12, handled 10"),
        "{stdout}"
    );
    assert!(stdout.contains("is ready: 9 images"), "{stdout}");
    assert_eq!(
        stdout.matches("is ready").count(),
        1,
        "the duplicate reached a consumer:\n{stdout}"
    );
}

#[test]
fn the_pipeline_runs_on_the_in_memory_bus() {
    let (stdout, _) = run(&[]);
    assert_pipeline(&stdout);
    assert!(stdout.contains("var-123 family 9/9 done"), "{stdout}");
}

#[test]
fn the_pipeline_runs_across_processes_through_redis() {
    let server = RedisServer::start();
    let (stdout, _) = run(&["--redis", &server.url()]);
    assert_pipeline(&stdout);
    assert_eq!(stdout.matches(": started ").count(), 3, "{stdout}");
    // The admin panel handles one event at a time, so its board shows the stream's order.
    let board: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("admin-panel: var-"))
        .collect();
    assert_eq!(board.len(), 12, "{stdout}");
    assert!(
        board[0].ends_with("queued") && board[11].ends_with("complete"),
        "{board:#?}"
    );

    // A second run reuses the groups: it handles its own variation, none of the first run's.
    let (again, _) = run(&["--redis", &server.url()]);
    assert_pipeline(&again);
}
