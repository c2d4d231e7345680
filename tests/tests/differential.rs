//! The differential test: the same scripted request sequence against Apache
//! ZooKeeper 3.8 (Debian package, started here on a loopback port) and
//! against pookeeper; transcripts must agree after normalising zxids, times
//! and session ids (tests/python/differential.py lists the deliberate
//! differences).

use pookeeper_tests::{require, run_python, zookeeper_installed, Pookeeper, ZooKeeper};
use std::time::Duration;

#[test]
fn same_transcript_as_apache_zookeeper() {
    require!(
        zookeeper_installed(),
        "Apache ZooKeeper (apt-get install zookeeper zookeeper-bin)"
    );
    let zk = ZooKeeper::start();
    let pk = Pookeeper::start(&["--set", "extendedTypesEnabled=true"]);
    let (ok, out) = run_python(
        "differential.py",
        &[&zk.port.to_string(), &pk.addr.port().to_string()],
        Duration::from_secs(120),
    );
    assert!(ok, "transcripts differ:\n{out}");
    assert!(out.contains(", 0 differences"), "{out}");
}

/// Validates the script's normalisation: ZooKeeper against itself.
#[test]
#[ignore = "self-check of the differential script; needs two JVMs"]
fn zookeeper_against_itself() {
    require!(zookeeper_installed(), "Apache ZooKeeper");
    let a = ZooKeeper::start();
    let b = ZooKeeper::start();
    let (ok, out) = run_python(
        "differential.py",
        &[&a.port.to_string(), &b.port.to_string()],
        Duration::from_secs(120),
    );
    assert!(ok, "{out}");
}
