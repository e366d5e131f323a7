//! The macros' compile errors, as users see them (`tests/ui/*.stderr`). Create or update the
//! expected output with `TRYBUILD=overwrite cargo test -p domain-events-tests --test compile_fail`
//! and review the diff. Detailed schema errors are covered in-process by the schema crate's
//! diagnostics snapshots; these cases check that the macro carries them to rustc intact.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
