//! The write path: validation (`prep`) into a Txn, ordering, applying,
//! firing watches, and the replies of writes and multis.

use super::*;

impl Server {
    /// Orders a write: assigns the next zxid, emits the Append, applies it,
    /// fires watches. Returns the zxid and the result; the caller queues the
    /// reply.
    pub(super) fn write(&mut self, session: i64, cxid: i32, op: TxnOp) -> (i64, OpResult) {
        self.last_zxid += 1;
        let txn = Txn {
            zxid: self.last_zxid,
            time: self.wall_now(),
            session,
            cxid,
            op,
        };
        self.ready.push_back(Output::Append {
            zxid: txn.zxid,
            entry: txn.encode(),
        });
        let mut triggers = std::mem::take(&mut self.triggers);
        triggers.clear();
        let result = apply(&mut self.db, &txn, &mut triggers);
        self.fire(&triggers, txn.zxid);
        release_triggers(&mut self.db.tree, &mut triggers);
        self.triggers = triggers;
        (txn.zxid, result)
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
        let prepared = {
            let mut p = Prep::new(&self.db.tree, sid, auth).options(&self.config);
            match req {
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
            }
        };
        let txn = match prepared {
            Ok(t) => t,
            Err(code) => {
                let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
                self.reply(conn, xid, zxid, code);
                return;
            }
        };
        let (zxid, result) = self.write(sid, xid, txn);
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
                // A validated Txn does not fail to apply; report it if it does.
                w = reply_header(xid, zxid, code);
            }
            OpResult::Deleted | OpResult::Multi(_) | OpResult::Session => {}
        }
        self.send(conn, w.finish_frame());
    }

    pub(super) fn on_multi(&mut self, conn: ConnId, sid: i64, xid: i32, ops: &[MultiOp]) {
        if ops.iter().any(MultiOp::is_read) {
            // ZooKeeper fails the whole write (a NullPointerException in its
            // PrepRequestProcessor): an error txn, MARSHALLINGERROR, no body.
            let code = ErrorCode::MarshallingError;
            let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
            self.reply(conn, xid, zxid, code);
            return;
        }
        let auth = self.auth_of(conn);
        let txn = Prep::new(&self.db.tree, sid, auth)
            .options(&self.config)
            .multi(ops);
        let (zxid, result) = self.write(sid, xid, txn);
        let results = match result {
            OpResult::Multi(r) => r,
            _ => Vec::new(),
        };
        let mut w = reply_header(xid, zxid, 0);
        for (o, res) in ops.iter().zip(&results) {
            match res {
                OpResult::Error(code) => {
                    w.int(op::ERROR).boolean(false).int(*code).int(*code);
                }
                OpResult::Created { path, stat } => {
                    if o.op_code() == op::CREATE {
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
        self.send(conn, w.finish_frame());
    }
}
