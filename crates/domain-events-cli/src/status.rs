//! `domain-events status`: the streams, consumer groups and dead letters under a key prefix, as
//! tables or as JSON. The figures come from [`Inspector`]; this module only renders them.

use std::io::Write;
use std::process::ExitCode;

use domain_events_redis::{EntryStamp, Inspector, Status};

use crate::redis_args::block_on;
use crate::{Error, RedisArgs, say};

/// The options of `domain-events status` (its help text is on [`crate::Command::Status`]).
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Where the streams are.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(args: &StatusArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let config = args.redis.config()?;
    let status = block_on(async { Inspector::new(config)?.status().await })??;
    if args.json {
        let json = serde_json::to_string_pretty(&status).map_err(|e| Error::Output(e.into()))?;
        say(out, format_args!("{json}"))?;
    } else {
        say(out, format_args!("{}", tables(&status)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a missing value is shown as.
const NONE: &str = "-";
/// What an unknown lag is shown as; [`LAG_NOTE`] explains it.
const UNKNOWN: &str = "?";
const LAG_NOTE: &str = "lag ?: Redis cannot tell (entries were deleted after the group's position, \
                        or Redis is older than 7.0)";

/// The status as tables: streams, groups, consumers, and dead letters of groups that are gone.
fn tables(status: &Status) -> String {
    let orphans: Vec<_> = status
        .orphan_dead_letters()
        .filter(|letters| letters.length > 0)
        .collect();
    if status.streams.is_empty() && orphans.is_empty() {
        return format!("no event streams under the prefix `{}`", status.prefix);
    }

    let mut streams = Table::new(&[
        ("STREAM", false),
        ("CATEGORY", false),
        ("LENGTH", true),
        ("FIRST ENTRY", false),
        ("LAST ENTRY", false),
    ]);
    let mut groups = Table::new(&[
        ("STREAM", false),
        ("GROUP", false),
        ("CONSUMERS", true),
        ("LAG", true),
        ("PENDING", true),
        ("OLDEST PENDING IDLE", true),
        ("DEAD LETTERS", true),
    ]);
    let mut consumers = Table::new(&[
        ("STREAM", false),
        ("GROUP", false),
        ("CONSUMER", false),
        ("PENDING", true),
        ("IDLE", true),
    ]);
    let mut lag_unknown = false;
    for stream in &status.streams {
        let at = |entry: &Option<EntryStamp>| {
            entry
                .as_ref()
                .map_or(NONE.to_owned(), |e| e.at.as_str().to_owned())
        };
        streams.row(vec![
            stream.stream.clone(),
            stream.category.clone(),
            stream.length.to_string(),
            at(&stream.first_entry),
            at(&stream.last_entry),
        ]);
        for group in &stream.groups {
            lag_unknown |= group.lag.is_none();
            groups.row(vec![
                stream.stream.clone(),
                group.group.clone(),
                group.consumers.len().to_string(),
                group.lag.map_or(UNKNOWN.to_owned(), |lag| lag.to_string()),
                group.pending.to_string(),
                group
                    .oldest_pending
                    .as_ref()
                    .map_or(NONE.to_owned(), |p| duration(p.idle_ms)),
                group.dead_letters.to_string(),
            ]);
            for consumer in &group.consumers {
                consumers.row(vec![
                    stream.stream.clone(),
                    group.group.clone(),
                    consumer.name.clone(),
                    consumer.pending.to_string(),
                    duration(consumer.idle_ms),
                ]);
            }
        }
    }

    let mut sections = vec![streams.render()];
    if !groups.is_empty() {
        sections.push(groups.render());
    }
    if !consumers.is_empty() {
        sections.push(consumers.render());
    }
    if !orphans.is_empty() {
        let mut gone = Table::new(&[
            ("DEAD LETTERS OF GROUPS NOT ON A STREAM", false),
            ("CATEGORY", false),
            ("GROUP", false),
            ("LENGTH", true),
        ]);
        for letters in orphans {
            gone.row(vec![
                letters.stream.clone(),
                letters.category.clone(),
                letters.group.clone(),
                letters.length.to_string(),
            ]);
        }
        sections.push(gone.render());
    }
    if lag_unknown {
        sections.push(LAG_NOTE.to_owned());
    }
    sections.join("\n\n")
}

/// Milliseconds for people: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`.
fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms}ms"),
        1..60 => format!("{secs}.{}s", ms % 1000 / 100),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// A table of text columns, two spaces apart; numbers right-aligned.
struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns given as (header, right-aligned).
    fn new(columns: &[(&'static str, bool)]) -> Self {
        Table {
            headers: columns.iter().map(|(header, _)| *header).collect(),
            right: columns.iter().map(|(_, right)| *right).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn render(&self) -> String {
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                lines
                    .iter()
                    .map(|cells| cells.get(column).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for cells in lines {
            let mut line = String::new();
            for (column, width) in widths.iter().enumerate() {
                let cell = cells.get(column).map_or("", String::as_str);
                if column > 0 {
                    line.push_str("  ");
                }
                if self.right[column] {
                    line.push_str(&format!("{cell:>width$}"));
                } else {
                    line.push_str(&format!("{cell:<width$}"));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text.pop();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        for (ms, shown) in [
            (0, "0ms"),
            (850, "850ms"),
            (1000, "1.0s"),
            (12_345, "12.3s"),
            (245_000, "4m05s"),
            (7_380_000, "2h03m"),
            (273_600_000, "3d04h"),
        ] {
            assert_eq!(duration(ms), shown, "{ms}");
        }
    }

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut table = Table::new(&[("NAME", false), ("COUNT", true), ("NOTE", false)]);
        table.row(vec!["a-long-name".into(), "7".into(), "x".into()]);
        table.row(vec!["b".into(), "1234567".into(), String::new()]);
        assert_eq!(
            table.render(),
            "NAME           COUNT  NOTE\na-long-name        7  x\nb            1234567"
        );
    }

    /// The example table of the README's "The command line" section, from the Status it shows.
    #[test]
    fn the_readme_example_is_what_status_prints() {
        use domain_events_redis::{ConsumerStatus, GroupStatus, PendingEntry, StreamStatus};

        let readme = include_str!("../../../README.md");
        let example = readme
            .split_once("one of consumers, then the dead\nletters of groups that are no longer on their stream:\n\n```text\n")
            .and_then(|(_, rest)| rest.split_once("\n```"))
            .map(|(block, _)| block)
            .expect("the example in the README");
        let stream = "domain-events:{image}";
        let consumer = |name: &str, pending, idle_ms| ConsumerStatus {
            name: name.into(),
            pending,
            idle_ms,
            inactive_ms: None,
        };
        let group = |name: &str, lag, pending, oldest, consumers, dead_letters| GroupStatus {
            group: name.into(),
            lag,
            pending,
            oldest_pending: oldest,
            last_delivered_id: "0-0".into(),
            entries_read: None,
            consumers,
            dead_letters,
        };
        let status = Status {
            prefix: "domain-events".into(),
            streams: vec![StreamStatus {
                stream: stream.into(),
                category: "image".into(),
                length: 1024,
                first_entry: EntryStamp::of("1795684364310-0"),
                last_entry: EntryStamp::of("1795712645123-0"),
                last_generated_id: "1795712645123-0".into(),
                entries_added: None,
                groups: vec![
                    group(
                        "analytics",
                        None,
                        0,
                        None,
                        vec![consumer("worker-7-a1b2c3d4", 0, 1200)],
                        0,
                    ),
                    group(
                        "notifications",
                        Some(12),
                        3,
                        Some(PendingEntry {
                            id: "1795712400000-0".into(),
                            consumer: "api-1-51f0e2aa".into(),
                            idle_ms: 245_000,
                            deliveries: 2,
                        }),
                        vec![
                            consumer("api-1-51f0e2aa", 3, 850),
                            consumer("api-2-9c0d7e41", 0, 1000),
                        ],
                        1,
                    ),
                ],
            }],
            dead_letters: Vec::new(),
        };
        assert_eq!(tables(&status), example);
    }

    #[test]
    fn nothing_found_is_said_so() {
        let status = Status {
            prefix: "p".into(),
            streams: Vec::new(),
            dead_letters: Vec::new(),
        };
        assert_eq!(tables(&status), "no event streams under the prefix `p`");
    }
}
