//! Jute decoding of every request record, handshakes and transactions.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pookeeper_core::fuzzing::jute(data));
