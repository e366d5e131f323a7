//! Diagnostics: every problem found in a schema folder, with file, line and column.
//!
//! Validators push into a [`Diagnostics`] collector and never stop at the first problem; the
//! caller renders all of them at once. There is one renderer, used by the macro, the CLI and the
//! xtask alike.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as shown to people (relative to the display root when possible).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong: lowercase, no trailing period, names in backticks.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// `file:line:col: message` and the help line, without the `error:` tag: for tools that add
    /// their own (rustc, in the proc macro).
    pub fn located(&self) -> String {
        let mut text = format!(
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        );
        if let Some(help) = &self.help {
            text.push_str("\n  help: ");
            text.push_str(help);
        }
        text
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// A schema file's text, kept to turn byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where the file is on disk.
    pub path: PathBuf,
    /// The path as shown in messages.
    pub display: String,
    /// The file's contents.
    pub text: String,
}

impl SourceFile {
    /// Wraps `text` read from `path`; `display` is what messages show.
    pub fn new(path: PathBuf, display: String, text: String) -> Self {
        Self {
            path,
            display,
            text,
        }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// The collector. Problems are pushed as they are found; [`Diagnostics::finish`] says whether
/// there were any.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at `span` (a byte range) of `file`.
    pub fn error(&mut self, file: &SourceFile, span: Range<usize>, message: impl Into<String>) {
        self.push(file, span, message.into(), None);
    }

    /// Records a problem with advice on how to fix it.
    pub fn error_help(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(file, span, message.into(), Some(help.into()));
    }

    /// Records a problem that belongs to no position in a file (a folder that cannot be read).
    pub fn error_at_path(&mut self, path: &Path, message: impl Into<String>, help: Option<String>) {
        self.items.push(Diagnostic {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            message: message.into(),
            help,
        });
    }

    fn push(
        &mut self,
        file: &SourceFile,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) {
        let (line, column) = file.line_col(span.start);
        self.items.push(Diagnostic {
            file: file.display.clone(),
            line,
            column,
            message,
            help,
        });
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The problems, sorted by file, line and column.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// `Ok` when nothing was recorded, otherwise every problem sorted by position.
    pub fn finish(mut self) -> Result<(), Diagnostics> {
        if self.items.is_empty() {
            Ok(())
        } else {
            self.items
                .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
            self.items.dedup();
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `wrong`, for "did you mean" advice.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::normalized_damerau_levenshtein(&wrong.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let f = SourceFile::new("x.toml".into(), "x.toml".into(), "a = 1\nbé = 2\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(9), (2, 3)); // after the two-byte `é`
    }

    #[test]
    fn rendering() {
        let f = SourceFile::new("x.toml".into(), "schemas/x.toml".into(), "a = 1\n".into());
        let mut d = Diagnostics::new();
        d.error_help(&f, 4..5, "bad `a`", "use `b`");
        let err = d.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "schemas/x.toml:1:5: error: bad `a`\n  help: use `b`"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("variationID", ["variationId", "variationName"]),
            Some("variationId")
        );
        assert_eq!(did_you_mean("zzz", ["variationId"]), None);
        assert_eq!(did_you_mean("ulr", ["uuid", "url", "uint"]), Some("url"));
    }
}
