//! The `mosaic` binary.
fn main() {}
