//! Log segment and snapshot decoding, and recovery from them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pookeeper_core::fuzzing::storage(data));
