//! Benchmark: durable write throughput with 1, 8 and 64 concurrent writers
//! (each a session with one request in flight), against a `pookeeper` with
//! forceSync=yes on a temporary data directory. Shows group commit at work:
//! many writers share each fdatasync.
//!
//! cargo run --release -p pookeeper-tests --example durable_writes [SECONDS]

use pookeeper_tests::Pookeeper;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("reply length");
    let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).expect("reply");
    b
}

fn session(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut c = Vec::new();
    c.extend_from_slice(&0i32.to_be_bytes());
    c.extend_from_slice(&0i64.to_be_bytes());
    c.extend_from_slice(&30_000i32.to_be_bytes());
    c.extend_from_slice(&0i64.to_be_bytes());
    c.extend_from_slice(&16i32.to_be_bytes());
    c.extend_from_slice(&[0; 16]);
    c.push(0);
    s.write_all(&frame(&c)).unwrap();
    read_frame(&mut s);
    s
}

/// setData /bench/w<i> with 100 bytes, one at a time; counts replies.
fn writer(
    addr: std::net::SocketAddr,
    id: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    lat: Arc<AtomicU64>,
) {
    let mut s = session(addr);
    let path = format!("/bench/w{id}");
    let mut create = Vec::new();
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&(path.len() as i32).to_be_bytes());
    create.extend_from_slice(path.as_bytes());
    create.extend_from_slice(&0i32.to_be_bytes());
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&31i32.to_be_bytes());
    for part in ["world", "anyone"] {
        create.extend_from_slice(&(part.len() as i32).to_be_bytes());
        create.extend_from_slice(part.as_bytes());
    }
    create.extend_from_slice(&0i32.to_be_bytes());
    s.write_all(&frame(&create)).unwrap();
    read_frame(&mut s);
    let mut xid = 1i32;
    while !stop.load(Ordering::Relaxed) {
        xid += 1;
        let mut b = Vec::new();
        b.extend_from_slice(&xid.to_be_bytes());
        b.extend_from_slice(&5i32.to_be_bytes());
        b.extend_from_slice(&(path.len() as i32).to_be_bytes());
        b.extend_from_slice(path.as_bytes());
        b.extend_from_slice(&100i32.to_be_bytes());
        b.extend_from_slice(&[b'x'; 100]);
        b.extend_from_slice(&(-1i32).to_be_bytes());
        let t = Instant::now();
        s.write_all(&frame(&b)).unwrap();
        let r = read_frame(&mut s);
        assert_eq!(&r[..4], &xid.to_be_bytes(), "reply order");
        assert_eq!(&r[12..16], &0i32.to_be_bytes(), "setData failed");
        lat.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let sync = std::env::var("FORCE_SYNC").unwrap_or_else(|_| "yes".into());
    let server = Pookeeper::start(&[
        "--set",
        &format!("forceSync={sync}"),
        "--max-client-cnxns",
        "0",
    ]);
    let mut s = session(server.addr);
    let mut b = Vec::new();
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&6i32.to_be_bytes());
    b.extend_from_slice(b"/bench");
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&31i32.to_be_bytes());
    for part in ["world", "anyone"] {
        b.extend_from_slice(&(part.len() as i32).to_be_bytes());
        b.extend_from_slice(part.as_bytes());
    }
    b.extend_from_slice(&0i32.to_be_bytes());
    s.write_all(&frame(&b)).unwrap();
    read_frame(&mut s);
    println!("durable setData (100 B), forceSync=yes, {secs} s per run");
    println!("{:>8} {:>12} {:>14}", "writers", "writes/s", "mean latency");
    let mut base = 0;
    for n in [1usize, 8, 64] {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let lat = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (stop, done, lat) = (stop.clone(), done.clone(), lat.clone());
                let addr = server.addr;
                std::thread::spawn(move || writer(addr, base + i, stop, done, lat))
            })
            .collect();
        base += n;
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let ops = done.load(Ordering::Relaxed);
        let mean = lat.load(Ordering::Relaxed) as f64 / ops.max(1) as f64 / 1000.0;
        println!(
            "{n:>8} {:>12.0} {:>11.2} ms",
            ops as f64 / secs as f64,
            mean
        );
    }
}
