//! Every folder under `tests/fixtures/bad/` is a broken schema folder; its rendered diagnostics
//! (all of them, `file:line:col: error: ...`) are compared with `tests/fixtures/bad/<case>.txt`.
//! Update the expectations with `EXPECTORATE=overwrite cargo test -p domain-events-schema`.

use std::path::{Path, PathBuf};

use domain_events_schema::Catalog;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

fn render(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    match Catalog::load_as(dir, Path::new(&format!("bad/{name}"))) {
        Ok(_) => panic!("{name}: the broken schema was accepted"),
        Err(diags) => format!("{diags}\n"),
    }
}

#[test]
fn every_broken_folder_matches_its_expected_diagnostics() {
    let cases = cases();
    assert!(
        cases.len() >= 12,
        "expected at least 12 error cases, found {}",
        cases.len()
    );
    for dir in cases {
        let expected = dir.with_extension("txt");
        expectorate::assert_contents(&expected, &render(&dir));
    }
}

#[test]
fn every_diagnostic_names_file_line_and_column() {
    for dir in cases() {
        let out = render(&dir);
        for line in out.lines().filter(|l| !l.starts_with("  help:")) {
            let mut parts = line.splitn(4, ':');
            let (file, l, c) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert!(file.starts_with("bad/"), "{line}");
            assert!(
                l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
                "{line}"
            );
            assert!(parts.next().unwrap().starts_with(" error: "), "{line}");
        }
    }
}

#[test]
fn errors_of_all_files_are_reported_together() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/errors_in_every_file");
    let out = render(&dir);
    for file in ["analytics.toml", "broken.toml", "seo.toml"] {
        assert!(
            out.contains(&format!("errors_in_every_file/{file}:")),
            "{file} missing from:\n{out}"
        );
    }
}

#[test]
fn the_distinct_error_classes_are_covered() {
    // One phrase per class of error; each must occur in some expected output.
    let all: String = cases().iter().map(|d| render(d)).collect();
    let classes = [
        "unclosed table",                 // TOML syntax
        "inline table is never closed",   // TOML syntax, reported at the opening brace
        "did you mean `idempotency_key`", // unknown key, with the closest known one
        "unknown key",                    // unknown key
        "does not match the file name",   // category vs file
        "is not lower snake_case",        // event name
        "is not lowerCamelCase",          // field name
        "is not UpperCamelCase",          // type name
        "unknown type",                   // type
        "which is not a payload field",   // key reference
        "which is optional",              // optional key / correlation field
        "has no single text form",        // non-scalar key / correlation field
        "is never closed",                // malformed template
        "references no field",            // constant key
        "are not separated by a `:`",     // ambiguous key: two references without `:` between
        "has no correlation field",       // missing correlation
        "already defines",                // Rust name collision across files
        "both become the Rust field",     // field collision
        "is greater than its",            // min > max
        "does not apply to",              // constraint on the wrong type
        "not a valid regular expression", // bad pattern
        "is negative",                    // negative length / uint bound
        "is not a whole number",          // float bound on an integer
        "needs its `values`",             // enum without values
        "is listed twice",                // duplicate enum value
        "both become the Rust variant",   // enum variant collision
        "is not a positive integer",      // version 0
        "must be a whole number from 1",  // bad older version
        "contains itself",                // recursive types
        "holds no `*.toml` file",         // empty folder
        "declares no events",             // no events
        "declares no `idempotency_key`",  // missing key
    ];
    let missing: Vec<_> = classes.iter().filter(|c| !all.contains(*c)).collect();
    assert!(missing.is_empty(), "no fixture covers: {missing:?}\n{all}");
}

#[test]
fn every_mistake_of_two_files_is_reported_in_one_run() {
    // `many_mistakes/` holds 21 independent mistakes over two files. A misspelled key must not
    // hide the rest of its file, and later checks (types, constraints, keys, correlation) must run
    // on everything that parsed. Each entry: file, line, and a phrase of the message.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/many_mistakes");
    let out = render(&dir);
    let expected: &[(&str, usize, &str)] = &[
        ("image.toml", 3, "version 0 is not a positive integer"),
        ("image.toml", 6, "unknown key `idempotency_kye`"),
        (
            "image.toml",
            6,
            "references `variationID`, which is not a payload field",
        ),
        ("image.toml", 9, "unknown key `descripton`"),
        (
            "image.toml",
            10,
            "`min` of `width` is greater than its `max`",
        ),
        ("image.toml", 11, "unknown type `strng`"),
        ("image.toml", 12, "`pattern` does not apply to `code`"),
        (
            "image.toml",
            13,
            "field name `error_code` is not lowerCamelCase",
        ),
        (
            "image.toml",
            15,
            "event name `VariationFailed` is not lower snake_case",
        ),
        ("image.toml", 17, "enum value `oom` is listed twice"),
        ("image.toml", 20, "are not separated by a `:`"),
        ("image.toml", 22, "unknown type `strng2`"),
        (
            "image.toml",
            22,
            "`pattern` of `sha` is not a valid regular expression",
        ),
        (
            "seo.toml",
            1,
            "category `search` does not match the file name",
        ),
        ("seo.toml", 2, "unknown key `corelation`"),
        ("seo.toml", 5, "references `locale`, which is optional"),
        ("seo.toml", 6, "unknown key `deprecatd`"),
        ("seo.toml", 7, "unknown type `strin`"),
        ("seo.toml", 10, "the idempotency key references no field"),
        (
            "seo.toml",
            11,
            "`min` of the integer field `score` is not a whole number",
        ),
        ("seo.toml", 13, "type `Page` contains itself"),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(file, line, phrase)| {
            !out.lines().any(|l| {
                l.starts_with(&format!("bad/many_mistakes/{file}:{line}:")) && l.contains(phrase)
            })
        })
        .map(|(file, line, phrase)| format!("{file}:{line}: {phrase}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} mistakes reported; missing:\n{}\n\nreported:\n{out}",
        expected.len() - missing.len(),
        expected.len(),
        missing.join("\n")
    );
    // Misspelled keys name the key they were probably meant to be.
    for hint in [
        "did you mean `idempotency_key`?",
        "did you mean `description`?",
        "did you mean `correlation`?",
        "did you mean `deprecated`?",
        "did you mean `string`?",
        "did you mean `variationId`?",
    ] {
        assert!(out.contains(hint), "no `{hint}` in:\n{out}");
    }
    // A field whose type is unknown is not reported again by the checks that need its type.
    assert!(
        !out.contains("references `label`"),
        "the key and correlation checks cascaded from the unknown type of `label`:\n{out}"
    );
}
