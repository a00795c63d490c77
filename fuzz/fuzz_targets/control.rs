#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::control`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::control::run(data));
