//! One connection's client byte stream (the seed corpus is recorded from
//! real clients: kazoo, zkCli.sh, cli_mt).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pookeeper_core::fuzzing::stream(data));
