//! What `cargo xtask test` needs besides Rust, checked before anything runs: `redis-server` and
//! `redis-cli` (the Redis tests start their own servers), Node.js 20 or newer and npm (`npm ci
//! --prefix tests/node` and the interop tests' scripts), PostgreSQL's `initdb` and `pg_ctl` (the
//! outbox tests start their own servers; found on `PATH` or in Debian's
//! `/usr/lib/postgresql/<version>/bin`), Debian's `chromium` and `chromedriver` (the
//! dashboard's browser test), and `openssl` (the TLS tests make their certificates with it).

use std::process::Command;

/// One program the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The program, looked up on `PATH`.
    pub program: &'static str,
    /// The argument that makes it print its version (`--version`; `openssl` wants `version`).
    pub version_arg: &'static str,
    /// The oldest major version that works, when it matters.
    pub min_major: Option<u32>,
    /// The Debian/Ubuntu package that installs it.
    pub package: &'static str,
    /// What the suite uses it for.
    pub used_for: &'static str,
}

/// The programs of the suite, checked in this order with `<program> <version_arg>`.
pub const TOOLS: [Tool; 9] = [
    Tool {
        program: "redis-server",
        version_arg: "--version",
        min_major: None,
        package: "redis-server",
        used_for: "the Redis tests start their own servers",
    },
    Tool {
        program: "redis-cli",
        version_arg: "--version",
        min_major: None,
        package: "redis-tools",
        used_for: "Redis's command-line tools, which `cargo xtask bench` uses too",
    },
    Tool {
        program: "node",
        version_arg: "--version",
        min_major: Some(20),
        package: "nodejs",
        used_for: "the BullMQ, CloudEvents and schema export interop tests",
    },
    Tool {
        program: "npm",
        version_arg: "--version",
        min_major: None,
        package: "npm",
        used_for: "`npm ci --prefix tests/node`",
    },
    Tool {
        program: "initdb",
        version_arg: "--version",
        min_major: Some(11),
        package: "postgresql",
        used_for: "the outbox tests create their own PostgreSQL servers",
    },
    Tool {
        program: "pg_ctl",
        version_arg: "--version",
        min_major: Some(11),
        package: "postgresql",
        used_for: "the outbox tests start, crash and restart their PostgreSQL servers",
    },
    Tool {
        program: "chromium",
        version_arg: "--version",
        min_major: None,
        package: "chromium",
        used_for: "the dashboard's browser test",
    },
    Tool {
        program: "chromedriver",
        version_arg: "--version",
        min_major: None,
        package: "chromium-driver",
        used_for: "the dashboard's browser test drives Chromium through it",
    },
    Tool {
        program: "openssl",
        version_arg: "version",
        min_major: None,
        package: "openssl",
        used_for: "the TLS tests make their certificates with it",
    },
];

/// Why a tool does not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `<program> --version` could not be run or failed.
    Missing(Tool),
    /// Its major version is below [`Tool::min_major`] (or could not be read from `found`).
    TooOld {
        /// The tool.
        tool: Tool,
        /// What `--version` printed (first line).
        found: String,
    },
}

/// The major version in `--version` output: the first word that is a version, with an optional
/// `v` or `v=` before it (`v20.11.1`, `Redis server v=7.0.15 ...`, `redis-cli 7.0.15`, `10.2.4`).
pub fn major_version(output: &str) -> Option<u32> {
    output.split_whitespace().find_map(|word| {
        let word = word
            .strip_prefix("v=")
            .or_else(|| word.strip_prefix('v'))
            .unwrap_or(word);
        let digits = word
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(word.len());
        let rest = &word[digits..];
        if digits == 0 || !(rest.is_empty() || rest.starts_with('.')) {
            return None;
        }
        word[..digits].parse().ok()
    })
}

/// The problems of [`TOOLS`], given `version`: what `<program> <version_arg>` printed, or `None`
/// when it could not be run or failed.
pub fn problems(version: impl Fn(&Tool) -> Option<String>) -> Vec<Problem> {
    TOOLS
        .iter()
        .filter_map(|tool| {
            let Some(output) = version(tool) else {
                return Some(Problem::Missing(*tool));
            };
            let min = tool.min_major?;
            let found = output.lines().next().unwrap_or("").trim().to_owned();
            match major_version(&output) {
                Some(major) if major >= min => None,
                _ => Some(Problem::TooOld { tool: *tool, found }),
            }
        })
        .collect()
}

/// What to tell the user about `problems`: each tool and what to do. Empty when there are none.
pub fn message(problems: &[Problem]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let mut text = String::from("`cargo xtask test` needs programs that are missing or too old:\n");
    let mut packages: Vec<&str> = Vec::new();
    for problem in problems {
        let (tool, line) = match problem {
            Problem::Missing(tool) => (
                tool,
                format!(
                    "  - `{}` not found on PATH ({})",
                    tool.program, tool.used_for
                ),
            ),
            Problem::TooOld { tool, found } => (
                tool,
                format!(
                    "  - `{}` is `{found}`; version {} or newer is needed ({})",
                    tool.program,
                    tool.min_major.unwrap_or(0),
                    tool.used_for
                ),
            ),
        };
        text.push_str(&line);
        text.push('\n');
        if !packages.contains(&tool.package) {
            packages.push(tool.package);
        }
    }
    text.push_str(&format!(
        "Install them (Debian/Ubuntu): apt-get install {}\n",
        packages.join(" ")
    ));
    if problems
        .iter()
        .any(|p| matches!(p, Problem::TooOld { tool, .. } if tool.program == "node"))
    {
        text.push_str(
            "If your distribution's nodejs is older than 20, install Node.js 20 or newer from \
             https://nodejs.org (or NodeSource, nvm).\n",
        );
    }
    text
}

/// Runs `<program> <version_arg>`: its output, or `None` when it cannot be run or fails. A
/// program not on `PATH` is also looked for where Debian installs PostgreSQL's server programs,
/// `/usr/lib/postgresql/<version>/bin` (the PostgreSQL test harness looks there too).
pub fn installed_version(tool: &Tool) -> Option<String> {
    let program = tool.program;
    let version = |path: &std::path::Path| {
        let output = Command::new(path).arg(tool.version_arg).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    version(std::path::Path::new(program)).or_else(|| {
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .find_map(|dir| version(&dir.path().join("bin").join(program)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_are_read_from_each_tools_output() {
        assert_eq!(major_version("v20.11.1\n"), Some(20));
        assert_eq!(major_version("v18.19.0"), Some(18));
        assert_eq!(
            major_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some(7)
        );
        assert_eq!(major_version("redis-cli 7.0.15"), Some(7));
        assert_eq!(major_version("10.2.4"), Some(10));
        assert_eq!(major_version("22"), Some(22));
        assert_eq!(major_version(""), None);
        assert_eq!(major_version("node: command not found"), None);
        assert_eq!(major_version("vx.1 abc 1x.2"), None);
    }

    fn versions(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&Tool) -> Option<String> {
        move |tool| {
            pairs
                .iter()
                .find(|(p, _)| *p == tool.program)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn every_tool_present_and_recent_is_no_problem() {
        let all = versions(&[
            ("redis-server", "Redis server v=7.0.15 sha=0"),
            ("redis-cli", "redis-cli 7.0.15"),
            ("node", "v20.0.0"),
            ("npm", "10.2.4"),
            (
                "initdb",
                "initdb (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)",
            ),
            (
                "pg_ctl",
                "pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)",
            ),
            (
                "chromium",
                "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)",
            ),
            ("chromedriver", "ChromeDriver 156.0.8078.114"),
            (
                "openssl",
                "OpenSSL 3.0.17 1 Jul 2025 (Library: OpenSSL 3.0.17 1 Jul 2025)",
            ),
        ]);
        assert_eq!(problems(all), []);
        assert_eq!(message(&[]), "");
    }

    #[test]
    fn missing_and_old_tools_are_named_with_their_packages() {
        let some = versions(&[
            ("redis-cli", "redis-cli 7.0.15"),
            ("node", "v18.19.0\n"),
            ("chromium", "Chromium 156.0.8078.114"),
            ("openssl", "OpenSSL 3.0.17"),
        ]);
        let found = problems(some);
        assert_eq!(
            found,
            [
                Problem::Missing(TOOLS[0]),
                Problem::TooOld {
                    tool: TOOLS[2],
                    found: "v18.19.0".into()
                },
                Problem::Missing(TOOLS[3]),
                Problem::Missing(TOOLS[4]),
                Problem::Missing(TOOLS[5]),
                Problem::Missing(TOOLS[7]),
            ]
        );
        let text = message(&found);
        assert_eq!(
            text,
            "`cargo xtask test` needs programs that are missing or too old:\n\
             \x20 - `redis-server` not found on PATH (the Redis tests start their own servers)\n\
             \x20 - `node` is `v18.19.0`; version 20 or newer is needed (the BullMQ, \
             CloudEvents and schema export interop tests)\n\
             \x20 - `npm` not found on PATH (`npm ci --prefix tests/node`)\n\
             \x20 - `initdb` not found on PATH (the outbox tests create their own PostgreSQL \
             servers)\n\
             \x20 - `pg_ctl` not found on PATH (the outbox tests start, crash and restart their \
             PostgreSQL servers)\n\
             \x20 - `chromedriver` not found on PATH (the dashboard's browser test drives \
             Chromium through it)\n\
             Install them (Debian/Ubuntu): apt-get install redis-server nodejs npm postgresql \
             chromium-driver\n\
             If your distribution's nodejs is older than 20, install Node.js 20 or newer from \
             https://nodejs.org (or NodeSource, nvm).\n"
        );
    }

    #[test]
    fn a_node_version_that_cannot_be_read_is_too_old() {
        let odd = versions(&[
            ("redis-server", "Redis server v=7.0.15"),
            ("redis-cli", "redis-cli 7.0.15"),
            ("node", "nightly"),
            ("npm", "10.2.4"),
            ("initdb", "initdb (PostgreSQL) 15.20"),
            ("pg_ctl", "pg_ctl (PostgreSQL) 15.20"),
            ("chromium", "Chromium 156.0.8078.114"),
            ("chromedriver", "ChromeDriver 156.0.8078.114"),
            ("openssl", "OpenSSL 3.0.17"),
        ]);
        assert_eq!(
            problems(odd),
            [Problem::TooOld {
                tool: TOOLS[2],
                found: "nightly".into()
            }]
        );
    }

    #[test]
    fn nothing_installed_names_every_package() {
        let text = message(&problems(|_| None));
        assert!(
            text.ends_with(
                "Install them (Debian/Ubuntu): apt-get install redis-server redis-tools nodejs \
                 npm postgresql chromium chromium-driver openssl\n"
            ),
            "{text}"
        );
        for tool in TOOLS {
            assert!(
                text.contains(&format!("`{}` not found", tool.program)),
                "{text}"
            );
        }
    }
}
