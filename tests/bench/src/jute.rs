//! A minimal jute codec: exactly the records the benchmark client sends
//! and reads (ZOOKEEPER-FACTS.md §2).
//!
//! Every packet is a 4-byte big-endian length and a payload; fields are
//! concatenated without tags (int 4 bytes BE, long 8, bool 1; a buffer or
//! string is an int length and the bytes, -1 meaning null; a vector is an
//! int count and the elements).

use std::fmt;

/// Request opcodes (`ZooDefs.OpCode`).
pub mod op {
    /// `create`: CreateRequest{path,data,acl,flags} -> CreateResponse{path}.
    pub const CREATE: i32 = 1;
    /// `delete`: DeleteRequest{path,version} -> empty.
    pub const DELETE: i32 = 2;
    /// `exists`: ExistsRequest{path,watch} -> Stat.
    pub const EXISTS: i32 = 3;
    /// `getData`: GetDataRequest{path,watch} -> {data,stat}.
    pub const GET_DATA: i32 = 4;
    /// `setData`: SetDataRequest{path,data,version} -> Stat.
    pub const SET_DATA: i32 = 5;
    /// `getChildren`: GetChildrenRequest{path,watch} -> {children}.
    pub const GET_CHILDREN: i32 = 8;
    /// `ping`: empty body, sent with xid -2.
    pub const PING: i32 = 11;
    /// `closeSession`: empty body; the server replies, then closes.
    pub const CLOSE_SESSION: i32 = -11;
}

/// `KeeperException.Code` values the client names in its reports.
pub mod err {
    /// Success.
    pub const OK: i32 = 0;
    /// The node does not exist.
    pub const NONODE: i32 = -101;
    /// The node already exists.
    pub const NODEEXISTS: i32 = -110;

    /// ZooKeeper's name for an error code (`"E<n>"` for unknown ones is
    /// left to the caller: this returns `None`).
    pub fn name(code: i32) -> Option<&'static str> {
        Some(match code {
            0 => "OK",
            -1 => "SYSTEMERROR",
            -2 => "RUNTIMEINCONSISTENCY",
            -3 => "DATAINCONSISTENCY",
            -4 => "CONNECTIONLOSS",
            -5 => "MARSHALLINGERROR",
            -6 => "UNIMPLEMENTED",
            -7 => "OPERATIONTIMEOUT",
            -8 => "BADARGUMENTS",
            -12 => "UNKNOWNSESSION",
            -100 => "APIERROR",
            -101 => "NONODE",
            -102 => "NOAUTH",
            -103 => "BADVERSION",
            -108 => "NOCHILDRENFOREPHEMERALS",
            -110 => "NODEEXISTS",
            -111 => "NOTEMPTY",
            -112 => "SESSIONEXPIRED",
            -114 => "INVALIDACL",
            -115 => "AUTHFAILED",
            -118 => "SESSIONMOVED",
            -121 => "NOWATCHER",
            -122 => "REQUESTTIMEOUT",
            -125 => "QUOTAEXCEEDED",
            -127 => "THROTTLEDOP",
            _ => return None,
        })
    }
}

/// The xid of watch notifications.
pub const NOTIFICATION_XID: i32 = -1;
/// The xid of pings (the reply carries it too).
pub const PING_XID: i32 = -2;
/// Encoded size of a `Stat` (q q q q i i i q i i q).
pub const STAT_LEN: usize = 68;
/// Byte offset of `version` inside an encoded `Stat`.
const STAT_VERSION_OFFSET: usize = 32;
/// `EventType.NodeDataChanged`.
pub const EVENT_NODE_DATA_CHANGED: i32 = 3;
/// `KeeperState.SyncConnected`.
pub const STATE_SYNC_CONNECTED: i32 = 3;

/// Appends one length-prefixed frame to a buffer: fields are pushed with
/// the typed methods, and `finish` writes the length.
pub struct FrameWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> FrameWriter<'a> {
    /// Starts a frame at the end of `buf` (4 placeholder bytes).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&[0; 4]);
        Self { buf, start }
    }

    /// Starts a request frame with its `RequestHeader{xid, type}`.
    pub fn request(buf: &'a mut Vec<u8>, xid: i32, opcode: i32) -> Self {
        let mut w = Self::new(buf);
        w.int(xid).int(opcode);
        w
    }

    /// A 4-byte big-endian int.
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// An 8-byte big-endian long.
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A one-byte bool.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(u8::from(v));
        self
    }

    /// A length-prefixed buffer.
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.int(len_i32(v.len()));
        self.buf.extend_from_slice(v);
        self
    }

    /// A length-prefixed UTF-8 string.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    /// Writes the frame length; the frame is complete.
    pub fn finish(self) {
        let len = len_i32(self.buf.len() - self.start - 4);
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

fn len_i32(n: usize) -> i32 {
    // Frames this client builds are far below jute.maxbuffer (1 MiB).
    i32::try_from(n).expect("jute length fits in an int")
}

/// Appends a `ConnectRequest` frame for a new session (protocol 0,
/// lastZxidSeen 0, session 0, empty 16-byte password, readOnly false: 45
/// bytes of payload).
pub fn connect_request(buf: &mut Vec<u8>, timeout_ms: i32) {
    let mut w = FrameWriter::new(buf);
    w.int(0)
        .long(0)
        .int(timeout_ms)
        .long(0)
        .buffer(&[0; 16])
        .bool(false);
    w.finish();
}

/// Appends `create(path, data)` with the open ACL (world:anyone, ALL) and
/// the given CreateMode flags.
pub fn create(buf: &mut Vec<u8>, xid: i32, path: &str, data: &[u8], flags: i32) {
    let mut w = FrameWriter::request(buf, xid, op::CREATE);
    w.string(path).buffer(data);
    // ACL vector: one entry, perms ALL (31), Id{"world","anyone"}.
    w.int(1).int(31).string("world").string("anyone");
    w.int(flags);
    w.finish();
}

/// Appends `delete(path, version)` (-1: any version).
pub fn delete(buf: &mut Vec<u8>, xid: i32, path: &str, version: i32) {
    let mut w = FrameWriter::request(buf, xid, op::DELETE);
    w.string(path).int(version);
    w.finish();
}

/// Appends a `{path, watch}` request: exists, getData or getChildren.
pub fn path_watch(buf: &mut Vec<u8>, xid: i32, opcode: i32, path: &str, watch: bool) {
    let mut w = FrameWriter::request(buf, xid, opcode);
    w.string(path).bool(watch);
    w.finish();
}

/// Appends `setData(path, data, version)` (-1: any version).
pub fn set_data(buf: &mut Vec<u8>, xid: i32, path: &str, data: &[u8], version: i32) {
    let mut w = FrameWriter::request(buf, xid, op::SET_DATA);
    w.string(path).buffer(data).int(version);
    w.finish();
}

/// Appends a ping (xid -2, empty body).
pub fn ping(buf: &mut Vec<u8>) {
    FrameWriter::request(buf, PING_XID, op::PING).finish();
}

/// Appends closeSession (empty body).
pub fn close_session(buf: &mut Vec<u8>, xid: i32) {
    FrameWriter::request(buf, xid, op::CLOSE_SESSION).finish();
}

/// A reply that does not have the shape its request promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed reply: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads jute fields from a frame payload (the 4-byte length already
/// removed).
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError(format!(
                "needed {n} bytes at offset {}, frame has {}",
                self.pos,
                self.b.len()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A 4-byte int.
    pub fn int(&mut self) -> Result<i32, DecodeError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// An 8-byte long.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let s = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }

    /// A one-byte bool.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A buffer; `None` for null (-1).
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| DecodeError(format!("negative length {n}")))?;
        self.take(n).map(Some)
    }

    /// A string (null reads as empty).
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.buffer()?.unwrap_or_default();
        std::str::from_utf8(b).map_err(|_| DecodeError("string is not UTF-8".into()))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError(format!("{} trailing bytes", self.remaining())))
        }
    }
}

/// `ReplyHeader{xid, zxid, err}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid (-1 notification, -2 ping).
    pub xid: i32,
    /// The server's last zxid (-1 on 3.8 notifications).
    pub zxid: i64,
    /// The error code; the response record follows only when it is 0.
    pub err: i32,
}

/// Splits a reply frame into its header and the response record.
pub fn reply_header(frame: &[u8]) -> Result<(ReplyHeader, &[u8]), DecodeError> {
    let mut r = Reader::new(frame);
    let h = ReplyHeader {
        xid: r.int()?,
        zxid: r.long()?,
        err: r.int()?,
    };
    Ok((h, &frame[16..]))
}

/// `ConnectResponse{protocolVersion, timeOut, sessionId, passwd, readOnly?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Negotiated session timeout; 0 means the session was refused.
    pub timeout_ms: i32,
    /// The new session's id.
    pub session_id: i64,
}

/// Decodes a ConnectResponse payload (the readOnly byte is optional).
pub fn connect_response(frame: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let mut r = Reader::new(frame);
    let _protocol = r.int()?;
    let timeout_ms = r.int()?;
    let session_id = r.long()?;
    let _passwd = r.buffer()?;
    Ok(ConnectResponse {
        timeout_ms,
        session_id,
    })
}

/// `WatcherEvent{type, state, path}`, the body of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent<'a> {
    /// EventType (3 = NodeDataChanged).
    pub kind: i32,
    /// KeeperState (3 = SyncConnected).
    pub state: i32,
    /// The znode the event is about.
    pub path: &'a str,
}

/// Decodes the body of a notification (after its ReplyHeader).
pub fn watcher_event(body: &[u8]) -> Result<WatcherEvent<'_>, DecodeError> {
    let mut r = Reader::new(body);
    let kind = r.int()?;
    let state = r.int()?;
    let path = r.string()?;
    r.end()?;
    Ok(WatcherEvent { kind, state, path })
}

/// The `version` of an encoded Stat (which must be exactly STAT_LEN bytes).
pub fn stat_version(stat: &[u8]) -> Result<i32, DecodeError> {
    if stat.len() != STAT_LEN {
        return Err(DecodeError(format!(
            "Stat of {} bytes, expected {STAT_LEN}",
            stat.len()
        )));
    }
    let mut r = Reader::new(&stat[STAT_VERSION_OFFSET..]);
    r.int()
}

/// What a successful reply's record must look like, checked by
/// [`check_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing (delete, closeSession).
    Empty,
    /// A Stat (exists, setData).
    Stat,
    /// GetDataResponse with data of exactly this many bytes, and a Stat.
    Data(usize),
    /// CreateResponse: a path.
    Path,
    /// GetChildrenResponse: a vector of strings.
    Children,
}

/// Checks the record of a successful reply against what was asked for.
pub fn check_body(expect: Expect, body: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(body);
    match expect {
        Expect::Empty => {}
        Expect::Stat => r.skip(STAT_LEN)?,
        Expect::Data(len) => {
            let got = r.buffer()?.map_or(0, <[u8]>::len);
            if got != len {
                return Err(DecodeError(format!("data of {got} bytes, expected {len}")));
            }
            r.skip(STAT_LEN)?;
        }
        Expect::Path => {
            r.string()?;
        }
        Expect::Children => {
            let n = r.int()?;
            for _ in 0..n.max(0) {
                r.string()?;
            }
        }
    }
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_is_45_bytes_framed() {
        let mut b = Vec::new();
        connect_request(&mut b, 30_000);
        assert_eq!(b.len(), 4 + 45);
        assert_eq!(&b[..4], &45i32.to_be_bytes());
        assert_eq!(&b[4..8], &0i32.to_be_bytes()); // protocol version
        assert_eq!(&b[16..20], &30_000i32.to_be_bytes()); // timeout
        assert_eq!(&b[28..32], &16i32.to_be_bytes()); // password length
        assert_eq!(b[48], 0); // readOnly
    }

    #[test]
    fn get_data_bytes() {
        let mut b = Vec::new();
        path_watch(&mut b, 7, op::GET_DATA, "/a", true);
        let expect: Vec<u8> = [
            &15i32.to_be_bytes()[..], // length: 4 + 4 + (4 + 2) + 1
            &7i32.to_be_bytes(),
            &4i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            b"/a",
            &[1],
        ]
        .concat();
        assert_eq!(b, expect);
    }

    #[test]
    fn create_bytes() {
        let mut b = Vec::new();
        create(&mut b, 1, "/x", b"hi", 0);
        let mut r = Reader::new(&b[4..]);
        assert_eq!(r.int().unwrap(), 1);
        assert_eq!(r.int().unwrap(), op::CREATE);
        assert_eq!(r.string().unwrap(), "/x");
        assert_eq!(r.buffer().unwrap(), Some(&b"hi"[..]));
        assert_eq!(r.int().unwrap(), 1); // one ACL
        assert_eq!(r.int().unwrap(), 31);
        assert_eq!(r.string().unwrap(), "world");
        assert_eq!(r.string().unwrap(), "anyone");
        assert_eq!(r.int().unwrap(), 0); // flags
        r.end().unwrap();
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!(len as usize, b.len() - 4);
    }

    #[test]
    fn replies_decode() {
        let mut f = Vec::new();
        f.extend_from_slice(&(-1i32).to_be_bytes());
        f.extend_from_slice(&(-1i64).to_be_bytes());
        f.extend_from_slice(&0i32.to_be_bytes());
        f.extend_from_slice(&3i32.to_be_bytes());
        f.extend_from_slice(&3i32.to_be_bytes());
        f.extend_from_slice(&2i32.to_be_bytes());
        f.extend_from_slice(b"/w");
        let (h, body) = reply_header(&f).unwrap();
        assert_eq!(
            h,
            ReplyHeader {
                xid: NOTIFICATION_XID,
                zxid: -1,
                err: 0
            }
        );
        let ev = watcher_event(body).unwrap();
        assert_eq!((ev.kind, ev.state, ev.path), (3, 3, "/w"));

        let mut stat = vec![0u8; STAT_LEN];
        stat[32..36].copy_from_slice(&9i32.to_be_bytes());
        assert_eq!(stat_version(&stat).unwrap(), 9);
        let mut data = Vec::new();
        data.extend_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&stat);
        check_body(Expect::Data(3), &data).unwrap();
        assert!(check_body(Expect::Data(4), &data).is_err());
        assert!(check_body(Expect::Stat, &data).is_err());
        check_body(Expect::Children, &0i32.to_be_bytes()).unwrap();
        assert!(reply_header(&[0; 15]).is_err());
    }
}
