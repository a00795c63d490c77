//! The library behind `cargo xtask`: building, verifying, packaging and signing the drivers, the
//! SDK header, the demo and the test sequence. The command line is declared in `xtask-cli`
//! (`xtask/cli`) and parsed by `main.rs`; the fuzz targets and tests reach the parsers (INF
//! linter, PE verifier, certificate readers) through here.

pub mod bench;
pub mod build;
#[cfg_attr(windows, path = "demo_unavailable.rs")]
pub mod demo;
pub mod fuzz;
pub mod image;
pub mod miri;
pub mod package;
pub mod sdk;
pub mod soak;
pub mod test;
pub mod tools;
