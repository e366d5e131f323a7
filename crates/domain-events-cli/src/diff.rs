//! `domain-events diff`: the compatibility check between two schema folders.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use domain_events_schema::diff::diff;

use crate::{Error, SchemaArgs, say};

/// The options of `domain-events diff` (its help text is on [`crate::Command::Diff`]).
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// Schema folder before the change (e.g. checked out from the previous commit)
    #[arg(long, value_name = "DIR")]
    pub old: PathBuf,

    /// Schema folder after the change
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub new: PathBuf,

    /// Print the changes as JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let old = SchemaArgs {
        schemas: args.old.clone(),
    }
    .load()?;
    let new = SchemaArgs {
        schemas: args.new.clone(),
    }
    .load()?;
    let result = diff(&old, &new);
    if args.json {
        say(out, format_args!("{:#}", result.to_json()))?;
    } else {
        write!(out, "{}", result.table()).map_err(Error::Output)?;
    }
    Ok(if result.has_violations() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
