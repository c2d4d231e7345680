//! The write path: validation (`prep`, against the tree and the writes in
//! flight) into a Txn, ordering, applying at commit, firing watches, and
//! the replies of writes and multis.

use super::*;

/// What to do when a write commits.
#[derive(Debug)]
pub(super) enum Completion {
    /// Nothing more (the reaper's deletes).
    Nothing,
    /// The session expired: close its connection, if it has one.
    Expired(Option<ConnId>),
    /// Answer the request.
    Reply {
        conn: ConnId,
        xid: i32,
        kind: ReplyKind,
        started: Started,
    },
}

/// How a committed write's reply is built from its result.
#[derive(Debug)]
pub(super) enum ReplyKind {
    /// create, create2, createContainer, createTTL, delete, setData,
    /// setACL, check: by opcode.
    Op(i32),
    /// A multi, with each op's opcode.
    Multi(Vec<i32>),
    /// A header alone: a failed write's error, or OK (closeSession).
    Header(ErrorCode),
    /// Bytes built when the write was ordered (connect responses).
    Raw(Bytes),
    /// A text-protocol write; a sequential create answers with its path.
    Text { sequential: bool },
}

impl Server {
    /// Orders a validated write: it gets the next zxid, goes to the log
    /// ([`Output::Append`]), its changes join the outstanding ones, and
    /// the connection it answers waits for it. Applied when it commits.
    pub(super) fn order(
        &mut self,
        session: i64,
        cxid: i32,
        op: TxnOp,
        changes: HashMap<String, crate::pipeline::Change>,
        completion: Completion,
    ) -> i64 {
        let zxid = self.seq.next_zxid();
        let txn = Txn {
            zxid,
            time: self.wall_now(),
            session,
            cxid,
            op,
        };
        self.ready.push_back(Output::Append {
            zxid: Zxid(zxid),
            entry: txn.encode(),
        });
        self.outstanding.record(zxid, changes);
        if let Completion::Reply { conn, .. } = &completion {
            if let Some(c) = self.conns.get_mut(conn) {
                c.queue.push_back(Waiting::Write(zxid));
            }
        }
        self.pending.push_back((txn, completion));
        zxid
    }

    /// A write that failed validation: logged as an error txn (as ZooKeeper
    /// does) and answered with `code` when it commits.
    pub(super) fn fail_write(&mut self, conn: ConnId, sid: i64, xid: i32, code: ErrorCode) {
        let completion = Completion::Reply {
            conn,
            xid,
            kind: ReplyKind::Header(code),
            started: self.current,
        };
        let op = TxnOp::Error { code: code.code() };
        self.order(sid, xid, op, HashMap::new(), completion);
    }

    /// The log (or, replicated, the quorum) reports everything up to
    /// `zxid` durable: apply what that commits, in order; each write fires
    /// its watches, then is answered, then what its connection had waiting
    /// behind it is.
    pub(super) fn on_durable(&mut self, zxid: Zxid) {
        let upto = self.seq.durable(zxid.0);
        while self.pending.front().is_some_and(|(t, _)| t.zxid <= upto) {
            let Some((txn, completion)) = self.pending.pop_front() else {
                break;
            };
            let mut triggers = std::mem::take(&mut self.triggers);
            triggers.clear();
            let result = apply(&mut self.db, &txn, &mut triggers);
            self.outstanding.committed(txn.zxid);
            self.fire(&triggers, txn.zxid);
            release_triggers(&mut self.db.tree, &mut triggers);
            self.triggers = triggers;
            self.complete(txn.zxid, completion, result);
        }
    }

    fn complete(&mut self, zxid: i64, completion: Completion, result: OpResult) {
        let (conn, xid, kind, started) = match completion {
            Completion::Nothing => return,
            Completion::Expired(conn) => {
                if let Some(c) = conn {
                    self.close_conn(c, CloseReason::SessionExpired);
                }
                return;
            }
            Completion::Reply {
                conn,
                xid,
                kind,
                started,
            } => (conn, xid, kind, started),
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(at) = c
            .queue
            .iter()
            .position(|w| matches!(w, Waiting::Write(z) if *z == zxid))
        else {
            // The connection closed meanwhile: nothing to answer.
            return;
        };
        let data = write_reply(xid, zxid, kind, result);
        c.queue[at] = Waiting::Ready(Output::Transmit { conn, data }, Some(started));
        self.flush(conn);
    }

    /// Sends a watch notification in the connection's dialect. `zxid` is the
    /// transaction that fired it (ZooKeeper 3.9 puts it in the header; -1
    /// for setWatches' catch-up events, as 3.9, and for everything in 3.8).
    pub(super) fn notify(
        &mut self,
        conn: ConnId,
        kind: crate::watch::EventType,
        path: &str,
        zxid: i64,
    ) {
        let text = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.dialect == Dialect::Text);
        let data = if text {
            Bytes::from(format!("EVENT:{}:{path}\n", kind.name()))
        } else {
            let mut w = reply_header(xid::NOTIFICATION, zxid, 0);
            w.int(kind as i32).int(3).string(path);
            w.finish_frame()
        };
        self.send_event(conn, data);
    }

    pub(super) fn fire(&mut self, triggers: &[Trigger], zxid: i64) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        for t in triggers {
            self.watches.fire(t, &mut events);
        }
        for e in &events {
            // ZooKeeper 3.9.2 / 3.8.4 (the CVE-2024-23944 fix, in
            // `NIOServerCnxn.process`): an event is delivered only if the
            // watcher's connection, with the ids it has now, holds READ on
            // the node's ACL (the parent's for NodeChildrenChanged).
            let readable = e.acl.is_none_or(|r| {
                acl::allowed(self.db.tree.acl_list(r), perm::READ, self.auth_of(e.conn))
            });
            if readable {
                self.notify(e.conn, e.kind, &e.path, zxid);
            } else {
                self.stats.events_withheld += 1;
            }
        }
        self.events = events;
    }

    pub(super) fn on_write(
        &mut self,
        conn: ConnId,
        sid: i64,
        xid: i32,
        opcode: i32,
        req: &Request,
    ) {
        let auth = self.auth_of(conn);
        let mut p = Prep::new(&self.db.tree, &self.outstanding, sid, auth).options(&self.config);
        let prepared = match req {
            Request::Create(c) => p.create(c),
            Request::Delete { path, version } => p.delete(path, *version),
            Request::SetData {
                path,
                data,
                version,
            } => p.set_data(path, data, *version),
            Request::SetAcl { path, acl, version } => p.set_acl(path, acl.as_deref(), *version),
            Request::Check { path, version } => p.check(path, *version),
            _ => Err(ErrorCode::Unimplemented),
        };
        let changes = p.take_changes();
        match prepared {
            Ok(txn) => {
                let completion = Completion::Reply {
                    conn,
                    xid,
                    kind: ReplyKind::Op(opcode),
                    started: self.current,
                };
                self.order(sid, xid, txn, changes, completion);
            }
            Err(code) => self.fail_write(conn, sid, xid, code),
        }
    }

    pub(super) fn on_multi(&mut self, conn: ConnId, sid: i64, xid: i32, ops: &[MultiOp]) {
        if ops.iter().any(MultiOp::is_read) {
            // ZooKeeper fails the whole write (a NullPointerException in its
            // PrepRequestProcessor): an error txn, MARSHALLINGERROR, no body.
            self.fail_write(conn, sid, xid, ErrorCode::MarshallingError);
            return;
        }
        let auth = self.auth_of(conn);
        let mut p = Prep::new(&self.db.tree, &self.outstanding, sid, auth).options(&self.config);
        let txn = p.multi(ops);
        let changes = p.take_changes();
        let completion = Completion::Reply {
            conn,
            xid,
            kind: ReplyKind::Multi(ops.iter().map(MultiOp::op_code).collect()),
            started: self.current,
        };
        self.order(sid, xid, txn, changes, completion);
    }
}

/// A committed write's reply, from what applying it returned.
fn write_reply(xid: i32, zxid: i64, kind: ReplyKind, result: OpResult) -> Bytes {
    let opcode = match kind {
        ReplyKind::Raw(b) => return b,
        ReplyKind::Header(code) => return reply_header(xid, zxid, code.code()).finish_frame(),
        ReplyKind::Text { sequential } => {
            let line = match result {
                OpResult::Created { path, .. } if sequential => format!("true:{path}\n"),
                OpResult::Error(c) => {
                    let e = ErrorCode::from_code(c).unwrap_or(ErrorCode::SystemError);
                    format!("false:{}\n", e.name())
                }
                _ => "true\n".to_string(),
            };
            return Bytes::from(line);
        }
        ReplyKind::Multi(opcodes) => return multi_reply(xid, zxid, &opcodes, result),
        ReplyKind::Op(opcode) => opcode,
    };
    let mut w = reply_header(xid, zxid, 0);
    match result {
        OpResult::Created { path, stat } => {
            w.string(&path);
            if opcode != op::CREATE {
                encode_stat(&mut w, &stat);
            }
        }
        OpResult::SetData { stat } | OpResult::SetAcl { stat } | OpResult::Check { stat } => {
            encode_stat(&mut w, &stat)
        }
        OpResult::Error(code) => {
            // A failed write, or a validated one that did not apply.
            w = reply_header(xid, zxid, code);
        }
        OpResult::Deleted | OpResult::Multi(_) | OpResult::Session => {}
    }
    w.finish_frame()
}

fn multi_reply(xid: i32, zxid: i64, opcodes: &[i32], result: OpResult) -> Bytes {
    let results = match result {
        OpResult::Multi(r) => r,
        _ => Vec::new(),
    };
    let mut w = reply_header(xid, zxid, 0);
    for (&code, res) in opcodes.iter().zip(&results) {
        match res {
            OpResult::Error(code) => {
                w.int(op::ERROR).boolean(false).int(*code).int(*code);
            }
            OpResult::Created { path, stat } => {
                if code == op::CREATE {
                    w.int(op::CREATE).boolean(false).int(0).string(path);
                } else {
                    w.int(op::CREATE2).boolean(false).int(0).string(path);
                    encode_stat(&mut w, stat);
                }
            }
            OpResult::Deleted => {
                w.int(op::DELETE).boolean(false).int(0);
            }
            OpResult::SetData { stat } => {
                w.int(op::SET_DATA).boolean(false).int(0);
                encode_stat(&mut w, stat);
            }
            OpResult::Check { .. } => {
                w.int(op::CHECK).boolean(false).int(0);
            }
            OpResult::SetAcl { .. } | OpResult::Multi(_) | OpResult::Session => {
                w.int(op::ERROR).boolean(false).int(-2).int(-2);
            }
        }
    }
    w.int(-1).boolean(true).int(-1);
    w.finish_frame()
}
