//! ZooKeeper's protocol records (zookeeper.jute, module `proto` and `data`),
//! decoded from requests and encoded into replies.

use super::jute::{DecodeError, Reader, Writer};
use crate::tree::Stat;
use bytes::Bytes;
use smallvec::SmallVec;

/// Opcodes (`ZooDefs.OpCode`).
pub mod op {
    #![allow(missing_docs)]
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Special xids (`ClientCnxn`).
pub mod xid {
    #![allow(missing_docs)]
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// An identity: `scheme:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    /// The scheme (`world`, `digest`, `ip`, `auth`, ...).
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
}

/// One access-control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    /// Permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16).
    pub perms: i32,
    /// Who.
    pub id: Id,
}

/// An ACL list; most are one entry long.
pub type AclList = SmallVec<[Acl; 1]>;

impl Acl {
    /// `world:anyone` with all permissions (`ZooDefs.Ids.OPEN_ACL_UNSAFE`).
    pub fn open() -> Self {
        Self {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            perms: r.int("acl perms")?,
            id: Id {
                scheme: r.string("acl scheme")?,
                id: r.string("acl id")?,
            },
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.int(self.perms)
            .string(&self.id.scheme)
            .string(&self.id.id);
    }
}

/// Reads an ACL vector; `None` for a null vector.
pub fn decode_acls(r: &mut Reader<'_>) -> Result<Option<AclList>, DecodeError> {
    decode_acl_vector(r, false)
}

/// Reads the ACL vector of a client's create or setACL request as jute's
/// `BinaryInputArchive.startVector` does: -1 is null, and any other negative
/// count an empty vector (its `BinaryIndex` is done at once), which the
/// request then fails with INVALIDACL. Our own files keep the strict
/// [`decode_acls`].
pub fn decode_request_acls(r: &mut Reader<'_>) -> Result<Option<AclList>, DecodeError> {
    decode_acl_vector(r, true)
}

fn decode_acl_vector(r: &mut Reader<'_>, java: bool) -> Result<Option<AclList>, DecodeError> {
    let n = r.int("acl count")?;
    if n == -1 {
        return Ok(None);
    }
    if java && n < 0 {
        return Ok(Some(AclList::new()));
    }
    if n < 0 || (n as usize).saturating_mul(12) > r.remaining() {
        return Err(DecodeError::BadLength {
            what: "acl count",
            len: n,
        });
    }
    let mut v = AclList::new();
    for _ in 0..n {
        v.push(Acl::decode(r)?);
    }
    Ok(Some(v))
}

/// Writes an ACL vector.
pub fn encode_acls(w: &mut Writer, acls: &[Acl]) {
    w.int(acls.len() as i32);
    for a in acls {
        a.encode(w);
    }
}

/// Writes a Stat in jute order.
pub fn encode_stat(w: &mut Writer, s: &Stat) {
    w.long(s.czxid)
        .long(s.mzxid)
        .long(s.ctime)
        .long(s.mtime)
        .int(s.version)
        .int(s.cversion)
        .int(s.aversion)
        .long(s.ephemeral_owner)
        .int(s.data_length)
        .int(s.num_children)
        .long(s.pzxid);
}

/// Reads a Stat.
pub fn decode_stat(r: &mut Reader<'_>) -> Result<Stat, DecodeError> {
    Ok(Stat {
        czxid: r.long("czxid")?,
        mzxid: r.long("mzxid")?,
        ctime: r.long("ctime")?,
        mtime: r.long("mtime")?,
        version: r.int("version")?,
        cversion: r.int("cversion")?,
        aversion: r.int("aversion")?,
        ephemeral_owner: r.long("ephemeralOwner")?,
        data_length: r.int("dataLength")?,
        num_children: r.int("numChildren")?,
        pzxid: r.long("pzxid")?,
    })
}

/// The handshake a client sends first (no request header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The last zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session password (16 bytes) when resuming.
    pub passwd: Vec<u8>,
    /// Whether the client accepts a read-only server.
    pub read_only: bool,
}

impl ConnectRequest {
    /// Decodes the handshake; the trailing readOnly byte is optional.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let protocol_version = r.int("protocolVersion")?;
        let last_zxid_seen = r.long("lastZxidSeen")?;
        let timeout = r.int("timeOut")?;
        let session_id = r.long("sessionId")?;
        let passwd = r.buffer("passwd")?.to_vec();
        let read_only = if r.is_empty() {
            false
        } else {
            r.boolean("readOnly")?
        };
        Ok(Self {
            protocol_version,
            last_zxid_seen,
            timeout,
            session_id,
            passwd,
            read_only,
        })
    }

    /// Encodes the handshake as a frame (used by tests and tools).
    pub fn encode_frame(&self) -> Bytes {
        let mut w = Writer::frame();
        w.int(self.protocol_version)
            .long(self.last_zxid_seen)
            .int(self.timeout)
            .long(self.session_id)
            .buffer(&self.passwd)
            .boolean(self.read_only);
        w.finish_frame()
    }
}

/// The ops a multi may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create / create2 / createContainer / createTTL.
    Create(CreateRequest),
    /// delete.
    Delete {
        /// Path.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// New data; `None` when the client sent null.
        data: Option<Bytes>,
        /// Expected version or -1.
        version: i32,
    },
    /// check.
    Check {
        /// Path.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// getChildren (multiRead only).
    GetChildren {
        /// Path.
        path: String,
    },
    /// getData (multiRead only).
    GetData {
        /// Path.
        path: String,
    },
}

impl MultiOp {
    /// Whether it is a read (getData, getChildren: multiRead only).
    pub fn is_read(&self) -> bool {
        matches!(self, Self::GetChildren { .. } | Self::GetData { .. })
    }

    /// The op's opcode.
    pub fn op_code(&self) -> i32 {
        match self {
            Self::Create(c) => c.op,
            Self::Delete { .. } => op::DELETE,
            Self::SetData { .. } => op::SET_DATA,
            Self::Check { .. } => op::CHECK,
            Self::GetChildren { .. } => op::GET_CHILDREN,
            Self::GetData { .. } => op::GET_DATA,
        }
    }
}

/// A create of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The opcode it came with (create, create2, createContainer, createTTL).
    pub op: i32,
    /// Path (without sequence suffix).
    pub path: String,
    /// Data; `None` when the client sent null (ZooKeeper stores and
    /// returns it as null).
    pub data: Option<Bytes>,
    /// ACL; `None` when the client sent a null vector.
    pub acl: Option<AclList>,
    /// CreateMode flags.
    pub flags: i32,
    /// TTL in ms (createTTL only), else -1.
    pub ttl: i64,
}

impl CreateRequest {
    fn decode(op: i32, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let path = r.string("path")?;
        let data = r.bytes_opt("data")?;
        let acl = decode_request_acls(r)?;
        let flags = r.int("flags")?;
        let ttl = if op == op::CREATE_TTL {
            r.long("ttl")?
        } else {
            -1
        };
        Ok(Self {
            op,
            path,
            data,
            acl,
            flags,
            ttl,
        })
    }
}

/// A decoded client request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create, create2, createContainer, createTTL.
    Create(CreateRequest),
    /// delete.
    Delete {
        /// Path.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// exists.
    Exists {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// getData.
    GetData {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// New data; `None` when the client sent null.
        data: Option<Bytes>,
        /// Expected version or -1.
        version: i32,
    },
    /// getACL.
    GetAcl {
        /// Path.
        path: String,
    },
    /// setACL.
    SetAcl {
        /// Path.
        path: String,
        /// The new ACL (null reads as `None`).
        acl: Option<AclList>,
        /// Expected aversion or -1.
        version: i32,
    },
    /// getChildren / getChildren2 (the opcode says which reply).
    GetChildren {
        /// Path.
        path: String,
        /// Leave a watch.
        watch: bool,
    },
    /// sync.
    Sync {
        /// Path (echoed).
        path: String,
    },
    /// ping.
    Ping,
    /// check.
    Check {
        /// Path.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// multi and multiRead.
    Multi(Vec<MultiOp>),
    /// closeSession.
    CloseSession,
    /// setWatches / setWatches2.
    SetWatches {
        /// Events after this zxid are delivered at once.
        relative_zxid: i64,
        /// Data watches.
        data: Vec<String>,
        /// Exist watches.
        exist: Vec<String>,
        /// Child watches.
        child: Vec<String>,
        /// Persistent watches (setWatches2).
        persistent: Vec<String>,
        /// Persistent recursive watches (setWatches2).
        persistent_recursive: Vec<String>,
    },
    /// auth.
    Auth {
        /// Unused, 0.
        auth_type: i32,
        /// Scheme.
        scheme: String,
        /// Credentials.
        auth: Vec<u8>,
    },
    /// addWatch.
    AddWatch {
        /// Path.
        path: String,
        /// 0 persistent, 1 persistent recursive.
        mode: i32,
    },
    /// checkWatches / removeWatches.
    WatchOp {
        /// Path.
        path: String,
        /// WatcherType.
        watcher_type: i32,
    },
    /// getEphemerals.
    GetEphemerals {
        /// Prefix path.
        prefix: String,
    },
    /// getAllChildrenNumber.
    GetAllChildrenNumber {
        /// Path.
        path: String,
    },
    /// whoAmI.
    WhoAmI,
    /// An opcode we do not serve (sasl, reconfig, unknown): answered with an
    /// error code.
    Other,
}

impl Request {
    /// Decodes the body of a request with opcode `op`.
    pub fn decode(op: i32, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let req = match op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                Self::Create(CreateRequest::decode(op, &mut r)?)
            }
            op::DELETE => Self::Delete {
                path: r.string("path")?,
                version: r.int("version")?,
            },
            op::EXISTS => Self::Exists {
                path: r.string("path")?,
                watch: r.boolean("watch")?,
            },
            op::GET_DATA => Self::GetData {
                path: r.string("path")?,
                watch: r.boolean("watch")?,
            },
            op::SET_DATA => Self::SetData {
                path: r.string("path")?,
                data: r.bytes_opt("data")?,
                version: r.int("version")?,
            },
            op::GET_ACL => Self::GetAcl {
                path: r.string("path")?,
            },
            op::SET_ACL => Self::SetAcl {
                path: r.string("path")?,
                acl: decode_request_acls(&mut r)?,
                version: r.int("version")?,
            },
            op::GET_CHILDREN | op::GET_CHILDREN2 => Self::GetChildren {
                path: r.string("path")?,
                watch: r.boolean("watch")?,
            },
            op::SYNC => Self::Sync {
                path: r.string("path")?,
            },
            op::PING => Self::Ping,
            op::CHECK => Self::Check {
                path: r.string("path")?,
                version: r.int("version")?,
            },
            op::MULTI | op::MULTI_READ => Self::Multi(decode_multi(&mut r)?),
            op::CLOSE_SESSION => Self::CloseSession,
            op::SET_WATCHES | op::SET_WATCHES2 => {
                let relative_zxid = r.long("relativeZxid")?;
                let data = r.strings("dataWatches")?;
                let exist = r.strings("existWatches")?;
                let child = r.strings("childWatches")?;
                let (persistent, persistent_recursive) = if op == op::SET_WATCHES2 {
                    (
                        r.strings("persistentWatches")?,
                        r.strings("persistentRecursiveWatches")?,
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                Self::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                }
            }
            op::AUTH => Self::Auth {
                auth_type: r.int("type")?,
                scheme: r.string("scheme")?,
                auth: r.buffer("auth")?.to_vec(),
            },
            op::ADD_WATCH => Self::AddWatch {
                path: r.string("path")?,
                mode: r.int("mode")?,
            },
            op::CHECK_WATCHES | op::REMOVE_WATCHES => Self::WatchOp {
                path: r.string("path")?,
                watcher_type: r.int("type")?,
            },
            op::GET_EPHEMERALS => Self::GetEphemerals {
                prefix: r.string("prefixPath")?,
            },
            op::GET_ALL_CHILDREN_NUMBER => Self::GetAllChildrenNumber {
                path: r.string("path")?,
            },
            op::WHO_AM_I => Self::WhoAmI,
            _ => Self::Other,
        };
        Ok(req)
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let t = r.int("multi type")?;
        let done = r.boolean("multi done")?;
        let _err = r.int("multi err")?;
        if done {
            return Ok(ops);
        }
        let op = match t {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                MultiOp::Create(CreateRequest::decode(t, r)?)
            }
            op::DELETE => MultiOp::Delete {
                path: r.string("path")?,
                version: r.int("version")?,
            },
            op::SET_DATA => MultiOp::SetData {
                path: r.string("path")?,
                data: r.bytes_opt("data")?,
                version: r.int("version")?,
            },
            op::CHECK => MultiOp::Check {
                path: r.string("path")?,
                version: r.int("version")?,
            },
            // GetChildrenRequest / GetDataRequest carry a watch flag, which
            // ZooKeeper reads and ignores inside a multiRead.
            op::GET_CHILDREN => {
                let path = r.string("path")?;
                r.boolean("watch")?;
                MultiOp::GetChildren { path }
            }
            op::GET_DATA => {
                let path = r.string("path")?;
                r.boolean("watch")?;
                MultiOp::GetData { path }
            }
            _ => {
                return Err(DecodeError::BadValue {
                    what: "multi op type",
                })
            }
        };
        ops.push(op);
    }
}

/// Starts a reply frame: `ReplyHeader{xid, zxid, err}`.
pub fn reply_header(xid: i32, zxid: i64, err: i32) -> Writer {
    let mut w = Writer::frame();
    w.int(xid).long(zxid).int(err);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    type Build<'a> = &'a dyn Fn(&mut Writer);

    fn multi_body(ops: &[(i32, Build<'_>)]) -> Bytes {
        let mut w = Writer::new();
        for (t, f) in ops {
            w.int(*t).boolean(false).int(-1);
            f(&mut w);
        }
        w.int(-1).boolean(true).int(-1);
        w.finish()
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 7,
            timeout: 30000,
            session_id: 0x1234,
            passwd: vec![1; 16],
            read_only: true,
        };
        let f = req.encode_frame();
        assert_eq!(f.len(), 4 + 45);
        assert_eq!(ConnectRequest::decode(&f[4..]).unwrap(), req);
        // 44-byte handshake of older clients: readOnly absent means false.
        let old = ConnectRequest::decode(&f[4..48]).unwrap();
        assert!(!old.read_only);
        assert!(ConnectRequest::decode(&f[4..20]).is_err());
    }

    #[test]
    fn create_request_decodes() {
        let mut w = Writer::new();
        w.string("/a").buffer(b"hi");
        encode_acls(&mut w, &[Acl::open()]);
        w.int(3);
        let b = w.finish();
        let Request::Create(c) = Request::decode(op::CREATE, &b).unwrap() else {
            panic!("not a create")
        };
        assert_eq!(c.path, "/a");
        assert_eq!(c.data.as_deref(), Some(&b"hi"[..]));
        assert_eq!(c.acl.unwrap()[0], Acl::open());
        assert_eq!(c.flags, 3);
        assert_eq!(c.ttl, -1);
        // Truncations at every position fail cleanly.
        for n in 0..b.len() {
            assert!(Request::decode(op::CREATE, &b[..n]).is_err());
        }
    }

    #[test]
    fn multi_decodes_and_rejects_unknown_ops() {
        let b = multi_body(&[
            (op::CHECK, &|w: &mut Writer| {
                w.string("/x").int(2);
            }),
            (op::DELETE, &|w: &mut Writer| {
                w.string("/y").int(-1);
            }),
        ]);
        let Request::Multi(ops) = Request::decode(op::MULTI, &b).unwrap() else {
            panic!("not a multi")
        };
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[1],
            MultiOp::Delete {
                path: "/y".into(),
                version: -1
            }
        );
        let bad = multi_body(&[(op::PING, &|_: &mut Writer| {})]);
        assert!(Request::decode(op::MULTI, &bad).is_err());
    }

    #[test]
    fn stat_round_trip() {
        let s = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        let mut w = Writer::new();
        encode_stat(&mut w, &s);
        let b = w.finish();
        assert_eq!(b.len(), 68);
        assert_eq!(decode_stat(&mut Reader::new(&b)).unwrap(), s);
    }
}
