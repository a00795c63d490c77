#![no_main]
//! Fuzz target: see [`wanlayer_fuzz::wan_status`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| wanlayer_fuzz::wan_status::run(data));
