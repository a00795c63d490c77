#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::proto`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::proto::run(data));
