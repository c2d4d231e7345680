//! Hostile and broken peers end only their own connection, with a log line,
//! while the server keeps serving everyone else. Also: SIGTERM exits 0.

use pookeeper_tests::{four_letter_word, Pookeeper};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A minimal hand-written client: connects and opens a session.
struct Raw {
    s: TcpStream,
}

impl Raw {
    fn connect(server: &Pookeeper) -> Self {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
        let resp = r.frame().expect("connect response");
        assert_eq!(resp.len(), 37);
        r
    }

    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut b).ok()?;
        Some(b)
    }

    /// Sends an exists("/") and returns the reply's error code.
    fn exists_root(&mut self, xid: i32) -> i32 {
        let mut f = Vec::new();
        f.extend_from_slice(&14u32.to_be_bytes());
        f.extend_from_slice(&xid.to_be_bytes());
        f.extend_from_slice(&3i32.to_be_bytes());
        f.extend_from_slice(&1i32.to_be_bytes());
        f.push(b'/');
        f.push(0);
        self.s.write_all(&f).unwrap();
        let r = self.frame().expect("reply");
        assert_eq!(i32::from_be_bytes([r[0], r[1], r[2], r[3]]), xid);
        i32::from_be_bytes([r[12], r[13], r[14], r[15]])
    }
}

/// Reads until EOF (the server closed) or the timeout (it did not).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn random_bytes(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn hostile_connections_close_alone() {
    let server = Pookeeper::start(&[]);
    let mut good = Raw::connect(&server);
    assert_eq!(good.exists_root(1), 0);

    // 1 MB of random bytes.
    let mut s = TcpStream::connect(server.addr).unwrap();
    let _ = s.write_all(&random_bytes(1 << 20, 0x9e37_79b9_7f4a_7c15));
    assert!(
        closed_by_server(&mut s),
        "random bytes: connection stays open"
    );
    assert_eq!(good.exists_root(2), 0);

    // A frame announcing 2^31 bytes.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&0x8000_0000u32.to_be_bytes()).unwrap();
    assert!(
        closed_by_server(&mut s),
        "2^31 frame: connection stays open"
    );

    // A frame just over jute.maxbuffer, and a negative length.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&0x0010_0000u32.to_be_bytes()).unwrap();
    assert!(closed_by_server(&mut s));
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xfe]).unwrap();
    assert!(closed_by_server(&mut s));

    // Garbage before the handshake: a well-framed but malformed connect.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]).unwrap();
    assert!(closed_by_server(&mut s));

    // A truncated request header after a good handshake.
    let mut bad = Raw::connect(&server);
    bad.s.write_all(&[0, 0, 0, 3, 0, 0, 1]).unwrap();
    assert!(closed_by_server(&mut bad.s));

    assert_eq!(good.exists_root(3), 0, "the good client is still served");
    let log = server.log();
    assert!(
        log.contains("outside 0..=1048575 (jute.maxbuffer)"),
        "{log}"
    );
    assert!(log.contains("malformed request"), "{log}");
}

#[test]
fn client_that_never_reads_does_not_hurt_others() {
    let server = Pookeeper::start(&[]);
    let mut good = Raw::connect(&server);
    // Pipeline many requests and never read the replies.
    let mut lazy = Raw::connect(&server);
    let mut burst = Vec::new();
    for xid in 0..20_000i32 {
        burst.extend_from_slice(&14u32.to_be_bytes());
        burst.extend_from_slice(&xid.to_be_bytes());
        burst.extend_from_slice(&3i32.to_be_bytes());
        burst.extend_from_slice(&1i32.to_be_bytes());
        burst.extend_from_slice(b"/\0");
    }
    // A short write timeout: once the server stops reading, the kernel
    // still takes a little now and then (a write returns part of its
    // bytes after the timeout, and the next one waits again), and `good`
    // must ask before its 10 s session expires.
    lazy.s
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut stopped = false;
    for _ in 0..50 {
        if lazy.s.write_all(&burst).is_err() {
            stopped = true; // the server stopped reading from us: backpressure
            break;
        }
    }
    // 18 MB of requests (88 MB of replies asked): the server stopped
    // reading long before (both runtimes; the async one used to read all
    // of it).
    assert!(
        stopped,
        "the server took all 18 MB from a client that reads nothing"
    );
    assert_eq!(good.exists_root(1), 0, "others are served meanwhile");
}

#[test]
fn too_many_connections_from_one_address() {
    let server = Pookeeper::start(&["--max-client-cnxns", "3"]);
    let mut held: Vec<Raw> = (0..3).map(|_| Raw::connect(&server)).collect();
    let mut fourth = TcpStream::connect(server.addr).unwrap();
    assert!(closed_by_server(&mut fourth), "fourth connection refused");
    assert_eq!(held[0].exists_root(1), 0);
    let log = server.wait_log("too many connections");
    assert!(log.contains("too many connections"), "{log}");
}

#[test]
fn four_letter_words_and_sigterm() {
    let mut server = Pookeeper::start(&["--set", "4lw.commands.whitelist=ruok,srvr,mntr"]);
    let hp = server.hostport();
    assert_eq!(four_letter_word(&hp, "ruok").unwrap(), "imok");
    let srvr = four_letter_word(&hp, "srvr").unwrap();
    assert!(
        srvr.contains("Mode: standalone") && srvr.contains("Node count: 5"),
        "{srvr}"
    );
    let mntr = four_letter_word(&hp, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    assert_eq!(
        four_letter_word(&hp, "dump").unwrap(),
        "dump is not executed because it is not in the whitelist.\n"
    );
    let status = server.terminate().expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn text_protocol_over_a_socket() {
    let server = Pookeeper::start(&[]);
    let mut t = TcpStream::connect(server.addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut lines = std::io::BufReader::new(t.try_clone().unwrap());
    let mut next = move || {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut lines, &mut l).unwrap();
        l.trim_end().to_string()
    };
    t.write_all(b"CREATE:/yolo\n").unwrap();
    assert_eq!(next(), "true:Connected");
    assert_eq!(next(), "true");
    t.write_all(b"ECREATE:/yolo/e:x\nSET:/yolo:data\nGET:/yolo\nCHILDREN:/yolo\nDELETE:/nope\n")
        .unwrap();
    assert_eq!(next(), "true");
    assert_eq!(next(), "true");
    assert_eq!(next(), "true:data");
    assert_eq!(next(), "true:e");
    assert_eq!(next(), "false:NoNode");
    // A binary client's setData reaches a text WATCH as an EVENT line.
    t.write_all(b"WATCH:/yolo\n").unwrap();
    assert_eq!(next(), "true");
    let mut bin = Raw::connect(&server);
    let mut f = Vec::new();
    let body_len = 8 + 4 + 5 + 4 + 1 + 4;
    f.extend_from_slice(&(body_len as u32).to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&5i32.to_be_bytes());
    f.extend_from_slice(&5i32.to_be_bytes());
    f.extend_from_slice(b"/yolo");
    f.extend_from_slice(&1i32.to_be_bytes());
    f.push(b'z');
    f.extend_from_slice(&(-1i32).to_be_bytes());
    bin.s.write_all(&f).unwrap();
    assert!(bin.frame().is_some());
    assert_eq!(next(), "EVENT:NodeDataChanged:/yolo");
    // The ephemeral goes with the telnet connection.
    drop(next);
    drop(t);
    let mut gone = false;
    for xid in 10..200i32 {
        let mut f = Vec::new();
        f.extend_from_slice(&(8u32 + 4 + 7 + 1).to_be_bytes());
        f.extend_from_slice(&xid.to_be_bytes());
        f.extend_from_slice(&3i32.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(b"/yolo/e");
        f.push(0);
        bin.s.write_all(&f).unwrap();
        let r = bin.frame().unwrap();
        if i32::from_be_bytes([r[12], r[13], r[14], r[15]]) == -101 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone, "the text connection's ephemeral outlived it");
}
