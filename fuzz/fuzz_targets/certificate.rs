#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::certificate`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::certificate::run(data));
