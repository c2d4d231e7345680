//! Hardening against careless operators and hostile clients, against the
//! real binary: an ensemble's zoo.cfg is refused, session passwords cannot
//! be computed from session ids, session ends are logged, and the text
//! dialect can be turned off on the client port.

use pookeeper_tests::{pookeeper_bin, Pookeeper, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// A raw ZooKeeper handshake; returns (session id, password), or `None`
/// when the server refused the session (session id 0) or closed.
fn handshake(addr: &str, sid: i64, passwd: &[u8], timeout_ms: i32) -> Option<(i64, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes()); // protocol version
    body.extend_from_slice(&0i64.to_be_bytes()); // last zxid seen
    body.extend_from_slice(&timeout_ms.to_be_bytes());
    body.extend_from_slice(&sid.to_be_bytes());
    body.extend_from_slice(&(passwd.len() as i32).to_be_bytes());
    body.extend_from_slice(passwd);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).ok()?;
    let sid = i64::from_be_bytes(reply[8..16].try_into().unwrap());
    let plen = i32::from_be_bytes(reply[16..20].try_into().unwrap()) as usize;
    let pw = reply[20..20 + plen].to_vec();
    // Keep the session's connection open a little, then let it go.
    std::mem::forget(s);
    (sid != 0).then_some((sid, pw))
}

/// ZooKeeper's (and formerly our) password: splitmix64 bytes of
/// `id ^ 0xB3415C00`, computable by anyone who knows the id.
fn constant_derived_password(sid: i64) -> Vec<u8> {
    let mut x = (sid as u64) ^ 0xB341_5C00;
    let mut out = Vec::new();
    for _ in 0..2 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out
}

#[test]
fn an_ensemble_zoo_cfg_is_refused_with_exit_2_naming_the_lines() {
    let dir = TempDir::new("ensemble-cfg");
    let cfg = dir.0.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=0\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.3=127.0.0.1:2890:3890\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(pookeeper_bin())
        .arg(&cfg)
        .output()
        .expect("run pookeeper");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(":4: server.1=127.0.0.1:2888:3888"), "{err}");
    assert!(err.contains(":6: server.3=127.0.0.1:2890:3890"), "{err}");
    assert!(err.contains("forceStandalone"), "{err}");
    // Asking for standalone explicitly starts it.
    let pk = Pookeeper::start(&[cfg.to_str().unwrap(), "--set", "forceStandalone=true"]);
    assert!(handshake(&pk.hostport(), 0, &[0; 16], 4000).is_some());
}

#[test]
fn session_passwords_come_from_a_kept_random_secret() {
    let dir = TempDir::new("secret");
    let (sid, pw) = {
        let pk = Pookeeper::start_in(&dir.0, &[]);
        let (sid, pw) = handshake(&pk.hostport(), 0, &[0; 16], 30000).expect("session");
        assert_ne!(pw, constant_derived_password(sid));
        // A password computed from the id alone is refused.
        assert!(handshake(&pk.hostport(), sid, &constant_derived_password(sid), 30000).is_none());
        let mut wrong = pw.clone();
        wrong[0] ^= 1;
        assert!(handshake(&pk.hostport(), sid, &wrong, 30000).is_none());
        (sid, pw)
    };
    let secret = std::fs::read(dir.0.join("pookeeper.secret")).expect("secret kept");
    assert_eq!(secret.len(), 32);
    // After a restart the same secret gives the same password: the session
    // resumes.
    let pk = Pookeeper::start_in(&dir.0, &[]);
    assert_eq!(
        handshake(&pk.hostport(), sid, &pw, 30000).map(|s| s.0),
        Some(sid)
    );
    drop(pk);
    // Another data directory has another secret.
    let other = Pookeeper::start(&[]);
    let (_, pw2) = handshake(&other.hostport(), 0, &[0; 16], 30000).expect("session");
    assert_ne!(pw2, pw);
}

#[test]
fn session_expiry_is_logged_with_its_id() {
    let pk = Pookeeper::start(&["--tick-time", "200"]);
    let (sid, _) = handshake(&pk.hostport(), 0, &[0; 16], 400).expect("session");
    let want = format!("Expiring session 0x{sid:x}, timeout of 400ms exceeded");
    let log = pk.wait_log(&want);
    assert!(
        log.contains(&format!("Established session 0x{sid:x}")),
        "{log}"
    );
    assert!(log.contains(&want), "{log}");
}

#[test]
fn text_dialect_off_on_the_client_port_but_on_the_text_port() {
    let text_port = pookeeper_tests::free_port();
    let pk = Pookeeper::start(&[
        "--set",
        "textOnClientPort=false",
        "--text-port",
        &text_port.to_string(),
    ]);
    let mut s = TcpStream::connect(pk.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"CREATE:/yolo\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
    let log = pk.wait_log("textOnClientPort=false");
    assert!(log.contains("textOnClientPort=false"), "{log}");
    let mut t = TcpStream::connect(("127.0.0.1", text_port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(b"EXISTS:/\n").unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    while !got.ends_with(b"true\n") {
        let n = t.read(&mut chunk).expect("text reply");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(got, b"true:Connected\ntrue\n");
    // Binary clients are served as usual.
    assert!(handshake(&pk.hostport(), 0, &[0; 16], 4000).is_some());
}

fn frame(xid: i32, opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut f = ((body.len() + 8) as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&xid.to_be_bytes());
    f.extend_from_slice(&opcode.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn jute_string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// A raw session: connects, returns the stream after the handshake.
fn session(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&30000i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&jute_string(&[0; 16]));
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    s.write_all(&f).unwrap();
    read_frame(&mut s);
    s
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a reply");
    let mut f = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut f).expect("a whole reply");
    f
}

/// Clients that pipeline getData of a 1 MB znode and never read: the
/// server's memory stays bounded (it stops decoding a connection's
/// requests once its replies back up) and other clients are served.
/// Before: 38 KB of requests grew the server to about 1 GB each.
#[test]
fn clients_that_never_read_cannot_make_the_server_buffer_gigabytes() {
    let pk = Pookeeper::start(&["--set", "forceSync=no"]);
    let addr = pk.hostport();
    let mut owner = session(&addr);
    let mut create = jute_string(b"/big");
    create.extend_from_slice(&jute_string(&vec![7u8; 1_000_000]));
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&31i32.to_be_bytes());
    create.extend_from_slice(&jute_string(b"world"));
    create.extend_from_slice(&jute_string(b"anyone"));
    create.extend_from_slice(&0i32.to_be_bytes());
    owner.write_all(&frame(1, 1, &create)).unwrap();
    let r = read_frame(&mut owner);
    assert_eq!(&r[12..16], &[0; 4], "create /big");
    std::thread::sleep(Duration::from_millis(300));
    let before = pk.status_kb("VmRSS");
    let mut get = jute_string(b"/big");
    get.push(0);
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let mut s = session(&addr);
        // 2000 requests (about 30 KB), each for a 1 MB reply: 2 GB asked.
        let burst: Vec<u8> = (1..=2000).flat_map(|x| frame(x, 4, &get)).collect();
        s.write_all(&burst).unwrap();
        hogs.push(s);
    }
    // Meanwhile a fresh client is served promptly, a few times over.
    for round in 0..5 {
        let started = std::time::Instant::now();
        let mut c = session(&addr);
        let mut small = jute_string(b"/zookeeper");
        small.push(0);
        c.write_all(&frame(1, 3, &small)).unwrap();
        let r = read_frame(&mut c);
        assert_eq!(&r[12..16], &[0; 4]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "round {round}: a fresh client waited {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let peak = pk.status_kb("VmHWM");
    let grew_mb = peak.saturating_sub(before) / 1024;
    eprintln!("RSS before {before} kB, peak {peak} kB: grew {grew_mb} MB");
    assert!(
        grew_mb < 80,
        "the server grew by {grew_mb} MB (RSS {before} kB before, peak {peak} kB)"
    );
    // A hog that starts reading gets its replies in order.
    let hog = &mut hogs[0];
    for want in 1..=5 {
        let r = read_frame(hog);
        assert_eq!(i32::from_be_bytes(r[0..4].try_into().unwrap()), want);
        assert_eq!(r.len(), 16 + 4 + 1_000_000 + 68);
    }
    drop(hogs);
}

/// Latency figures count the log's sync: durable writes show non-zero
/// latencies, no larger than what the client measured. (Before, the loop
/// took one clock reading per turn, so every figure was 0.)
#[test]
fn latencies_under_durable_writes_are_measured() {
    let pk = Pookeeper::start(&["--set", "4lw.commands.whitelist=*"]);
    let addr = pk.hostport();
    let mut c = session(&addr);
    // 900 KB per write: each sync takes a few ms (latencies are counted
    // in whole ms, as ZooKeeper counts them).
    let n = 40;
    let data = vec![3u8; 900_000];
    let started = std::time::Instant::now();
    for x in 1..=n {
        let mut create = jute_string(format!("/lat{x}").as_bytes());
        create.extend_from_slice(&jute_string(&data));
        create.extend_from_slice(&1i32.to_be_bytes());
        create.extend_from_slice(&31i32.to_be_bytes());
        create.extend_from_slice(&jute_string(b"world"));
        create.extend_from_slice(&jute_string(b"anyone"));
        create.extend_from_slice(&0i32.to_be_bytes());
        c.write_all(&frame(x, 1, &create)).unwrap();
        let r = read_frame(&mut c);
        assert_eq!(&r[12..16], &[0; 4]);
    }
    let client_avg_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let srvr = pookeeper_tests::four_letter_word(&addr, "srvr").unwrap();
    let line = srvr
        .lines()
        .find_map(|l| l.strip_prefix("Latency min/avg/max: "))
        .unwrap_or_else(|| panic!("{srvr}"));
    let v: Vec<f64> = line.split('/').map(|x| x.trim().parse().unwrap()).collect();
    eprintln!("server latency min/avg/max {line} ms; client average {client_avg_ms:.3} ms");
    assert!(
        v[2] > 0.0,
        "max latency is 0 after {n} durable writes: {srvr}"
    );
    assert!(
        v[1] <= client_avg_ms + 1.0,
        "server average {} ms above the client's {client_avg_ms:.3} ms",
        v[1]
    );
}

/// Reads until the server closes the connection (end of stream or a
/// reset); `None` if it stays open for `limit`. Returns the bytes read.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<usize> {
    let deadline = std::time::Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(total),
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if std::time::Instant::now() > deadline {
                    return None;
                }
            }
            Err(_) => return Some(total),
        }
    }
}

/// The stall rule of the send queue (runtimes/common/src/sendq.rs), in
/// whichever runtime `POOKEEPER_RUNTIME` picks: clients that pipeline
/// reads of a 1 MB znode and never read the replies are closed once their
/// queue has made no progress for the stall limit (maxSessionTimeout,
/// 2 s here), with a warn line naming the connection, its peer and the
/// unsent bytes, while another client on the same server keeps being
/// answered. The text client's session does not expire (a telnet user
/// does not ping), so only the stall rule closes it; the binary client's
/// session expires first (the server reads nothing from it, pings
/// included), and its close cannot complete while it does not read: the
/// same rule drops it.
#[test]
fn a_client_that_never_reads_is_closed_after_the_stall_limit() {
    let dir = TempDir::new("stall");
    let cfg = dir.0.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\nmaxSessionTimeout=2000\ndataDir={}\nclientPort=0\nforceSync=no\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let pk = Pookeeper::start(&[cfg.to_str().unwrap()]);
    let addr = pk.hostport();
    let mut owner = session(&addr);
    let mut create = jute_string(b"/big");
    create.extend_from_slice(&jute_string(&vec![b'a'; 1_000_000]));
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&31i32.to_be_bytes());
    create.extend_from_slice(&jute_string(b"world"));
    create.extend_from_slice(&jute_string(b"anyone"));
    create.extend_from_slice(&0i32.to_be_bytes());
    owner.write_all(&frame(1, 1, &create)).unwrap();
    let r = read_frame(&mut owner);
    assert_eq!(&r[12..16], &[0; 4], "create /big");
    drop(owner);

    // A client that reads its replies, asking every 100 ms throughout
    // (which also keeps its 2 s session alive).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        let mut c = session(&addr);
        std::thread::spawn(move || {
            let mut exists = jute_string(b"/zookeeper");
            exists.push(0);
            let (mut n, mut worst) = (0, Duration::ZERO);
            for xid in 1.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let started = std::time::Instant::now();
                c.write_all(&frame(xid, 3, &exists)).unwrap();
                let r = read_frame(&mut c);
                assert_eq!(i32::from_be_bytes(r[0..4].try_into().unwrap()), xid);
                assert_eq!(&r[12..16], &[0; 4], "exists /zookeeper");
                worst = worst.max(started.elapsed());
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (n, worst)
        })
    };

    // 200 getData of /big each (200 MB of replies asked), never read.
    let mut get = jute_string(b"/big");
    get.push(0);
    let mut binary = session(&addr);
    let burst: Vec<u8> = (1..=200).flat_map(|x| frame(x, 4, &get)).collect();
    binary.write_all(&burst).unwrap();
    // The text client waits for its session (else its reads would wait
    // behind the session's creation and be answered all at once when it
    // commits, past the core's output burst), then never reads again.
    let mut text = TcpStream::connect(&addr).unwrap();
    text.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    text.write_all(b"EXISTS:/\n").unwrap();
    let mut greeting = Vec::new();
    let mut byte = [0u8; 1];
    while !greeting.ends_with(b"true\n") {
        text.read_exact(&mut byte).expect("the text greeting");
        greeting.push(byte[0]);
    }
    text.write_all(&b"GET:/big\n".repeat(200)).unwrap();
    let started = std::time::Instant::now();
    let peers = [binary.local_addr().unwrap(), text.local_addr().unwrap()];
    let lines: Vec<String> = peers
        .iter()
        .map(|peer| format!("from {peer}: client not reading"))
        .collect();
    let deadline = started + Duration::from_secs(20);
    let mut closed_after = [None, None];
    while closed_after.contains(&None) && std::time::Instant::now() < deadline {
        let log = pk.log();
        for (i, line) in lines.iter().enumerate() {
            if closed_after[i].is_none() && log.contains(line.as_str()) {
                closed_after[i] = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = pk.log();
    eprintln!("closed after {closed_after:?}");
    for (i, line) in lines.iter().enumerate() {
        let at = closed_after[i].unwrap_or_else(|| panic!("no {line:?} in 20 s:\n{log}"));
        // Not before the stall limit: the queue made progress until the
        // socket's buffers were full.
        assert!(at >= Duration::from_millis(1500), "{line}: after {at:?}");
        let warn = log.lines().find(|l| l.contains(line.as_str())).unwrap();
        eprintln!("{warn}");
        assert!(warn.contains("WARN"), "{warn}");
        assert!(warn.contains("bytes unsent"), "{warn}");
    }
    // The text client was closed by the stall rule itself.
    let text_line = log.lines().find(|l| l.contains(&lines[1])).unwrap();
    assert!(text_line.contains("client not reading ("), "{text_line}");
    // Both sockets are closed: what the kernel buffered, then the end.
    for (name, s) in [("binary", &mut binary), ("text", &mut text)] {
        let got = read_until_closed(s, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the {name} client's connection is still open"));
        assert!(got < 100_000_000, "{name}: read {got} bytes");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (answered, worst) = good.join().expect("the reading client was answered");
    eprintln!("the reading client: {answered} answers, slowest {worst:?}");
    // (A debug build takes a while to produce the hogs' first replies.)
    assert!(answered >= 5, "{answered} answers");
    assert!(worst < Duration::from_secs(5), "slowest answer {worst:?}");
    // And the server goes on serving fresh clients.
    let mut c = session(&addr);
    let mut small = jute_string(b"/zookeeper");
    small.push(0);
    c.write_all(&frame(1, 3, &small)).unwrap();
    assert_eq!(&read_frame(&mut c)[12..16], &[0; 4]);
}
