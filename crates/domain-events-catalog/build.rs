// New schema files are not seen by the compiler's file tracking (it only knows files the macro
// read), so ask cargo to rebuild when anything in the folder changes.
fn main() {
    println!("cargo:rerun-if-changed=../../schemas");
}
