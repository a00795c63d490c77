#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::image`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::image::run(data));
