//! Apache ZooKeeper's own command-line clients against `pookeeper`:
//! zkCli.sh (Java) and cli_mt (the C client).

use pookeeper_tests::{require, run_bounded, Pookeeper};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

/// Runs commands in one zkCli.sh session (piped on stdin).
fn zkcli(server: &str, script: &str) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "printf '%s' \"$SCRIPT\" | {ZKCLI} -server {server} 2>&1"
    ));
    cmd.env("SCRIPT", script);
    let (_, out) = run_bounded(&mut cmd, Duration::from_secs(60));
    out
}

#[test]
fn zkcli_everyday_commands() {
    require!(
        Path::new(ZKCLI).exists(),
        "zkCli.sh (apt-get install zookeeper)"
    );
    let server = Pookeeper::start(&[]);
    let out = zkcli(
        &server.hostport(),
        "create /a hello\nget -s /a\nset /a x\nget /a\nls /\ncreate -e /eph e\n\
         create -s /seq- s\nls /\ndelete /a\nls /\nquit\n",
    );
    assert!(out.contains("Created /a"), "{out}");
    assert!(out.contains("hello\ncZxid = 0x"), "{out}");
    assert!(
        out.contains("dataVersion = 0") && out.contains("dataLength = 5"),
        "{out}"
    );
    assert!(out.contains("\nx\n"), "set then get shows x:\n{out}");
    assert!(out.contains("[a, zookeeper]"), "{out}");
    assert!(out.contains("Created /eph"), "{out}");
    assert!(out.contains("Created /seq-0000000"), "{out}");
    assert!(out.contains("[eph, seq-0000000"), "{out}");
    // After `delete /a`, and after the session (with /eph) closed:
    let out2 = zkcli(&server.hostport(), "ls /\nquit\n");
    assert!(
        out2.contains("[seq-0000000"),
        "ephemeral gone, /a gone:\n{out2}"
    );
    assert!(!out2.contains("eph,"), "{out2}");
}

#[test]
fn zkcli_errors_and_acls() {
    require!(
        Path::new(ZKCLI).exists(),
        "zkCli.sh (apt-get install zookeeper)"
    );
    let server = Pookeeper::start(&[]);
    let out = zkcli(
        &server.hostport(),
        "create /p\ncreate /p\nget /nope\ndelete /zookeeper\naddauth digest bob:secret\n\
         create /priv s auth:bob:secret:cdrwa\ngetAcl /priv\nwhoami\nquit\n",
    );
    assert!(out.contains("Node already exists: /p"), "{out}");
    assert!(out.contains("Node does not exist: /nope"), "{out}");
    assert!(
        out.contains("'digest,'bob:fyVmFCwVbTJYrznoSu1koqYEYF0="),
        "{out}"
    );
    assert!(
        out.contains("Arguments are not valid : /zookeeper"),
        "{out}"
    );
    assert!(out.contains("digest: bob\nip: 127.0.0.1"), "{out}");
    let out = zkcli(&server.hostport(), "get /priv\nquit\n");
    assert!(out.contains("Insufficient permission : /priv"), "{out}");
}

#[test]
fn c_client_cli_mt() {
    require!(
        Path::new(CLI_MT).exists(),
        "cli_mt (apt-get install zookeeper-bin)"
    );
    let server = Pookeeper::start(&[]);
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "(sleep 1; printf 'create /cc\\nset /cc abc\\nget /cc\\nls /\\n'; sleep 2; echo quit) \
         | {CLI_MT} -h {} 2>&1",
        server.hostport()
    ));
    let (_, out) = run_bounded(&mut cmd, Duration::from_secs(30));
    assert!(out.contains("[/cc]: rc = 0"), "{out}");
    assert!(out.contains("value_len = 3"), "{out}");
    assert!(out.contains("abc"), "{out}");
}

#[test]
fn zkcli_quotas_acls_and_whoami() {
    require!(
        Path::new(ZKCLI).exists(),
        "zkCli.sh (apt-get install zookeeper)"
    );
    let server = Pookeeper::start(&["--set", "enforceQuota=true"]);
    let out = zkcli(
        &server.hostport(),
        "create /qa\ncreate /qa/b data\nsetquota -N 3 /qa\ncreate /qa/c 1\ncreate /qa/d 2\n\
         listquota /qa\ndelquota /qa\nlistquota /qa\n\
         create /acl x\nsetAcl /acl world:anyone:r\ngetAcl /acl\nset /acl y\n\
         addauth digest alice:pw\nsetAcl /qa auth:alice:pw:cdrwa\ngetAcl /qa\nwhoami\nquit\n",
    );
    assert!(out.contains("Created /qa/c"), "{out}");
    assert!(out.contains("Quota has exceeded : /qa/d"), "{out}");
    assert!(
        out.contains("Output quota for /qa count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3"),
        "{out}"
    );
    assert!(out.contains("Output stat for /qa count=3,bytes=5"), "{out}");
    assert!(out.contains("quota for /qa does not exist."), "{out}");
    assert!(out.contains("'world,'anyone\n: r"), "{out}");
    assert!(out.contains("Insufficient permission : /acl"), "{out}");
    assert!(out.contains("'digest,'alice:"), "{out}");
    assert!(out.contains("digest: alice"), "{out}");
}
