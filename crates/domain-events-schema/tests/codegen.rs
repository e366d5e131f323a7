//! Snapshots of what `tests/fixtures/good/shop.toml` generates: the Rust code (formatted) and the
//! JSON Schema export. The workspace tests compile `tests/snapshots/shop.rs` and exercise it.
//! Update with `EXPECTORATE=overwrite cargo test -p domain-events-schema`; review the diff.

use std::path::Path;

use domain_events_schema::{Catalog, CodegenSettings, ExportSettings, export};

fn fixture() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good");
    Catalog::load_as(&dir, Path::new("good")).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn generated_code_snapshot() {
    let tokens = fixture().generate(&CodegenSettings::new());
    let file: syn::File = syn::parse2(tokens).expect("generated code parses as a Rust file");
    let text = format!(
        "// This file is @generated from tests/fixtures/good/shop.toml by the codegen snapshot test.\n\
         // Do not edit: run `EXPECTORATE=overwrite cargo test -p domain-events-schema`.\n\n\
         // The generator's own formatting (prettyplease) is the snapshot; rustfmt leaves it alone.\n\
         #![cfg_attr(rustfmt, rustfmt::skip)]\n\n{}",
        prettyplease::unparse(&file)
    );
    expectorate::assert_contents(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/shop.rs"),
        &text,
    );
}

#[test]
fn export_snapshot() {
    let files = export::render(&fixture(), &ExportSettings::new());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/shop-export");
    for (rel, text) in &files {
        expectorate::assert_contents(root.join(rel), text);
    }
    // Older versions sit beside the latest, with the version in the file name.
    assert!(files.contains_key("shop/order_placed.payload.schema.json"));
    assert!(files.contains_key("shop/order_placed.v1.payload.schema.json"));
    // index + (payload, envelope) for 3 versions at their versioned paths + 2 latest aliases,
    // asyncapi.json, catalog.md and typescript/{index.d.ts, index.js, package.json}.
    assert_eq!(files.len(), 1 + 2 * 3 + 2 * 2 + 2 + 3);
    for rel in [
        "asyncapi.json",
        "catalog.md",
        "typescript/index.d.ts",
        "typescript/index.js",
    ] {
        assert!(files.contains_key(rel), "{rel}");
    }
}

#[test]
fn generation_is_deterministic() {
    let a = fixture().generate(&CodegenSettings::new()).to_string();
    let b = fixture().generate(&CodegenSettings::new()).to_string();
    assert_eq!(a, b);
}

#[test]
fn crate_path_is_configurable() {
    let code = fixture()
        .generate(&CodegenSettings::new().with_crate_path("::my_events"))
        .to_string();
    assert!(code.contains(":: my_events :: __private"));
    assert!(!code.contains("domain_events"));
}
