#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| logos_chat::core::fuzz::run("reliable", data));
