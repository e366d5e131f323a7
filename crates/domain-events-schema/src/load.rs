//! Reading a schema folder: every `*.toml` file directly inside it, in name order.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostics, SourceFile};
use serde::Deserialize;
use toml::de::DeTable;

use crate::raw::RawFile;
use crate::shape;

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

/// Parses a file's text as TOML into the raw model. A syntax error is reported and leaves the
/// file unchecked; otherwise every unknown key and wrongly typed value is reported (see
/// `shape.rs`) and the rest of the file is read, so validation can go on.
pub fn parse_source(source: SourceFile, diags: &mut Diagnostics) -> LoadedFile {
    let raw = parse_raw(&source, diags);
    LoadedFile { source, raw }
}

fn parse_raw(source: &SourceFile, diags: &mut Diagnostics) -> Option<RawFile> {
    let mut root = match DeTable::parse(&source.text) {
        Ok(root) => root,
        Err(e) => {
            syntax_error(source, &e, diags);
            return None;
        }
    };
    shape::check_file(source, root.get_mut(), diags);
    match RawFile::deserialize(toml::de::Deserializer::from(root)) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            diags.error_help(
                source,
                span,
                first_line(e.message()),
                toml_help(e.message()),
            );
            None
        }
    }
}

/// Reports a TOML syntax error. An unclosed inline table or array is only noticed where the parser
/// gives up (often the next line, or the end of the file); the message then points at the
/// opening bracket and says where the parser stopped.
fn syntax_error(source: &SourceFile, e: &toml::de::Error, diags: &mut Diagnostics) {
    let span = e.span().unwrap_or(0..0);
    let message = first_line(e.message());
    let (line, column) = source.line_col(span.start);
    let at_end = span.start >= source.text.trim_end().len();
    // Only a bracket opened on an earlier line (or an error at the end of the file) is the cause;
    // an error inside a bracket on its own line is reported where the parser saw it.
    let unclosed = unclosed_bracket(&source.text, span.start)
        .filter(|open| at_end || source.line_col(*open).0 < line);
    if let Some(open) = unclosed {
        let noticed = if at_end {
            "at the end of the file".to_owned()
        } else {
            format!("at {line}:{column}")
        };
        let kind = if source.text[open..].starts_with('{') {
            "inline table"
        } else {
            "array"
        };
        let close = if kind == "inline table" { '}' } else { ']' };
        diags.error_help(
            source,
            open..open + 1,
            format!("this {kind} is never closed (the TOML parser noticed {noticed}: {message})"),
            format!("close it with `{close}` after its last element"),
        );
        return;
    }
    diags.error_help(source, span, message, toml_help(e.message()));
}

/// The byte offset of the last `{` or `[` that is opened in a value (after `=`) before `offset`
/// and not closed, ignoring strings and comments. Table headers (`[a.b]` at a line start) are not
/// values and are skipped.
fn unclosed_bracket(text: &str, offset: usize) -> Option<usize> {
    let mut stack: Vec<usize> = Vec::new();
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut i = 0;
    let mut in_value = false;
    while i < end {
        match bytes[i] {
            b'#' => {
                while i < end && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                let triple = bytes[i..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" });
                let step = if triple { 3 } else { 1 };
                i += step;
                while i < end {
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == q && (!triple || bytes[i..].starts_with(&[q, q, q])) {
                        i += step;
                        break;
                    }
                    if !triple && bytes[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'=' => in_value = true,
            b'\n' if stack.is_empty() => in_value = false,
            b'{' | b'[' if in_value => stack.push(i),
            b'}' | b']' if in_value => {
                stack.pop();
                if stack.is_empty() {
                    in_value = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack.last().copied()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        let mut diags = Diagnostics::new();
        let source = SourceFile::new("x.toml".into(), "x.toml".into(), text.into());
        assert!(parse_source(source, &mut diags).raw.is_none());
        diags.finish().unwrap_err().to_string()
    }

    #[test]
    fn an_unclosed_inline_table_is_reported_at_its_brace() {
        let out = errors("category = \"a\"\nfields = { a = \"string\"\n\n[events.b]\n");
        assert!(out.starts_with("x.toml:2:10: error: this inline table is never closed (the TOML parser noticed at 4:1"), "{out}");
        let out = errors("category = \"a\"\nvalues = [\"x\", \"y\"");
        assert!(out.starts_with("x.toml:2:10: error: this array is never closed (the TOML parser noticed at the end of the file"), "{out}");
    }

    #[test]
    fn brackets_in_strings_comments_and_headers_are_not_counted() {
        let text = "a = \"{[\" # {\n[t]\nb = '{'\nc = { d = \"}\" }\n";
        assert_eq!(unclosed_bracket(text, text.len()), None);
        assert_eq!(unclosed_bracket("a = { b = [1, 2]", 16), Some(4));
    }

    #[test]
    fn an_error_inside_a_one_line_table_is_reported_where_it_is() {
        let out = errors("category = \"a\"\nfields = { a = }\n");
        assert!(out.starts_with("x.toml:2:"), "{out}");
        assert!(!out.contains("never closed"), "{out}");
    }
}
