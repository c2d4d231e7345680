//! One ZooKeeper session over a blocking `std::net::TcpStream`: the
//! handshake, a frame reader, batched writes, and a synchronous `call` for
//! setup work.

use crate::jute::{self, ReplyHeader};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest reply frame accepted (a little over jute.maxbuffer).
const MAX_FRAME: usize = 4 << 20;

/// Splits a byte stream into length-prefixed frames.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameReader {
    /// An empty reader with a 64 KiB buffer.
    pub fn new() -> Self {
        Self {
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
        }
    }

    /// Reads once from `r` into the buffer (compacting and growing it as
    /// needed); returns the byte count, 0 at end of stream.
    pub fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        // Room wanted from `start`: the whole head frame, or at least 4 KiB.
        let want = self.pending_len().unwrap_or(0).max(4096);
        if self.start > 0 && self.buf.len() - self.start < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.start < want {
            self.buf.resize(self.start + want, 0);
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let n = r.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Total bytes (prefix included) the frame at the head needs, if its
    /// length prefix has arrived.
    fn pending_len(&self) -> Option<usize> {
        if self.end - self.start < 4 {
            return None;
        }
        let b = &self.buf[self.start..self.start + 4];
        let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Some(usize::try_from(n).unwrap_or(0).min(MAX_FRAME) + 4)
    }

    /// The next complete frame's payload, if one is buffered.
    pub fn next_frame(&mut self) -> io::Result<Option<&[u8]>> {
        if self.end - self.start < 4 {
            return Ok(None);
        }
        let b = &self.buf[self.start..self.start + 4];
        let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_FRAME)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad frame length {n}"))
            })?;
        if self.end - self.start < 4 + n {
            return Ok(None);
        }
        let from = self.start + 4;
        self.start = from + n;
        Ok(Some(&self.buf[from..from + n]))
    }
}

/// A connected ZooKeeper session.
pub struct Session {
    stream: TcpStream,
    reader: FrameReader,
    out: Vec<u8>,
    next_xid: i32,
    /// The session id the server assigned.
    pub session_id: i64,
    /// The negotiated session timeout.
    pub timeout: Duration,
    /// When a request was last written (pings are due `timeout / 3` later).
    last_send: Instant,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Session {
    /// Connects to `addr` (`host:port`), performs the handshake asking for
    /// `timeout_ms`, and fails if the server refuses the session. Waits at
    /// most `connect_timeout` for the TCP connection and the handshake.
    pub fn connect(addr: &str, timeout_ms: i32, connect_timeout: Duration) -> io::Result<Self> {
        let sock = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| invalid(format!("{addr}: no address")))?;
        let stream = TcpStream::connect_timeout(&sock, connect_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(connect_timeout))?;
        let mut s = Self {
            stream,
            reader: FrameReader::new(),
            out: Vec::with_capacity(16 << 10),
            next_xid: 1,
            session_id: 0,
            timeout: Duration::ZERO,
            last_send: Instant::now(),
        };
        jute::connect_request(&mut s.out, timeout_ms);
        s.flush()?;
        let resp = loop {
            if let Some(f) = s.reader.next_frame()? {
                break jute::connect_response(f).map_err(|e| invalid(e.to_string()))?;
            }
            s.fill()?;
        };
        if resp.timeout_ms <= 0 {
            return Err(invalid(format!("{addr}: session refused")));
        }
        s.session_id = resp.session_id;
        s.timeout = Duration::from_millis(resp.timeout_ms as u64);
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(s)
    }

    /// Sets the socket read timeout (`None`: block forever). A read that
    /// times out returns `WouldBlock` or `TimedOut` from [`Session::fill`].
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    /// Takes the next xid (1, 2, 3, …; never the special negative ones).
    pub fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    /// The buffer of encoded requests not written yet.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Writes every queued request in one `write_all`.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
            self.last_send = Instant::now();
        }
        Ok(())
    }

    /// Reads once from the socket; an end of stream is an error.
    pub fn fill(&mut self) -> io::Result<()> {
        match self.reader.read_from(&mut self.stream)? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            )),
            _ => Ok(()),
        }
    }

    /// The next buffered reply frame, if complete.
    pub fn frame(&mut self) -> io::Result<Option<&[u8]>> {
        self.reader.next_frame()
    }

    /// Queues and writes a ping when nothing was sent for a third of the
    /// session timeout (the server's reply, xid -2, is to be skipped).
    pub fn ping_if_idle(&mut self) -> io::Result<()> {
        if self.last_send.elapsed() >= self.timeout / 3 {
            jute::ping(&mut self.out);
            self.flush()?;
        }
        Ok(())
    }

    /// Sends one request (built by `build` from an xid) and waits for its
    /// reply, skipping notifications and pings; returns the header and the
    /// record. For setup and teardown, not for measuring.
    pub fn call(
        &mut self,
        build: impl FnOnce(&mut Vec<u8>, i32),
    ) -> io::Result<(ReplyHeader, Vec<u8>)> {
        let xid = self.xid();
        build(&mut self.out, xid);
        self.flush()?;
        loop {
            while let Some(f) = self.reader.next_frame()? {
                let (h, body) = jute::reply_header(f).map_err(|e| invalid(e.to_string()))?;
                if h.xid == jute::NOTIFICATION_XID || h.xid == jute::PING_XID {
                    continue;
                }
                if h.xid != xid {
                    return Err(invalid(format!("reply xid {} to request xid {xid}", h.xid)));
                }
                return Ok((h, body.to_vec()));
            }
            self.fill()?;
        }
    }

    /// Closes the session (closeSession, then waits up to 5 s for the
    /// reply); errors are ignored: the connection is dropped either way.
    pub fn close(mut self) {
        let _ = self.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = self.call(jute::close_session);
    }
}
