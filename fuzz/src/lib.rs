//! The bodies of wanlayer's fuzz targets (`fuzz_targets/*.rs` are one-line wrappers) and the
//! seed inputs each starts from (`examples/seed.rs` writes them to `corpus/<target>/`).
//!
//! Every target states its invariants in its module doc; a broken invariant panics, which
//! libFuzzer reports as a crash. `cargo xtask fuzz` builds and runs them all.

pub mod bytes;
pub mod certificate;
pub mod control;
pub mod image;
pub mod inf_lint;
pub mod proto;
pub mod rules;
pub mod seeds;
pub mod wan_status;
pub mod wire;

/// Target names, as `fuzz_targets/<name>.rs` and `corpus/<name>/` spell them.
pub const TARGETS: &[&str] = &["proto", "wire", "control", "wan_status", "inf_lint", "verify_image", "certificate", "rules"];
