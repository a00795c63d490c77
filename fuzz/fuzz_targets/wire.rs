#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::wire`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::wire::run(data));
