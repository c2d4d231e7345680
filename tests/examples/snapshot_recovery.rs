//! Benchmark: snapshot and recovery time of a large tree, in process (no
//! sockets, no disk): N znodes with 100-byte data are created through the
//! protocol, then the server's snapshot is taken, and the server recovered
//! from (a) the snapshot and (b) the log alone.
//!
//! cargo run --release -p pookeeper-tests --example snapshot_recovery [N]

use pookeeper_core::{storage, Config, Input, Output, Server};
use std::time::Instant;

/// Resident memory of this process (Linux), KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A framed create request (persistent, world:anyone ALL).
fn create_frame(xid: i32, path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(path.len() as i32).to_be_bytes());
    b.extend_from_slice(path.as_bytes());
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&31i32.to_be_bytes());
    for part in ["world", "anyone"] {
        b.extend_from_slice(&(part.len() as i32).to_be_bytes());
        b.extend_from_slice(part.as_bytes());
    }
    b.extend_from_slice(&0i32.to_be_bytes());
    frame(&b)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn main() {
    // `snapshot_recovery recover FILE`: only recover from a snapshot file
    // (written by a run with SNAPSHOT_OUT=FILE), e.g. under a profiler.
    if std::env::args().nth(1).as_deref() == Some("recover") {
        let bytes = std::fs::read(std::env::args().nth(2).expect("FILE")).unwrap();
        let t = Instant::now();
        let (_server, r) =
            Server::recover(Config::default(), Instant::now(), 0, Some(&bytes), &[]).unwrap();
        println!(
            "recover from snapshot: {:.0} ms ({} znodes)",
            t.elapsed().as_secs_f64() * 1e3,
            r.znodes
        );
        return;
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let now = Instant::now();
    let mut server = Server::new(Config::default(), now, 1_700_000_000_000).unwrap();
    let conn = server.accept(now, None);
    let mut connect = Vec::new();
    connect.extend_from_slice(&0i32.to_be_bytes());
    connect.extend_from_slice(&0i64.to_be_bytes());
    connect.extend_from_slice(&30_000i32.to_be_bytes());
    connect.extend_from_slice(&0i64.to_be_bytes());
    connect.extend_from_slice(&16i32.to_be_bytes());
    connect.extend_from_slice(&[0; 16]);
    let mut log = storage::log_header(1).to_vec();
    let drive = |server: &mut Server, bytes: &[u8], log: &mut Vec<u8>| {
        server.handle(now, Input::Received { conn, bytes });
        loop {
            let mut durable = None;
            while let Some(o) = server.poll_output() {
                if let Output::Append { zxid, entry } = o {
                    storage::encode_record(&entry, log);
                    durable = Some(zxid);
                }
            }
            match durable {
                Some(zxid) => server.handle(now, Input::Durable { zxid }),
                None => break,
            }
        }
    };
    drive(&mut server, &frame(&connect), &mut log);
    let rss_before = rss_kib();
    let t = Instant::now();
    let data = [b'x'; 100];
    let mut batch = Vec::new();
    for i in 0..n {
        // Spread over 1000 parents so no child list gets huge.
        let path = if i < 1000 {
            format!("/d{i}")
        } else {
            format!("/d{}/n{}", i % 1000, i)
        };
        batch.extend_from_slice(&create_frame(i as i32 + 1, &path, &data));
        if batch.len() > 1 << 16 {
            drive(&mut server, &batch, &mut log);
            batch.clear();
        }
    }
    drive(&mut server, &batch, &mut log);
    let load = t.elapsed();
    assert_eq!(server.znode_count(), n + 4);
    // The log buffer grows alongside; count only the tree.
    let rss_tree = rss_kib()
        .saturating_sub(rss_before)
        .saturating_sub(log.capacity() as u64 / 1024);
    println!("{n} znodes with 100-byte data, in process");
    println!(
        "  create through the protocol: {:>8.0} ms ({:.0} creates/s)",
        load.as_secs_f64() * 1e3,
        n as f64 / load.as_secs_f64()
    );
    println!(
        "  memory of the tree:          {:>8} MiB ({:.0} bytes per znode, 100 of them data)",
        rss_tree / 1024,
        rss_tree as f64 * 1024.0 / n as f64
    );
    let t = Instant::now();
    let (_, snap) = server.snapshot();
    println!(
        "  snapshot (one pass):         {:>8.0} ms, {} MB",
        t.elapsed().as_secs_f64() * 1e3,
        snap.len() >> 20
    );
    // As the runtimes take it: 1 MiB per loop turn, with requests (here 50
    // setData and 10 creates) served between the pieces.
    let t = Instant::now();
    server.begin_snapshot();
    let (mut longest, mut pieces, mut chunked) = (0f64, 0, Vec::new());
    let mut xid = n as i32 + 10;
    loop {
        let step = Instant::now();
        let mut piece = Vec::with_capacity(1 << 20);
        let p = server.snapshot_step(&mut piece, 1 << 20);
        longest = longest.max(step.elapsed().as_secs_f64());
        pieces += 1;
        chunked.extend_from_slice(&piece);
        if p != pookeeper_core::SnapshotProgress::More {
            break;
        }
        let batch = write_batch(&mut xid, pieces);
        drive(&mut server, &batch, &mut log);
    }
    println!(
        "  snapshot in 1 MiB pieces:    {:>8.0} ms, {pieces} pieces with writes between, longest piece {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3,
        longest * 1e3
    );
    let (_, r) = Server::recover(Config::default(), now, 0, Some(&chunked), &[]).unwrap();
    assert_eq!(
        r.znodes,
        n + 4,
        "the chunked snapshot holds the tree at its start"
    );
    // As the data directory takes it: the loop takes a frozen image of the
    // tree, a thread encodes it while the loop goes on serving writes.
    let at_image = server.znode_count();
    let t = Instant::now();
    let mut writer = server.snapshot_writer();
    let image = t.elapsed();
    let encoder = std::thread::spawn(move || {
        let t = Instant::now();
        let mut out = Vec::new();
        while !writer.step(&mut out, 1 << 20) {}
        (out, t.elapsed())
    });
    let (mut served, mut round) = (0, pieces + 1);
    while !encoder.is_finished() {
        let batch = write_batch(&mut xid, round);
        drive(&mut server, &batch, &mut log);
        served += 60;
        round += 1;
    }
    let (threaded, encoded) = encoder.join().unwrap();
    println!(
        "  snapshot off the loop:       {:>8.1} ms on the loop for the image; encoded in {:.0} ms on another thread while the loop served {served} writes",
        image.as_secs_f64() * 1e3,
        encoded.as_secs_f64() * 1e3
    );
    let (_, r) = Server::recover(Config::default(), now, 0, Some(&threaded), &[]).unwrap();
    assert_eq!(
        r.znodes, at_image,
        "the threaded snapshot holds the tree as it was when the image was taken"
    );
    if let Ok(path) = std::env::var("SNAPSHOT_OUT") {
        std::fs::write(&path, &snap).unwrap();
    }
    let t = Instant::now();
    let (s, r) = Server::recover(Config::default(), now, 0, Some(&snap), &[]).unwrap();
    println!(
        "  recover from snapshot:       {:>8.0} ms ({} znodes)",
        t.elapsed().as_secs_f64() * 1e3,
        r.znodes
    );
    drop(s);
    let t = Instant::now();
    let (_s, r) = Server::recover(Config::default(), now, 0, None, &[&log]).unwrap();
    println!(
        "  recover from the log alone:  {:>8.0} ms ({} txns, {} MB of log)",
        t.elapsed().as_secs_f64() * 1e3,
        r.txns_replayed,
        log.len() >> 20
    );
}

/// 50 setData and 10 creates (round `round` names fresh paths).
fn write_batch(xid: &mut i32, round: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    for k in 0..60 {
        *xid += 1;
        let path = format!("/d{}/n{}", k % 1000, 1000 + round * 1000 + k);
        if k < 50 {
            let mut b = Vec::new();
            b.extend_from_slice(&xid.to_be_bytes());
            b.extend_from_slice(&5i32.to_be_bytes());
            b.extend_from_slice(&(path.len() as i32).to_be_bytes());
            b.extend_from_slice(path.as_bytes());
            b.extend_from_slice(&3i32.to_be_bytes());
            b.extend_from_slice(b"new");
            b.extend_from_slice(&(-1i32).to_be_bytes());
            batch.extend_from_slice(&frame(&b));
        } else {
            batch.extend_from_slice(&create_frame(*xid, &format!("{path}-new"), &[]));
        }
    }
    batch
}
