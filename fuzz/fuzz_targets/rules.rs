#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::rules`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::rules::run(data));
