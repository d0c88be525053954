//! Fuzz target: see `admin_push::fuzzing::token` for the input and what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| admin_push::fuzzing::token(data));
