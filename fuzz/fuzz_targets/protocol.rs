//! The headline target: a Server fed arbitrary event sequences (raw bytes,
//! well-formed handshakes and requests on several connections, peers going
//! away, time passing, durability reports), invariants checked after each.
#![no_main]
libfuzzer_sys::fuzz_target!(|steps: Vec<pookeeper_core::fuzzing::Step>| {
    pookeeper_core::fuzzing::protocol(&steps)
});
