//! Criterion benchmarks for the Mosaic crates live in `benches/`; this library is empty.
#![forbid(unsafe_code)]
