//! Reading a schema folder: every `*.toml` file directly inside it, in name order.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostics, SourceFile};
use crate::raw::RawFile;

/// A file read and parsed as TOML (it may still break the schema rules).
#[derive(Debug)]
pub struct LoadedFile {
    /// The file's text and names.
    pub source: SourceFile,
    /// The parsed content, or `None` when TOML parsing failed (already reported).
    pub raw: Option<RawFile>,
}

/// Reads every `*.toml` file in `dir`, naming them in messages as `display_dir/<file>` (the folder
/// as the user wrote it). Problems (unreadable folder or file, TOML syntax, unknown keys, wrong
/// value types) are reported into `diags`; every file is tried.
pub fn load_dir(dir: &Path, display_dir: &Path, diags: &mut Diagnostics) -> Vec<LoadedFile> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diags.error_at_path(
                display_dir,
                format!("cannot read the schema folder: {e}"),
                Some("pass the folder that holds the `*.toml` schema files".into()),
            );
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        diags.error_at_path(
            display_dir,
            "the schema folder holds no `*.toml` file",
            Some("declare each category in its own file, e.g. `image.toml`".into()),
        );
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let display = display_path(&display_dir.join(path.file_name()?));
            load_file(&path, display, diags)
        })
        .collect()
}

/// Reads and parses one file. Returns `None` only when it cannot be read at all.
pub fn load_file(path: &Path, display: String, diags: &mut Diagnostics) -> Option<LoadedFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.error_at_path(
                Path::new(&display),
                format!("cannot read the schema file: {e}"),
                None,
            );
            return None;
        }
    };
    Some(parse_source(
        SourceFile::new(path.to_path_buf(), display, text),
        diags,
    ))
}

/// Parses a file's text as TOML into the raw model, reporting syntax and shape errors.
pub fn parse_source(source: SourceFile, diags: &mut Diagnostics) -> LoadedFile {
    match toml::from_str::<RawFile>(&source.text) {
        Ok(raw) => LoadedFile {
            source,
            raw: Some(raw),
        },
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = first_line(e.message());
            diags.error_help(&source, span, message, toml_help(e.message()));
            LoadedFile { source, raw: None }
        }
    }
}

fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    let line = line.strip_suffix('.').unwrap_or(line);
    let mut chars = line.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "invalid TOML".into(),
    }
}

fn toml_help(message: &str) -> String {
    if message.contains("unknown field") {
        "see docs/schema-language.md for the keys each table accepts".into()
    } else if message.contains("missing field") {
        "add the missing key; docs/schema-language.md lists the required ones".into()
    } else {
        "fix the TOML at this position; docs/schema-language.md shows a complete file".into()
    }
}

/// `path` with `/` separators and without leading `./`.
pub fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    let text = shown.display().to_string();
    if std::path::MAIN_SEPARATOR == '/' {
        text
    } else {
        text.replace(std::path::MAIN_SEPARATOR, "/")
    }
}
