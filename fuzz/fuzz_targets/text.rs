//! The seed's text protocol on a connection, fed in pieces.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pookeeper_core::fuzzing::text(data));
