//! Transactions: the deterministic unit of change.
//!
//! Every state change (a session opening or closing, a create, delete,
//! setData, setACL, multi, and failed writes, which consume a zxid as in
//! ZooKeeper) is a [`Txn`]. A Txn carries every decision already made
//! (the sequential name, the wall time, the owner, the parent's new cversion),
//! so `apply` is a total, pure function of (state, Txn): the same on a live
//! server, on recovery from the log, and on a replica. Whether a request is
//! allowed is decided *before* its Txn exists; a logged Txn always applies.

use crate::proto::records::{decode_acls, encode_acls, AclList};
use crate::proto::{DecodeError, Reader, Writer};
use crate::tree::{AclRef, DataTree, Stat};
use crate::ErrorCode;
use bytes::Bytes;
use std::collections::BTreeMap;

/// One logged transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its position in the total order of writes.
    pub zxid: i64,
    /// Wall time chosen by the server that ordered it (ms since the epoch).
    pub time: i64,
    /// The session that asked for it (0 for the server itself).
    pub session: i64,
    /// The client's xid, for diagnostics.
    pub cxid: i32,
    /// What changes.
    pub op: TxnOp,
}

/// What a transaction changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// A session was opened with this negotiated timeout (ms).
    CreateSession {
        /// Negotiated timeout in ms.
        timeout: i32,
    },
    /// The session closed or expired; its ephemerals go.
    CloseSession,
    /// A znode is created (the path is final, sequence suffix included).
    Create {
        /// Full path.
        path: String,
        /// Data; `None` is null data (not the same as empty).
        data: Option<Bytes>,
        /// ACL.
        acl: AclList,
        /// Owner session for ephemerals, container/TTL markers, else 0.
        ephemeral_owner: i64,
        /// The parent's cversion after this create.
        parent_cversion: i32,
    },
    /// A znode is deleted.
    Delete {
        /// Full path.
        path: String,
    },
    /// A znode's data is replaced.
    SetData {
        /// Full path.
        path: String,
        /// New data; `None` is null data.
        data: Option<Bytes>,
        /// The new version.
        version: i32,
    },
    /// A znode's ACL is replaced.
    SetAcl {
        /// Full path.
        path: String,
        /// New ACL.
        acl: AclList,
        /// The new aversion.
        version: i32,
    },
    /// A version check inside a multi (changes nothing).
    Check {
        /// Full path.
        path: String,
    },
    /// A failed write: consumes its zxid and changes nothing.
    Error {
        /// ZooKeeper error code.
        code: i32,
    },
    /// Several ops, all or nothing. A multi that failed holds only `Error`
    /// ops and changes nothing.
    Multi(Vec<TxnOp>),
}

/// The replicated state: the tree plus the open sessions and their timeouts.
#[derive(Debug, Default)]
pub(crate) struct Database {
    pub(crate) tree: DataTree,
    /// Open sessions → negotiated timeout (ms).
    pub(crate) sessions: BTreeMap<i64, i32>,
    /// zxid of the last applied Txn.
    pub(crate) last_zxid: i64,
}

/// What a watch sees change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A node was created (data/exist watches on it; child watches on parent).
    Created(String, TriggerAcls),
    /// A node was deleted (data and child watches on it; child watches on parent).
    Deleted(String, TriggerAcls),
    /// A node's data changed.
    DataChanged(String, TriggerAcls),
}

/// The ACLs a change's notifications are filtered by, as of the change
/// (ZooKeeper 3.9.2's `triggerWatch(path, type, zxid, acl)`, the fix of
/// CVE-2024-23944): the node's own list (for NodeCreated, NodeDataChanged and
/// NodeDeleted, the list the node had when deleted) and its parent's (for
/// NodeChildrenChanged). `None` means no check (ZooKeeper's null ACL).
///
/// Each reference is retained in the tree's ACL cache by [`apply`] so that it
/// stays valid after the node is gone (or after a later op of the same multi
/// changed it); [`release_triggers`] gives them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TriggerAcls {
    /// The node's ACL list.
    pub(crate) node: Option<AclRef>,
    /// The parent's ACL list.
    pub(crate) parent: Option<AclRef>,
}

impl Trigger {
    fn acls(&self) -> TriggerAcls {
        match self {
            Self::Created(_, a) | Self::Deleted(_, a) | Self::DataChanged(_, a) => *a,
        }
    }
}

/// The parent of a node's path (`/` for top-level nodes).
fn parent_of(p: &str) -> &str {
    crate::path::normalize(crate::path::parent(p).unwrap_or(""))
}

/// Drains `triggers`, releasing the ACL references [`apply`] retained for
/// them. Every caller of `apply` hands its triggers back here.
pub(crate) fn release_triggers(tree: &mut DataTree, triggers: &mut Vec<Trigger>) {
    for t in triggers.drain(..) {
        let a = t.acls();
        for r in [a.node, a.parent].into_iter().flatten() {
            tree.release_acl(r);
        }
    }
}

/// The result of one applied op, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpResult {
    Created { path: String, stat: Stat },
    Deleted,
    SetData { stat: Stat },
    SetAcl { stat: Stat },
    Check { stat: Stat },
    Error(i32),
    Multi(Vec<OpResult>),
    Session,
}

/// Applies `txn` to `db`, pushing what watches see into `triggers`. Total:
/// never fails, never panics, whatever the Txn holds. The triggers hold ACL
/// references: hand them back with [`release_triggers`].
pub(crate) fn apply(db: &mut Database, txn: &Txn, triggers: &mut Vec<Trigger>) -> OpResult {
    if txn.zxid > db.last_zxid {
        db.last_zxid = txn.zxid;
    }
    match &txn.op {
        TxnOp::CreateSession { timeout } => {
            db.sessions.insert(txn.session, *timeout);
            OpResult::Session
        }
        TxnOp::CloseSession => {
            for path in db.tree.ephemerals_of(txn.session) {
                let acls = TriggerAcls {
                    node: db.tree.hold_acl(&path),
                    parent: db.tree.hold_acl(parent_of(&path)),
                };
                if db.tree.delete(&path, txn.zxid) {
                    triggers.push(Trigger::Deleted(path, acls));
                } else {
                    for r in [acls.node, acls.parent].into_iter().flatten() {
                        db.tree.release_acl(r);
                    }
                }
            }
            db.tree.end_session(txn.session);
            db.sessions.remove(&txn.session);
            OpResult::Session
        }
        TxnOp::Multi(ops) => {
            if ops.iter().any(|o| matches!(o, TxnOp::Error { .. })) {
                // ZooKeeper: ops before the failure report OK (rolled back),
                // the failure its code, the rest RUNTIMEINCONSISTENCY.
                let mut failed = false;
                let results = ops
                    .iter()
                    .map(|o| match o {
                        TxnOp::Error { code } => {
                            failed = true;
                            OpResult::Error(*code)
                        }
                        _ if failed => OpResult::Error(ErrorCode::RuntimeInconsistency.code()),
                        _ => OpResult::Error(0),
                    })
                    .collect();
                return OpResult::Multi(results);
            }
            OpResult::Multi(
                ops.iter()
                    .map(|o| apply_op(&mut db.tree, txn, o, triggers))
                    .collect(),
            )
        }
        op => apply_op(&mut db.tree, txn, op, triggers),
    }
}

fn apply_op(tree: &mut DataTree, txn: &Txn, op: &TxnOp, triggers: &mut Vec<Trigger>) -> OpResult {
    let missing = OpResult::Error(ErrorCode::NoNode.code());
    match op {
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            if !tree.create(
                path,
                data.clone(),
                acl,
                *ephemeral_owner,
                *parent_cversion,
                txn.zxid,
                txn.time,
            ) {
                return OpResult::Error(ErrorCode::NodeExists.code());
            }
            let acls = TriggerAcls {
                node: tree.hold_acl(path),
                parent: tree.hold_acl(parent_of(path)),
            };
            triggers.push(Trigger::Created(path.clone(), acls));
            let stat = tree.get(path).map(|n| n.stat()).unwrap_or_default();
            OpResult::Created {
                path: path.clone(),
                stat,
            }
        }
        TxnOp::Delete { path } => {
            // The ACL the node had, taken before it goes.
            let acls = TriggerAcls {
                node: tree.hold_acl(path),
                parent: tree.hold_acl(parent_of(path)),
            };
            if !tree.delete(path, txn.zxid) {
                for r in [acls.node, acls.parent].into_iter().flatten() {
                    tree.release_acl(r);
                }
                return missing;
            }
            triggers.push(Trigger::Deleted(path.clone(), acls));
            OpResult::Deleted
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => match tree.set_data(path, data.clone(), *version, txn.zxid, txn.time) {
            Some(stat) => {
                let acls = TriggerAcls {
                    node: tree.hold_acl(path),
                    parent: None,
                };
                triggers.push(Trigger::DataChanged(path.clone(), acls));
                OpResult::SetData { stat }
            }
            None => missing,
        },
        TxnOp::SetAcl { path, acl, version } => match tree.set_acl(path, acl, *version) {
            Some(stat) => OpResult::SetAcl { stat },
            None => missing,
        },
        TxnOp::Check { path } => match tree.get(path) {
            Some(n) => OpResult::Check { stat: n.stat() },
            None => missing,
        },
        TxnOp::Error { code } => OpResult::Error(*code),
        // Nested multis and session ops inside a multi are not produced by
        // the server; apply them as nothing.
        TxnOp::Multi(_) | TxnOp::CreateSession { .. } | TxnOp::CloseSession => {
            OpResult::Error(ErrorCode::BadArguments.code())
        }
    }
}

// Wire tags of the encoded ops (our own log format, documented in docs/).
const T_CREATE_SESSION: i32 = 1;
const T_CLOSE_SESSION: i32 = 2;
const T_CREATE: i32 = 3;
const T_DELETE: i32 = 4;
const T_SET_DATA: i32 = 5;
const T_SET_ACL: i32 = 6;
const T_CHECK: i32 = 7;
const T_ERROR: i32 = 8;
const T_MULTI: i32 = 9;

impl Txn {
    /// Encodes the transaction (the body of a log record).
    pub fn encode(&self) -> Bytes {
        // Room for the header and a typical op, so the buffer rarely grows.
        let mut w = Writer::with_capacity(256);
        w.long(self.zxid)
            .long(self.time)
            .long(self.session)
            .int(self.cxid);
        encode_op(&mut w, &self.op);
        w.finish()
    }

    /// Decodes a transaction written by [`Txn::encode`].
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let zxid = r.long("zxid")?;
        let time = r.long("time")?;
        let session = r.long("session")?;
        let cxid = r.int("cxid")?;
        let op = decode_op(&mut r, 0)?;
        if !r.is_empty() {
            return Err(DecodeError::BadValue {
                what: "trailing bytes after txn",
            });
        }
        Ok(Self {
            zxid,
            time,
            session,
            cxid,
            op,
        })
    }
}

fn encode_op(w: &mut Writer, op: &TxnOp) {
    match op {
        TxnOp::CreateSession { timeout } => {
            w.int(T_CREATE_SESSION).int(*timeout);
        }
        TxnOp::CloseSession => {
            w.int(T_CLOSE_SESSION);
        }
        TxnOp::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => {
            w.int(T_CREATE).string(path).buffer_opt(data.as_deref());
            encode_acls(w, acl);
            w.long(*ephemeral_owner).int(*parent_cversion);
        }
        TxnOp::Delete { path } => {
            w.int(T_DELETE).string(path);
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            w.int(T_SET_DATA)
                .string(path)
                .buffer_opt(data.as_deref())
                .int(*version);
        }
        TxnOp::SetAcl { path, acl, version } => {
            w.int(T_SET_ACL).string(path);
            encode_acls(w, acl);
            w.int(*version);
        }
        TxnOp::Check { path } => {
            w.int(T_CHECK).string(path);
        }
        TxnOp::Error { code } => {
            w.int(T_ERROR).int(*code);
        }
        TxnOp::Multi(ops) => {
            w.int(T_MULTI).int(ops.len() as i32);
            for o in ops {
                encode_op(w, o);
            }
        }
    }
}

fn decode_op(r: &mut Reader<'_>, depth: u32) -> Result<TxnOp, DecodeError> {
    Ok(match r.int("txn type")? {
        T_CREATE_SESSION => TxnOp::CreateSession {
            timeout: r.int("timeout")?,
        },
        T_CLOSE_SESSION => TxnOp::CloseSession,
        T_CREATE => TxnOp::Create {
            path: r.string("path")?,
            data: r.bytes_opt("data")?,
            acl: decode_acls(r)?.unwrap_or_default(),
            ephemeral_owner: r.long("ephemeralOwner")?,
            parent_cversion: r.int("parentCVersion")?,
        },
        T_DELETE => TxnOp::Delete {
            path: r.string("path")?,
        },
        T_SET_DATA => TxnOp::SetData {
            path: r.string("path")?,
            data: r.bytes_opt("data")?,
            version: r.int("version")?,
        },
        T_SET_ACL => TxnOp::SetAcl {
            path: r.string("path")?,
            acl: decode_acls(r)?.unwrap_or_default(),
            version: r.int("version")?,
        },
        T_CHECK => TxnOp::Check {
            path: r.string("path")?,
        },
        T_ERROR => TxnOp::Error {
            code: r.int("code")?,
        },
        T_MULTI if depth == 0 => {
            let n = r.count("multi count", 4)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(decode_op(r, depth + 1)?);
            }
            TxnOp::Multi(ops)
        }
        _ => return Err(DecodeError::BadValue { what: "txn type" }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::records::Acl;

    fn samples() -> Vec<Txn> {
        let acl: AclList = smallvec::smallvec![Acl::open()];
        let ops = vec![
            TxnOp::CreateSession { timeout: 4000 },
            TxnOp::CloseSession,
            TxnOp::Create {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"x")),
                acl: acl.clone(),
                ephemeral_owner: 9,
                parent_cversion: 3,
            },
            TxnOp::Delete { path: "/a".into() },
            TxnOp::SetData {
                path: "/a".into(),
                data: None,
                version: 2,
            },
            TxnOp::SetAcl {
                path: "/a".into(),
                acl,
                version: 1,
            },
            TxnOp::Check { path: "/a".into() },
            TxnOp::Error { code: -101 },
            TxnOp::Multi(vec![
                TxnOp::Delete { path: "/b".into() },
                TxnOp::Error { code: -110 },
            ]),
        ];
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Txn {
                zxid: i as i64 + 1,
                time: 1000,
                session: 77,
                cxid: i as i32,
                op,
            })
            .collect()
    }

    #[test]
    fn every_txn_round_trips_and_truncations_fail() {
        for t in samples() {
            let b = t.encode();
            assert_eq!(Txn::decode(&b).unwrap(), t);
            for n in 0..b.len() {
                assert!(Txn::decode(&b[..n]).is_err(), "{t:?} cut at {n}");
            }
        }
    }

    #[test]
    fn apply_is_total_and_failed_multi_changes_nothing() {
        let mut db = Database::default();
        let mut trig = Vec::new();
        for t in samples() {
            apply(&mut db, &t, &mut trig);
            release_triggers(&mut db.tree, &mut trig);
        }
        db.tree.check_invariants().unwrap();
        assert_eq!(db.last_zxid, 9);
        // Deleting a node with children via a hand-made txn still leaves a
        // consistent tree.
        let acl: AclList = smallvec::smallvec![Acl::open()];
        for (i, p) in ["/p", "/p/q", "/p/q/r"].iter().enumerate() {
            let t = Txn {
                zxid: 20 + i as i64,
                time: 0,
                session: 0,
                cxid: 0,
                op: TxnOp::Create {
                    path: p.to_string(),
                    data: Some(Bytes::new()),
                    acl: acl.clone(),
                    ephemeral_owner: 0,
                    parent_cversion: 1,
                },
            };
            apply(&mut db, &t, &mut trig);
            release_triggers(&mut db.tree, &mut trig);
        }
        let del = Txn {
            zxid: 30,
            time: 0,
            session: 0,
            cxid: 0,
            op: TxnOp::Delete { path: "/p".into() },
        };
        apply(&mut db, &del, &mut trig);
        release_triggers(&mut db.tree, &mut trig);
        assert!(db.tree.get("/p/q/r").is_none());
        db.tree.check_invariants().unwrap();
    }
}
