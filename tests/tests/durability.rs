//! Durability: acknowledged writes survive SIGKILL; sessions and their
//! ephemerals come back; sequence counters continue; snapshots and
//! `pookeeper inspect`.

use pookeeper_tests::{pookeeper_bin, Pookeeper, TempDir};
use std::process::Command;
use std::time::Duration;
use zk::{Acls, CreateMode};
use zookeeper_client as zk;

async fn connect(hp: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(20))
        .connect(hp)
        .await
        .expect("connect")
}

/// Every acknowledged write is there with its data.
async fn assert_acked(c: &zk::Client, acked: &[(String, Vec<u8>)], round: usize) {
    for (p, d) in acked {
        let (got, _) = c
            .get_data(p)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {p} lost: {e}"));
        assert_eq!(&got, d, "round {round}: {p}");
    }
}

/// Kills `server` after `after`, then collects what the writer got
/// acknowledged before the crash stopped it.
async fn crash_during(
    mut server: Pookeeper,
    after: Duration,
    writer: tokio::task::JoinHandle<Vec<(String, Vec<u8>)>>,
) -> Vec<(String, Vec<u8>)> {
    tokio::time::sleep(after).await;
    server.crash();
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("writer stops after the crash")
        .unwrap()
}

/// xorshift64: the crash tests' reproducible kill times.
fn next_random(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn persistent() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_keeps_data_and_sessions() {
    let dir = TempDir::new("restart");
    let mut server = Pookeeper::start_in(&dir.0, &["--set", "snapCount=50"]);
    let c = connect(&server.hostport()).await;
    c.create("/d", b"root", &persistent()).await.unwrap();
    for i in 0..120 {
        c.create(
            &format!("/d/n{i}"),
            format!("{i}").as_bytes(),
            &persistent(),
        )
        .await
        .unwrap();
    }
    c.set_data("/d", b"v2", None).await.unwrap();
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    c.create("/d/eph", b"", &eph).await.unwrap();
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, s1) = c.create("/d/s-", b"", &seq).await.unwrap();
    let session = c.session().clone();
    let sid = c.session_id();
    server.crash();
    std::mem::forget(c); // its socket is dead; do not close the session

    let server = Pookeeper::start_in(&dir.0, &[]);
    let log = server.wait_log("recovered to zxid");
    assert!(log.contains("recovered to zxid"), "{log}");
    // Resume the old session with its id and password.
    let c = zk::Client::connector()
        .with_session(session)
        .connect(&server.hostport())
        .await
        .expect("resume the session");
    assert_eq!(c.session_id(), sid);
    let (data, st) = c.get_data("/d").await.unwrap();
    assert_eq!((data.as_slice(), st.version), (&b"v2"[..], 1));
    for i in [0, 57, 119] {
        let (d, _) = c.get_data(&format!("/d/n{i}")).await.unwrap();
        assert_eq!(d, format!("{i}").as_bytes());
    }
    let st = c
        .check_stat("/d/eph")
        .await
        .unwrap()
        .expect("ephemeral kept");
    assert_eq!(st.ephemeral_owner, sid.0);
    let (_, s2) = c.create("/d/s-", b"", &seq).await.unwrap();
    assert!(s2.into_i64() > s1.into_i64(), "sequence counters continue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_crashes_lose_no_acknowledged_write() {
    let dir = TempDir::new("crash");
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..20 {
        let server = Pookeeper::start_in(&dir.0, &["--set", "snapCount=100"]);
        let hp = server.hostport();
        // Everything acknowledged before is there, with its data.
        let c = connect(&hp).await;
        assert_acked(&c, &acked, round).await;
        if round == 0 {
            c.create("/c", b"", &persistent()).await.unwrap();
        }
        // Writers run while the server is killed at a random moment.
        let kill_after = Duration::from_millis(20 + next_random(&mut x) % 200);
        let writer = tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0.. {
                let path = format!("/c/r{round}-{i}");
                let data = format!("{round}:{i}").into_bytes();
                let mut m = c.new_multi_writer();
                m.add_create(&path, &data, &persistent()).unwrap();
                m.add_set_data("/c", &data, None).unwrap();
                match m.commit().await {
                    Ok(_) => done.push((path, data)),
                    Err(_) => break,
                }
            }
            done
        });
        acked.extend(crash_during(server, kill_after, writer).await);
    }
    assert!(acked.len() > 20, "the writers got work acknowledged");
    // A final check, and no half-applied multi: /c's data is the data of
    // some acknowledged or in-flight create that exists.
    let server = Pookeeper::start_in(&dir.0, &[]);
    let c = connect(&server.hostport()).await;
    let (last, _) = c.get_data("/c").await.unwrap();
    let kids = c.list_children("/c").await.unwrap();
    let name = String::from_utf8(last).unwrap();
    let (r, i) = name.split_once(':').unwrap();
    assert!(kids.contains(&format!("r{r}-{i}")), "multi applied whole");
}

/// Crashes while snapshots of a larger tree (3000 × 8 KB, written in many
/// pieces between requests) are under way: snapCount is tiny, so one is
/// nearly always being written when the server is killed. After every
/// restart the big tree and every acknowledged write are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_during_large_snapshots_lose_nothing() {
    let dir = TempDir::new("bigsnap");
    let big = vec![b'b'; 8192];
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..6 {
        let server = Pookeeper::start_in(&dir.0, &["--set", "snapCount=50"]);
        let c = connect(&server.hostport()).await;
        if round == 0 {
            c.create("/big", b"", &persistent()).await.unwrap();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..3000 {
                let (c, data) = (c.clone(), big.clone());
                tasks.spawn(async move {
                    c.create(&format!("/big/n{i}"), &data, &persistent())
                        .await
                        .map(|_| ())
                });
                if tasks.len() >= 64 {
                    tasks.join_next().await.unwrap().unwrap().unwrap();
                }
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap().unwrap();
            }
            c.create("/w", b"", &persistent()).await.unwrap();
        }
        let (_, st) = c.get_data("/big").await.unwrap();
        assert_eq!(st.num_children, 3000, "round {round}: the big tree");
        for i in [0, 1499, 2999] {
            let (d, _) = c.get_data(&format!("/big/n{i}")).await.unwrap();
            assert_eq!(d, big, "round {round}: /big/n{i}");
        }
        assert_acked(&c, &acked, round).await;
        let kill_after = Duration::from_millis(100 + next_random(&mut x) % 400);
        let big = big.clone();
        let writer = tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0.. {
                let path = format!("/w/r{round}-{i}");
                let data = format!("{round}:{i}").into_bytes();
                match c.create(&path, &data, &persistent()).await {
                    Ok(_) => done.push((path, data)),
                    Err(_) => break,
                }
                // Changes to nodes the snapshot walk may not have reached.
                let n = format!("/big/n{}", i % 3000);
                if c.set_data(&n, &big, None).await.is_err() {
                    break;
                }
            }
            done
        });
        acked.extend(crash_during(server, kill_after, writer).await);
    }
    assert!(acked.len() > 20, "the writers got work acknowledged");
    let snapshots = std::fs::read_dir(dir.0.join("version-1"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("snapshot.")
        })
        .count();
    assert!(
        snapshots > 0,
        "some snapshot was completed between the crashes"
    );
}

#[test]
fn inspect_describes_a_data_dir() {
    let dir = TempDir::new("inspect");
    {
        let mut server = Pookeeper::start_in(&dir.0, &["--set", "snapCount=10"]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = connect(&server.hostport()).await;
            for i in 0..25 {
                c.create(&format!("/i{i}"), b"", &persistent())
                    .await
                    .unwrap();
            }
        });
        server.crash();
    }
    let out = Command::new(pookeeper_bin())
        .arg("inspect")
        .arg(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("snapshot.") && text.contains("valid,"),
        "{text}"
    );
    assert!(
        text.contains("log.") && text.contains("txns, zxid 0x"),
        "{text}"
    );
}

/// The zxids of the finished snapshots in a data dir.
fn snapshot_zxids(data_dir: &std::path::Path) -> Vec<i64> {
    std::fs::read_dir(data_dir.join("version-1"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            i64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()
        })
        .collect()
}

/// The zxid in a `csnp` answer.
fn csnp(hostport: &str) -> i64 {
    let answer = pookeeper_tests::four_letter_word(hostport, "csnp").unwrap();
    let hex = answer
        .trim()
        .strip_prefix("Snapshot requested at zxid 0x")
        .unwrap_or_else(|| panic!("{answer}"));
    i64::from_str_radix(hex, 16).unwrap()
}

/// A `csnp` that arrives while another snapshot is being written is not
/// forgotten: it is taken once that one is done.
#[test]
fn csnp_during_a_snapshot_is_taken_after_it() {
    let dir = TempDir::new("csnp2");
    let server = Pookeeper::start_in(&dir.0, &["--set", "4lw.commands.whitelist=csnp"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let second = rt.block_on(async {
        let c = connect(&server.hostport()).await;
        // A few megabytes, so that writing the first snapshot takes a while.
        let data = vec![7u8; 4096];
        for i in 0..1000 {
            c.create(&format!("/n{i}"), &data, &persistent())
                .await
                .unwrap();
        }
        let first = csnp(&server.hostport());
        c.create("/after", b"", &persistent()).await.unwrap();
        let second = csnp(&server.hostport());
        assert!(second > first, "{second:#x} after {first:#x}");
        second
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !snapshot_zxids(&dir.0).iter().any(|&z| z >= second) {
        assert!(
            std::time::Instant::now() < deadline,
            "second csnp lost: snapshots at {:x?}, wanted one at or after {second:#x}",
            snapshot_zxids(&dir.0)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn autopurge_keeps_three_snapshots_and_csnp_forces_one() {
    let dir = TempDir::new("purge");
    let args = [
        "--set",
        "snapCount=20",
        "--set",
        "autopurge.purgeInterval=1",
        "--set",
        "autopurge.snapRetainCount=3",
        "--set",
        "4lw.commands.whitelist=csnp,srvr",
    ];
    let count = |prefix: &str| {
        std::fs::read_dir(dir.0.join("version-1"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(prefix)
            })
            .count()
    };
    {
        let mut server = Pookeeper::start_in(&dir.0, &args);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = connect(&server.hostport()).await;
            for i in 0..200 {
                c.create(&format!("/p{i}"), b"", &persistent())
                    .await
                    .unwrap();
            }
            // A few more, fewer than snapCount: no scheduled snapshot.
            for i in 0..5 {
                c.create(&format!("/q{i}"), b"", &persistent())
                    .await
                    .unwrap();
            }
        });
        // Snapshots are written by a thread and purging follows on the
        // next loop turn: wait (bounded) for the directory to settle.
        let settled = |want: usize| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while (count("snapshot.") != want || count(".snapshot.") > 0)
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            count("snapshot.")
        };
        assert_eq!(settled(3), 3, "snapRetainCount");
        assert!(count("log.") <= 4, "old segments purged: {}", count("log."));
        let zxid = csnp(&server.hostport());
        // The snapshot is taken once the log is flushed, so it may cover a
        // later zxid than the one in the answer (the client's closeSession
        // can land in between): wait for one at or after it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !snapshot_zxids(&dir.0).iter().any(|&z| z >= zxid) {
            assert!(
                std::time::Instant::now() < deadline,
                "no forced snapshot at or after zxid {zxid:#x}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(settled(3), 3, "the forced one replaced the oldest");
        server.crash();
    }
    let server = Pookeeper::start_in(&dir.0, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&server.hostport()).await;
        let mut kids = c.list_children("/").await.unwrap();
        kids.retain(|k| k.starts_with('p'));
        assert_eq!(kids.len(), 200, "recovered after purging");
    });
}

/// Runs the binary to its exit (at most 30 s): status, stdout, stderr.
fn run_to_exit(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(pookeeper_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("pookeeper {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The newest log segment of a data directory.
fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir.join("version-1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("log."))
        .collect();
    logs.sort();
    logs.pop().expect("a log segment")
}

/// Where the records of a (version 2) segment start, and where they end.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    use pookeeper_core::storage::{LOG_HEADER_LEN, RECORD_OVERHEAD};
    let mut v = vec![LOG_HEADER_LEN];
    let mut pos = LOG_HEADER_LEN;
    while pos + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        pos += RECORD_OVERHEAD + len;
        v.push(pos);
    }
    v
}

/// Writes `n` nodes `/r0`… (all acknowledged), then SIGKILLs the server.
fn write_and_crash(dir: &std::path::Path, n: usize) {
    let mut server = Pookeeper::start_in(dir, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&server.hostport()).await;
        for i in 0..n {
            c.create(&format!("/r{i}"), format!("{i}").as_bytes(), &persistent())
                .await
                .unwrap();
        }
        std::mem::forget(c);
    });
    server.crash();
}

/// The `/r*` nodes: all of `/r0`…`/r(k-1)` for some k, with their data.
fn count_r_nodes(server: &Pookeeper) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&server.hostport()).await;
        let mut kids = c.list_children("/").await.unwrap();
        kids.retain(|k| k.starts_with('r'));
        for i in 0..kids.len() {
            let (d, _) = c.get_data(&format!("/r{i}")).await.unwrap();
            assert_eq!(d, format!("{i}").as_bytes());
        }
        kids.len()
    })
}

/// The defect: one flipped bit in a record's length in the middle of the
/// last segment used to be taken for a torn tail (150 of 200 acknowledged
/// writes gone, the evidence zeroed). Now the server refuses to start,
/// naming the file and the offset, and changes nothing; `pookeeper repair`
/// says what to do, and `--truncate-at` keeps a copy of what it cuts.
#[test]
fn a_damaged_length_refuses_to_start_until_repaired() {
    let dir = TempDir::new("badlen");
    write_and_crash(&dir.0, 200);
    let seg = last_segment(&dir.0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() > 200, "{} records", offsets.len());
    let at = offsets[offsets.len() / 4];
    bytes[at + 2] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let data_dir = dir.0.as_os_str();
    let (status, _, stderr) = run_to_exit(&[
        "--port".as_ref(),
        "0".as_ref(),
        "--data-dir".as_ref(),
        data_dir,
    ]);
    assert!(!status.success(), "refused to start: {stderr}");
    let named = format!("{}: corrupt record at offset {at}", seg.display());
    assert!(stderr.contains(&named), "names file and offset: {stderr}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing changed");
    let (_, out, _) = run_to_exit(&["inspect".as_ref(), data_dir]);
    assert!(
        out.contains(&format!("CORRUPT: corrupt record at offset {at}")),
        "{out}"
    );
    // The diagnosis changes nothing and gives the command.
    let (status, out, _) = run_to_exit(&["repair".as_ref(), data_dir]);
    assert_eq!(status.code(), Some(1), "{out}");
    let spec = format!("{}:{at}", seg.display());
    assert!(out.contains(&format!("--truncate-at {spec}")), "{out}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing changed");
    let (status, out, err) = run_to_exit(&[
        "repair".as_ref(),
        data_dir,
        "--truncate-at".as_ref(),
        spec.as_ref(),
    ]);
    assert!(status.success(), "{out}{err}");
    let name = seg.file_name().unwrap().to_string_lossy();
    let copy = dir.0.join(format!("version-1/damaged/{name}.from-{at}"));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        &bytes[at..],
        "the cut bytes are kept"
    );
    // It starts, with every node whose record came before the cut.
    let server = Pookeeper::start_in(&dir.0, &[]);
    let kept = count_r_nodes(&server);
    // Records before the cut: the session's creation, then /r0…
    assert_eq!(kept, offsets.len() / 4 - 1, "the nodes before the cut");
}

/// A crash during the write of the last record (a prefix of it, zeros
/// after) still restarts without an operator, with every earlier record.
#[test]
fn a_torn_last_record_restarts_by_itself() {
    let dir = TempDir::new("tornbin");
    write_and_crash(&dir.0, 50);
    let seg = last_segment(&dir.0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let offsets = record_offsets(&bytes);
    let (a, b) = (offsets[offsets.len() - 2], offsets[offsets.len() - 1]);
    for byte in &mut bytes[a + (b - a) / 2..b] {
        *byte = 0;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let server = Pookeeper::start_in(&dir.0, &[]);
    let log = server.wait_log("cutting a torn record");
    assert!(log.contains("cutting a torn record"), "{log}");
    assert_eq!(count_r_nodes(&server), 49, "all but the torn one");
}

/// A data directory that cannot be used (here a regular file: the tests
/// run as root, whom permissions do not stop) fails the start with a
/// message naming the path.
#[test]
fn an_unusable_data_dir_is_named() {
    let dir = TempDir::new("notadir");
    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let (status, _, stderr) = run_to_exit(&[
        "--port".as_ref(),
        "0".as_ref(),
        "--data-dir".as_ref(),
        file.as_os_str(),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}
