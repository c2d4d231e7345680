//! A connection cannot grow its authenticated ids without bound (they used
//! to be copied for every request: 300 digest auths with 1 MB user names
//! made each cheap request take ~150 ms and stalled everyone). An id over
//! `pookeeper.maxAuthIdBytes` (1024) or past `pookeeper.maxAuthIds` (32 per
//! connection) fails with AUTHFAILED, the connection closes with a log line
//! naming the cap, and other clients are served meanwhile.

use pookeeper_tests::Pookeeper;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const AUTHFAILED: i32 = -115;

/// A minimal hand-written client.
struct Raw {
    s: TcpStream,
}

impl Raw {
    fn connect(server: &Pookeeper) -> Self {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&10_000i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&16i32.to_be_bytes());
        body.extend_from_slice(&[0; 16]);
        body.push(0);
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend(body);
        s.write_all(&f).unwrap();
        let mut r = Raw { s };
        r.frame().expect("connect response");
        r
    }

    /// The next frame; `None` on EOF or reset.
    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }

    /// (xid, err) of the next reply.
    fn reply(&mut self) -> Option<(i32, i32)> {
        let f = self.frame()?;
        let int = |i: usize| i32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
        Some((int(0), int(12)))
    }

    /// Sends an exists("/") and returns how long its reply took.
    fn exists_root(&mut self, xid: i32) -> Duration {
        let t = Instant::now();
        self.s.write_all(&exists_root(xid)).unwrap();
        let (x, err) = self.reply().expect("a reply to exists");
        assert_eq!((x, err), (xid, 0));
        t.elapsed()
    }
}

fn frame(xid: i32, opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut f = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&xid.to_be_bytes());
    f.extend_from_slice(&opcode.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn digest_auth(cred: &[u8]) -> Vec<u8> {
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&6i32.to_be_bytes());
    b.extend_from_slice(b"digest");
    b.extend_from_slice(&(cred.len() as i32).to_be_bytes());
    b.extend_from_slice(cred);
    frame(-4, 100, &b)
}

fn exists_root(xid: i32) -> Vec<u8> {
    frame(xid, 3, &[0, 0, 0, 1, b'/', 0])
}

/// Whether the server ended the connection (EOF or reset) in time.
fn ended(r: &mut Raw) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match r.s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_large_auth_id_is_refused() {
    let pk = Pookeeper::start(&["--set", "forceSync=no"]);
    let mut c = Raw::connect(&pk);
    let mut cred = vec![b'u'; 256 * 1024];
    cred.extend_from_slice(b":pw");
    c.s.write_all(&digest_auth(&cred)).unwrap();
    assert_eq!(c.reply(), Some((-4, AUTHFAILED)));
    assert!(ended(&mut c), "the connection stays open");
    let log = pk.wait_log("maxAuthIdBytes");
    assert!(
        log.contains("authentication refused: digest id of 262173 bytes, over the 1024-byte cap"),
        "{log}"
    );
}

#[test]
fn auth_ids_are_capped_per_connection() {
    let pk = Pookeeper::start(&["--set", "forceSync=no"]);
    let mut c = Raw::connect(&pk);
    // 300 distinct ids of ~900 bytes, pipelined: the connection's ip id and
    // 31 of them fit, the next one fails and closes the connection.
    let mut all = Vec::new();
    for i in 0..300 {
        let cred = format!("{i:0>900}:pw");
        all.extend(digest_auth(cred.as_bytes()));
    }
    let mut w = c.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // The server stops reading once it closes: errors are expected.
        let _ = w.write_all(&all);
    });
    let mut ok = 0;
    let mut last = None;
    while let Some((xid, err)) = c.reply() {
        assert_eq!(xid, -4);
        if err != 0 {
            last = Some(err);
            break;
        }
        ok += 1;
    }
    // A reset may swallow the AUTHFAILED reply; the log line may not lie.
    assert!(ok <= 31, "{ok} auths accepted");
    assert!(last.is_none() || last == Some(AUTHFAILED), "{last:?}");
    assert!(ended(&mut c));
    writer.join().unwrap();
    let log = pk.wait_log("maxAuthIds");
    assert!(
        log.contains("holds 32 authenticated ids, the cap is 32"),
        "{log}"
    );
}

#[test]
fn many_large_auths_do_not_stall_other_clients() {
    // The reported load, scaled down: 300 digest auths with 256 KiB user
    // names on one connection, then cheap requests on it, while another
    // client works. Before the cap every one of those requests copied the
    // 75 MB auth list.
    let pk = Pookeeper::start(&["--set", "forceSync=no"]);
    let mut other = Raw::connect(&pk);
    let mut bad = Raw::connect(&pk);
    let mut w = bad.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let name = vec![b'u'; 256 * 1024];
        for i in 0..300 {
            let mut cred = name.clone();
            cred.extend_from_slice(format!("{i}:pw").as_bytes());
            if w.write_all(&digest_auth(&cred)).is_err() {
                return;
            }
        }
        for xid in 1..=1000 {
            if w.write_all(&exists_root(xid)).is_err() {
                return;
            }
        }
    });
    let mut worst = Duration::ZERO;
    for xid in 1..=200 {
        worst = worst.max(other.exists_root(xid));
    }
    assert!(ended(&mut bad), "the flooding connection stays open");
    writer.join().unwrap();
    // A generous bound for a loaded debug build; the stall was ~150 ms per
    // request of the flooding connection, seconds in all.
    assert!(worst < Duration::from_secs(1), "worst latency {worst:?}");
    // The other session was not suspended meanwhile.
    assert_eq!(other.exists_root(1000).as_secs(), 0);
    assert!(pk
        .wait_log("maxAuthIdBytes")
        .contains("authentication refused"));
}
