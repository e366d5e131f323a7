//! `domain-events dlq list|replay|delete|purge`: inspect the dead letters of a consumer group, put
//! them back, or remove them.

use std::io::Write;
use std::process::ExitCode;

use clap::builder::NonEmptyStringValueParser;
use domain_events_redis::{DeadLetter, DeadLetters, Keys, MAX_PARTITIONS, RedisConfig};
use serde_json::value::RawValue;

use crate::redis_args::{block_on, categories, compact_json, parse_category};
use crate::{Error, RedisArgs, SchemaArgs, say};

/// The options of `domain-events dlq` (its help text is on [`crate::Command::Dlq`]).
#[derive(Debug, Clone, clap::Args)]
pub struct DlqArgs {
    /// What to do with the dead letters.
    #[command(subcommand)]
    pub action: DlqAction,
}

/// The `dlq` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum DlqAction {
    /// Print a group's dead letters, one JSON line each
    ///
    /// Each line holds the category (and, for a partitioned category, the `partition`), the
    /// dead letter's `id`, the `stream` and `entryId` the event came from, the `group`, the
    /// `reason` it was given up, the number of `deliveries`, and the event: `event` when it is
    /// JSON, otherwise `eventText` (its bytes as UTF-8, invalid sequences replaced). Oldest
    /// first, per category (per partition of a partitioned one).
    #[command(verbatim_doc_comment)]
    List(DlqListArgs),

    /// Put a group's dead letters back on their category streams
    ///
    /// Each dead letter's event is appended again, unchanged (same eventId and idempotency key),
    /// and the dead letter is deleted, in one step. Every group reading the category receives the
    /// new entry; groups that handled the event before skip it while their done record lives.
    /// Dead letters that hold no event envelope are left in place.
    ///
    /// A partition's dead letter goes back on that partition's stream, where it came from.
    ///
    /// Prints one JSON line per category: `replayed` and the dead letters `left` (a partitioned
    /// category's partitions added up); with `--id`, the category (and `partition`) and the new
    /// `entryId`. With `--id`, the id must name a dead letter of the group in exactly one of
    /// the categories (partitions); otherwise nothing is replayed.
    #[command(verbatim_doc_comment)]
    Replay(DlqReplayArgs),

    /// Delete dead letters by id, whatever they hold
    ///
    /// Deletes each `--id` (as `list` prints it) for good, also dead letters whose event is not
    /// JSON, which cannot be replayed. Every id must name a dead letter of the group in exactly
    /// one of the categories (partitions); otherwise nothing is deleted.
    ///
    /// Prints one JSON line per id: its `category` (and `partition`), `group`, `id`, and
    /// `deleted` (false when it was removed by someone else meanwhile).
    #[command(verbatim_doc_comment)]
    Delete(DlqDeleteArgs),

    /// Delete all of a group's dead letters
    ///
    /// Deletes every dead letter of the group in each category, for good, whatever it holds.
    /// Without `--yes` nothing is deleted: the command says how many would be and exits with
    /// status 1.
    ///
    /// Prints one JSON line per category: the `category`, `group` and how many were `purged`
    /// (a partitioned category's partitions added up).
    #[command(verbatim_doc_comment)]
    Purge(DlqPurgeArgs),
}

/// Whose dead letters: the connection, the group and the categories; shared by `list` and
/// `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetterArgs {
    /// Where the dead letters are.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Consumer group whose dead letters these are
    #[arg(long, value_name = "GROUP", value_parser = NonEmptyStringValueParser::new())]
    pub group: String,

    /// Category to look in (repeat for several), `<category>#<p>` for one partition; default:
    /// every category of `--schemas`
    #[arg(long = "category", value_name = "CATEGORY", value_parser = parse_category)]
    pub categories: Vec<String>,

    /// The schema folder, read only for its categories when no `--category` is given.
    #[command(flatten)]
    pub schema: SchemaArgs,
}

/// The options of `domain-events dlq list`.
#[derive(Debug, Clone, clap::Args)]
pub struct DlqListArgs {
    /// Whose dead letters.
    #[command(flatten)]
    pub target: DeadLetterArgs,

    /// Print at most this many dead letters per category (per partition of a partitioned one)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

/// The options of `domain-events dlq replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct DlqReplayArgs {
    /// Whose dead letters.
    #[command(flatten)]
    pub target: DeadLetterArgs,

    /// Replay only this dead letter (its `id`, as `list` prints it)
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

/// The options of `domain-events dlq delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DlqDeleteArgs {
    /// Whose dead letters.
    #[command(flatten)]
    pub target: DeadLetterArgs,

    /// A dead letter to delete (its `id`, as `list` prints it); repeat for several
    #[arg(long = "id", value_name = "ID", required = true, value_parser = NonEmptyStringValueParser::new())]
    pub ids: Vec<String>,
}

/// The options of `domain-events dlq purge`.
#[derive(Debug, Clone, clap::Args)]
pub struct DlqPurgeArgs {
    /// Whose dead letters.
    #[command(flatten)]
    pub target: DeadLetterArgs,

    /// Delete them: without it nothing is deleted
    #[arg(long)]
    pub yes: bool,
}

/// One line of `dlq list`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    category: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<u32>,
    id: &'a str,
    stream: &'a str,
    entry_id: &'a str,
    group: &'a str,
    reason: &'a str,
    deliveries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_text: Option<String>,
}

/// One line of `dlq replay`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Replayed<'a> {
    category: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<u32>,
    group: &'a str,
    replayed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_id: Option<&'a str>,
}

/// One dead-letter stream of a group: that of a category, or of one partition of a partitioned
/// category (each partition has its own, under the partition's hash tag `{<category>#<p>}`).
struct Place {
    /// The category.
    category: String,
    /// The partition, for a partitioned category.
    partition: Option<u32>,
    /// The hash tag naming the place's keys: the category, or `<category>#<p>`.
    tag: String,
}

impl Place {
    /// The category as `dlq` names places in messages: `cart`, or `cart#2` for a partition.
    fn name(&self) -> &str {
        &self.tag
    }
}

/// The dead-letter streams of `categories`: one per category, one per partition of a category
/// that Redis records as partitioned. A name `<category>#<p>` is that partition alone.
async fn places(config: &RedisConfig, categories: &[String]) -> Result<Vec<Place>, Error> {
    let mut places = Vec::with_capacity(categories.len());
    for name in categories {
        if let (category, Some(partition)) = Keys::split_tag(name) {
            places.push(Place {
                category: category.to_owned(),
                partition: Some(partition),
                // Spelled as the layout spells it (`cart#02` is `cart#2`): any count above 1
                // gives partition `p` its tag.
                tag: Keys::tag(category, partition, MAX_PARTITIONS),
            });
            continue;
        }
        let partitions = config.recorded_partitions(name).await?;
        places.extend((0..partitions).map(|partition| Place {
            category: name.clone(),
            partition: (partitions > 1).then_some(partition),
            tag: Keys::tag(name, partition, partitions),
        }));
    }
    // `--category cart --category cart#2` names partition 2 twice.
    places.sort_by(|a, b| (&a.category, a.partition).cmp(&(&b.category, b.partition)));
    places.dedup_by(|a, b| a.tag == b.tag);
    Ok(places)
}

pub(crate) fn run(args: &DlqArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let target = match &args.action {
        DlqAction::List(list) => &list.target,
        DlqAction::Replay(replay) => &replay.target,
        DlqAction::Delete(delete) => &delete.target,
        DlqAction::Purge(purge) => &purge.target,
    };
    let categories = categories(&target.categories, &target.schema)?;
    let config = target.redis.config()?;
    block_on(async {
        let places = places(&config, &categories).await?;
        let letters = DeadLetters::new(config)?;
        let (letters, places) = (&letters, places.as_slice());
        match &args.action {
            DlqAction::List(list) => self::list(list, letters, places, out).await,
            DlqAction::Replay(replay) => self::replay(replay, letters, places, out).await,
            DlqAction::Delete(delete) => self::delete(delete, letters, places, out).await,
            DlqAction::Purge(purge) => self::purge(purge, letters, places, out).await,
        }
    })?
}

/// `places` grouped by category, in order: what `replay` and `purge` print one line for.
fn by_category(places: &[Place]) -> impl Iterator<Item = &[Place]> {
    places.chunk_by(|a, b| a.category == b.category)
}

async fn list(
    args: &DlqListArgs,
    letters: &DeadLetters,
    places: &[Place],
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    let group = &args.target.group;
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    for place in places {
        let listed = letters.list(&place.tag, group, limit).await?;
        for letter in &listed {
            say_json(out, &listed_line(place, letter))?;
        }
        if listed.len() >= limit {
            let total = letters.len(&place.tag, group).await?;
            if total > args.limit {
                eprintln!(
                    "note: showed {} of {total} dead letters of group `{group}` in `{}`; raise --limit to see more",
                    listed.len(),
                    place.name()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `line` as one line of JSON.
fn say_json(out: &mut dyn Write, line: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string(line).map_err(|e| Error::Output(e.into()))?;
    say(out, format_args!("{text}"))
}

/// The JSON line of one dead letter.
fn listed_line<'a>(place: &'a Place, letter: &'a DeadLetter) -> Listed<'a> {
    let event = serde_json::from_slice::<Box<RawValue>>(&letter.event)
        .ok()
        .and_then(|raw| RawValue::from_string(compact_json(raw.get())).ok());
    let event_text = match event {
        Some(_) => None,
        None => Some(String::from_utf8_lossy(&letter.event).into_owned()),
    };
    Listed {
        category: &place.category,
        partition: place.partition,
        id: &letter.id,
        stream: &letter.stream,
        entry_id: &letter.entry_id,
        group: &letter.group,
        reason: &letter.reason,
        deliveries: letter.deliveries,
        event,
        event_text,
    }
}

async fn replay(
    args: &DlqReplayArgs,
    letters: &DeadLetters,
    places: &[Place],
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    let group = &args.target.group;
    let Some(id) = &args.id else {
        // One line per category, the partitions of a partitioned one added up.
        for category in by_category(places) {
            let (mut replayed, mut left) = (0, 0);
            for place in category {
                replayed += letters.replay_all(&place.tag, group).await?;
                left += letters.len(&place.tag, group).await?;
            }
            let line = Replayed {
                category: &category[0].category,
                partition: None,
                group,
                replayed,
                left: Some(left),
                id: None,
                entry_id: None,
            };
            say_json(out, &line)?;
        }
        return Ok(ExitCode::SUCCESS);
    };

    let not_replayable = |problem: String| Error::DeadLetter {
        id: id.clone(),
        group: group.clone(),
        problem,
    };
    let (place, letter) = find(letters, places, group, id).await?;
    if letter.envelope().is_none() {
        return Err(not_replayable(format!(
            "in `{}` holds no event envelope and cannot be replayed",
            place.name()
        )));
    }
    // Back onto the stream it came from: a partition's dead letter to that partition.
    let Some(entry_id) = letters.replay(&place.tag, group, id).await? else {
        return Err(not_replayable(format!(
            "in `{}` was removed meanwhile (replayed by someone else?)",
            place.name()
        )));
    };
    let line = Replayed {
        category: &place.category,
        partition: place.partition,
        group,
        replayed: 1,
        left: None,
        id: Some(id),
        entry_id: Some(&entry_id),
    };
    say_json(out, &line)?;
    Ok(ExitCode::SUCCESS)
}

/// The place holding the dead letter `id` of `group`, and the dead letter: it must be in exactly
/// one of `places` (ids of different streams may be equal).
async fn find<'a>(
    letters: &DeadLetters,
    places: &'a [Place],
    group: &str,
    id: &str,
) -> Result<(&'a Place, DeadLetter), Error> {
    let mut holding = Vec::new();
    for place in places {
        if let Some(letter) = letters.get(&place.tag, group, id).await? {
            holding.push((place, letter));
        }
    }
    if holding.len() == 1
        && let Some(found) = holding.pop()
    {
        return Ok(found);
    }
    let problem = if holding.is_empty() {
        let names: Vec<&str> = places.iter().map(Place::name).collect();
        format!("does not exist in {}", named_categories(&names))
    } else {
        let names: Vec<&str> = holding.iter().map(|(place, _)| place.name()).collect();
        let partitions = holding.iter().any(|(place, _)| place.partition.is_some());
        format!(
            "exists in {}; say which with --category{}",
            named_categories(&names),
            if partitions {
                " (`<category>#<p>` names partition p)"
            } else {
                ""
            }
        )
    };
    Err(Error::DeadLetter {
        id: id.to_owned(),
        group: group.to_owned(),
        problem,
    })
}

/// ``category `a` `` or ``categories `a`, `b` ``.
fn named_categories(names: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.as_slice() {
        [one] => format!("category {one}"),
        _ => format!("categories {}", quoted.join(", ")),
    }
}

/// One line of `dlq delete`.
#[derive(serde::Serialize)]
struct Deleted<'a> {
    category: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<u32>,
    group: &'a str,
    id: &'a str,
    deleted: bool,
}

async fn delete(
    args: &DlqDeleteArgs,
    letters: &DeadLetters,
    places: &[Place],
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    let group = &args.target.group;
    // Every id is looked up first, so that a mistyped one deletes nothing.
    let mut found = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        let (place, _) = find(letters, places, group, id).await?;
        found.push((place, id.as_str()));
    }
    for (place, id) in found {
        let deleted = letters.delete(&place.tag, group, id).await?;
        let line = Deleted {
            category: &place.category,
            partition: place.partition,
            group,
            id,
            deleted,
        };
        say_json(out, &line)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `dlq purge`.
#[derive(serde::Serialize)]
struct Purged<'a> {
    category: &'a str,
    group: &'a str,
    purged: u64,
}

async fn purge(
    args: &DlqPurgeArgs,
    letters: &DeadLetters,
    places: &[Place],
    out: &mut dyn Write,
) -> Result<ExitCode, Error> {
    let group = &args.target.group;
    // One line (and one count) per category, the partitions of a partitioned one added up.
    if !args.yes {
        let mut counts = Vec::new();
        for category in by_category(places) {
            let mut count = 0;
            for place in category {
                count += letters.len(&place.tag, group).await?;
            }
            counts.push((category[0].category.clone(), count));
        }
        if counts.iter().any(|(_, count)| *count > 0) {
            return Err(Error::PurgeUnconfirmed {
                group: group.clone(),
                counts,
            });
        }
    }
    for category in by_category(places) {
        let mut purged = 0;
        if args.yes {
            for place in category {
                purged += letters.purge(&place.tag, group).await?;
            }
        }
        let line = Purged {
            category: &category[0].category,
            group,
            purged,
        };
        say_json(out, &line)?;
    }
    Ok(ExitCode::SUCCESS)
}
