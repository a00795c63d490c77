#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::inf_lint`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::inf_lint::run(data));
