//! The randomized differential test: seeded random operation sequences
//! (tests/python/random_differential.py) against Apache ZooKeeper 3.8 and
//! pookeeper, every reply and notification compared; and the same tool on
//! two ZooKeepers, which must agree with each other.
//!
//! `RANDOM_DIFF_SEEDS=1-500 RANDOM_DIFF_OPS=2000 cargo test -p
//! pookeeper-tests --test random_differential` runs more.

use pookeeper_tests::{require, run_python, zookeeper_installed, Pookeeper, ZooKeeper};
use std::time::Duration;

fn budget(default_seeds: &str, default_ops: &str) -> (String, String) {
    (
        std::env::var("RANDOM_DIFF_SEEDS").unwrap_or_else(|_| default_seeds.into()),
        std::env::var("RANDOM_DIFF_OPS").unwrap_or_else(|_| default_ops.into()),
    )
}

#[test]
fn random_sequences_agree_with_apache_zookeeper() {
    require!(
        zookeeper_installed(),
        "Apache ZooKeeper (apt-get install zookeeper zookeeper-bin)"
    );
    let zk = ZooKeeper::start();
    let pk = Pookeeper::start(&[
        "--set",
        "extendedTypesEnabled=true",
        "--set",
        "maxClientCnxns=0",
    ]);
    let (seeds, ops) = budget("1-20", "1000");
    let (ok, out) = run_python(
        "random_differential.py",
        &[
            &zk.port.to_string(),
            &pk.addr.port().to_string(),
            "--seeds",
            &seeds,
            "--ops",
            &ops,
        ],
        Duration::from_secs(1800),
    );
    assert!(ok, "pookeeper diverges from ZooKeeper:\n{out}");
    assert!(out.contains(", 0 divergences"), "{out}");
}

/// The tool checked on itself: two real ZooKeepers given the same seeds.
#[test]
fn the_tool_finds_no_divergence_between_two_zookeepers() {
    require!(zookeeper_installed(), "Apache ZooKeeper");
    let a = ZooKeeper::start();
    let b = ZooKeeper::start();
    let (seeds, ops) = budget("1-6", "600");
    let (ok, out) = run_python(
        "random_differential.py",
        &[
            &a.port.to_string(),
            &b.port.to_string(),
            "--seeds",
            &seeds,
            "--ops",
            &ops,
        ],
        Duration::from_secs(1800),
    );
    assert!(ok, "two ZooKeepers diverge (the tool is wrong):\n{out}");
    assert!(out.contains(", 0 divergences"), "{out}");
}
