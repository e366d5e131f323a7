//! `domain-events export`: write (or `--check`) the JSON Schema export of a schema folder.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use domain_events_schema::{DEFAULT_SCHEMA_ID_BASE, ExportSettings, export};

use crate::{Error, SchemaArgs, say};

/// The options of `domain-events export` (its help text is on [`crate::Command::Export`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The schema folder.
    #[command(flatten)]
    pub schema: SchemaArgs,

    /// Folder to write the export to (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Start of every schema's `$id`; a `/` is added when missing
    #[arg(long, value_name = "URI", default_value = DEFAULT_SCHEMA_ID_BASE)]
    pub id_base: String,

    /// Write nothing; fail unless the folder is exactly what export would write
    #[arg(long)]
    pub check: bool,
}

pub(crate) fn run(args: &ExportArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let mut id_base = args.id_base.clone();
    if !id_base.ends_with('/') {
        id_base.push('/');
    }
    let settings = ExportSettings::new().with_schema_id_base(id_base);
    let catalog = args.schema.load()?;
    let files = export::render(&catalog, &settings).len();
    let problems =
        export::check(&catalog, &settings, &args.out).map_err(|source| Error::Export {
            action: "read",
            out: args.out.clone(),
            source,
        })?;

    if args.check {
        if !problems.is_empty() {
            return Err(Error::OutOfDate {
                out: args.out.clone(),
                problems,
                fix: fix_command(args),
            });
        }
        say(
            out,
            format_args!(
                "ok: the export in {} is up to date ({files} files)",
                args.out.display()
            ),
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    // `export::write` deletes every `*.json` file it would not write; only do that in a folder
    // that an export wrote before.
    let stale = problems.iter().find(|(_, reason)| *reason == "stale");
    if let Some((example, _)) = stale.filter(|_| !args.out.join("index.json").is_file()) {
        return Err(Error::NotAnExport {
            out: args.out.clone(),
            example: example.clone(),
        });
    }

    export::write(&catalog, &settings, &args.out).map_err(|source| Error::Export {
        action: "write",
        out: args.out.clone(),
        source,
    })?;
    let tally = |reason: &str| problems.iter().filter(|(_, r)| *r == reason).count();
    let (created, updated, removed) = (tally("missing"), tally("differs"), tally("stale"));
    say(
        out,
        format_args!(
            "exported {} to {}: {files} files ({created} created, {updated} updated, {} unchanged, {removed} stale removed)",
            crate::check::summary(&catalog),
            args.out.display(),
            files - created - updated,
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The command line that brings `args.out` up to date.
fn fix_command(args: &ExportArgs) -> String {
    let mut command = format!(
        "domain-events export --schemas {} --out {}",
        args.schema.schemas.display(),
        args.out.display()
    );
    if args.id_base != DEFAULT_SCHEMA_ID_BASE {
        command.push_str(&format!(" --id-base {}", args.id_base));
    }
    command
}
