//! `domain-events completions SHELL` prints a script for every shell clap_complete knows, each
//! naming every subcommand; the bash one completes subcommands and their options in a real bash.

use std::process::{Command, Output};

/// Runs the binary with `args` to its end.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_domain-events"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn completions(shell: &str) -> String {
    let output = run(&["completions", shell]);
    assert!(
        output.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("a UTF-8 script")
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        let script = completions(shell);
        for word in [
            "domain-events",
            "check",
            "export",
            "diff",
            "emit",
            "tail",
            "dlq",
            "replay",
            "delete",
            "purge",
            "status",
            "completions",
            // Options: fish writes them without their dashes (`-l json`).
            "json",
            "yes",
        ] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

/// What bash completes after `words` (the last one being completed), with the script loaded as
/// bash-completion loads it.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{}'
COMP_WORDS=({})
COMP_CWORD={}
_domain__events domain-events "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let output: Output = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .output()
        .expect("bash runs (it is needed for this test)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let script = dir.path().join("domain-events.bash");
    std::fs::write(&script, completions("bash")).expect("the script");

    assert_eq!(
        bash_completes(&script, &["domain-events", "st"]),
        ["status"]
    );
    assert_eq!(
        bash_completes(&script, &["domain-events", "dlq", "p"]),
        ["purge"]
    );
    let status = bash_completes(&script, &["domain-events", "status", "--"]);
    assert!(status.contains(&"--json".to_owned()), "{status:?}");
    let purge = bash_completes(&script, &["domain-events", "dlq", "purge", "--y"]);
    assert_eq!(purge, ["--yes"]);
    let delete = bash_completes(&script, &["domain-events", "dlq", "delete", "--i"]);
    assert_eq!(delete, ["--id"]);
    let shells = bash_completes(&script, &["domain-events", "completions", "z"]);
    assert_eq!(shells, ["zsh"]);
}
