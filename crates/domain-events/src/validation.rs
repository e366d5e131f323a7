//! Constraint checks for payloads: every violation is collected, with the path of the value.
//!
//! Generated payload types implement [`Validate`]; the per-field work is done by [`Check`], which is
//! implemented once here for every type a schema can use, so generated code stays small.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::formats::{Date, Email, Timestamp, Url};

/// One broken constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the value sits in the payload, as a JSON pointer-like path (`publicUrls[2]`).
    pub path: String,
    /// What is wrong, in words (`must be at least 1 character long`).
    pub message: String,
}

/// A payload broke one or more of its schema's constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Every violation found, in field order.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if v.path.is_empty() {
                f.write_str(&v.message)?;
            } else {
                write!(f, "`{}` {}", v.path, v.message)?;
            }
        }
        Ok(())
    }
}

/// Where a value sits in a payload. Built on the stack and only rendered when a check fails, so
/// validating a valid payload allocates nothing.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root,
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    /// The payload itself.
    pub const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
    };

    /// The field `name` of the value at `self`.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Field(name),
        }
    }

    /// Element `index` of the list at `self`.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    /// Entry `key` of the map at `self`.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    fn render(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.render(out);
        }
        match self.segment {
            Segment::Root => {}
            Segment::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
            Segment::Key(k) => {
                out.push('[');
                out.push_str(&format!("{k:?}"));
                out.push(']');
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.render(&mut out);
        f.write_str(&out)
    }
}

/// Collects violations while a payload is checked.
#[derive(Debug, Default)]
pub struct Validator {
    violations: Vec<Violation>,
}

impl Validator {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the value at `path` breaks a constraint.
    pub fn report(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.violations.push(Violation {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// `Ok` when nothing was reported.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                violations: self.violations,
            })
        }
    }
}

/// A type whose values can be checked against their schema's constraints.
pub trait Validate {
    /// Checks `self`, reporting every violation into `v` under `path`.
    fn validate_into(&self, v: &mut Validator, path: &Path<'_>);

    /// Checks `self` and returns every violation.
    fn validate(&self) -> Result<(), ValidationError> {
        let mut v = Validator::new();
        self.validate_into(&mut v, &Path::ROOT);
        v.finish()
    }
}

/// A numeric bound of a `min` or `max` constraint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// An integer bound.
    Int(i128),
    /// A floating-point bound.
    Float(f64),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Int(i) => write!(f, "{i}"),
            Bound::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A regular expression of a `pattern` constraint, compiled on first use.
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    /// A pattern that compiles `source` the first time it is used.
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The pattern's text.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Whether `text` matches. A pattern that does not compile matches nothing (the schema
    /// compiler rejects such patterns, so this only guards hand-written uses).
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled
            .get_or_init(|| Regex::new(self.source).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

/// The constraints a schema declares on one field.
#[derive(Debug)]
pub struct Constraints {
    /// Inclusive lower bound of a number.
    pub min: Option<Bound>,
    /// Inclusive upper bound of a number.
    pub max: Option<Bound>,
    /// Least number of characters of a string.
    pub min_length: Option<u64>,
    /// Greatest number of characters of a string.
    pub max_length: Option<u64>,
    /// A regular expression strings must match.
    pub pattern: Option<&'static Pattern>,
    /// Least number of items of a list.
    pub min_items: Option<u64>,
    /// Greatest number of items of a list.
    pub max_items: Option<u64>,
}

impl Constraints {
    /// No constraint at all.
    pub const NONE: Constraints = Constraints {
        min: None,
        max: None,
        min_length: None,
        max_length: None,
        pattern: None,
        min_items: None,
        max_items: None,
    };

    /// The constraints that apply to each element of a constrained collection.
    const fn for_items(&self) -> Constraints {
        Constraints {
            min_items: None,
            max_items: None,
            ..*self
        }
    }
}

// `Constraints` holds only `Copy` data; spelled out because `Option<&Pattern>` is `Copy` too.
impl Clone for Constraints {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for Constraints {}

/// A value that can be checked against a field's [`Constraints`].
pub trait Check {
    /// Checks `self` against `c`, reporting violations under `path`.
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        let _ = (v, path, c);
    }
}

fn check_str(text: &str, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
    if c.min_length.is_some() || c.max_length.is_some() {
        let len = text.chars().count() as u64;
        if let Some(min) = c.min_length.filter(|&min| len < min) {
            v.report(
                path,
                format!("must be at least {min} character{} long", plural(min)),
            );
        }
        if let Some(max) = c.max_length.filter(|&max| len > max) {
            v.report(
                path,
                format!("must be at most {max} character{} long", plural(max)),
            );
        }
    }
    if let Some(pattern) = c.pattern
        && !pattern.is_match(text)
    {
        v.report(
            path,
            format!("must match the pattern `{}`", pattern.source()),
        );
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn check_int(value: i128, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
    let below = |b: &Bound| match *b {
        Bound::Int(b) => value < b,
        Bound::Float(b) => (value as f64) < b,
    };
    let above = |b: &Bound| match *b {
        Bound::Int(b) => value > b,
        Bound::Float(b) => (value as f64) > b,
    };
    if let Some(min) = c.min.as_ref().filter(|b| below(b)) {
        v.report(path, format!("must be at least {min}"));
    }
    if let Some(max) = c.max.as_ref().filter(|b| above(b)) {
        v.report(path, format!("must be at most {max}"));
    }
}

impl Check for str {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        check_str(self, v, path, c);
    }
}

impl Check for String {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        check_str(self, v, path, c);
    }
}

macro_rules! check_as_str {
    ($($t:ty),*) => {$(
        impl Check for $t {
            fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
                check_str(self.as_str(), v, path, c);
            }
        }
    )*};
}
check_as_str!(Timestamp, Date, Url, Email);

impl Check for i64 {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        check_int(i128::from(*self), v, path, c);
    }
}

impl Check for u64 {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        check_int(i128::from(*self), v, path, c);
    }
}

impl Check for f64 {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        if !self.is_finite() {
            v.report(path, "must be a finite number");
            return;
        }
        let as_f64 = |b: &Bound| match *b {
            Bound::Int(i) => i as f64,
            Bound::Float(x) => x,
        };
        if let Some(min) = c.min.as_ref().filter(|b| *self < as_f64(b)) {
            v.report(path, format!("must be at least {min}"));
        }
        if let Some(max) = c.max.as_ref().filter(|b| *self > as_f64(b)) {
            v.report(path, format!("must be at most {max}"));
        }
    }
}

impl Check for bool {}
impl Check for uuid::Uuid {}

impl<T: Check> Check for Option<T> {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        if let Some(inner) = self {
            inner.check(v, path, c);
        }
    }
}

impl<T: Check> Check for Vec<T> {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        let len = self.len() as u64;
        if let Some(min) = c.min_items.filter(|&min| len < min) {
            v.report(
                path,
                format!("must have at least {min} item{}", plural(min)),
            );
        }
        if let Some(max) = c.max_items.filter(|&max| len > max) {
            v.report(path, format!("must have at most {max} item{}", plural(max)));
        }
        let items = c.for_items();
        for (i, item) in self.iter().enumerate() {
            item.check(v, &path.index(i), &items);
        }
    }
}

impl<T: Check> Check for BTreeMap<String, T> {
    fn check(&self, v: &mut Validator, path: &Path<'_>, c: &Constraints) {
        let items = c.for_items();
        for (key, value) in self {
            value.check(v, &path.key(key), &items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CURRENCY: Pattern = Pattern::new("^[A-Z]{3}$");

    fn run(f: impl FnOnce(&mut Validator)) -> Vec<String> {
        let mut v = Validator::new();
        f(&mut v);
        match v.finish() {
            Ok(()) => vec![],
            Err(e) => e
                .violations
                .into_iter()
                .map(|x| format!("{}: {}", x.path, x.message))
                .collect(),
        }
    }

    #[test]
    fn strings_numbers_and_lists() {
        let c = Constraints {
            min_length: Some(1),
            pattern: Some(&CURRENCY),
            ..Constraints::NONE
        };
        let root = Path::ROOT;
        let got = run(|v| "".check(v, &root.field("currency"), &c));
        assert_eq!(
            got,
            vec![
                "currency: must be at least 1 character long",
                "currency: must match the pattern `^[A-Z]{3}$`"
            ]
        );
        assert!(run(|v| "EUR".check(v, &root.field("currency"), &c)).is_empty());

        let c = Constraints {
            min: Some(Bound::Int(2)),
            ..Constraints::NONE
        };
        assert_eq!(
            run(|v| 1u64.check(v, &root.field("n"), &c)),
            vec!["n: must be at least 2"]
        );
        assert!(run(|v| 2u64.check(v, &root.field("n"), &c)).is_empty());

        let c = Constraints {
            min_items: Some(1),
            min_length: Some(2),
            ..Constraints::NONE
        };
        let empty: Vec<String> = vec![];
        assert_eq!(
            run(|v| empty.check(v, &root.field("locales"), &c)),
            vec!["locales: must have at least 1 item"]
        );
        let list = vec!["en".to_owned(), "x".to_owned()];
        assert_eq!(
            run(|v| list.check(v, &root.field("locales"), &c)),
            vec!["locales[1]: must be at least 2 characters long"]
        );
    }

    #[test]
    fn optional_values_are_checked_only_when_present() {
        let c = Constraints {
            max: Some(Bound::Int(10)),
            ..Constraints::NONE
        };
        let none: Option<i64> = None;
        assert!(run(|v| none.check(v, &Path::ROOT.field("p"), &c)).is_empty());
        assert_eq!(
            run(|v| Some(11i64).check(v, &Path::ROOT.field("p"), &c)),
            vec!["p: must be at most 10"]
        );
    }

    #[test]
    fn non_finite_floats_are_rejected() {
        assert_eq!(
            run(|v| f64::NAN.check(v, &Path::ROOT.field("x"), &Constraints::NONE)),
            vec!["x: must be a finite number"]
        );
    }
}
