//! `domain-events check`: load and validate a schema folder.

use std::io::Write;
use std::process::ExitCode;

use domain_events_schema::Catalog;

use crate::{Error, SchemaArgs, say};

/// The options of `domain-events check` (its help text is on [`crate::Command::Check`]).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The schema folder.
    #[command(flatten)]
    pub schema: SchemaArgs,
}

pub(crate) fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let catalog = args.schema.load()?;
    say(out, format_args!("ok: {}", summary(&catalog)))?;
    Ok(ExitCode::SUCCESS)
}

/// `N events in M categories`, counting events (not their older versions).
pub(crate) fn summary(catalog: &Catalog) -> String {
    let events = catalog.events().count();
    let categories = catalog.categories.len();
    format!(
        "{events} {} in {categories} {}",
        plural(events, "event", "events"),
        plural(categories, "category", "categories"),
    )
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
