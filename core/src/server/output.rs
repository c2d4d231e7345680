//! Outputs and the per-connection gate: replies and closes leave in each
//! connection's request order, behind its writes in flight; notifications
//! leave when the write that fired them commits; latency statistics;
//! forgetting a connection.

use super::*;

/// When a request arrived and whether it was a write (latency stats).
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    pub(super) at: Instant,
    pub(super) write: bool,
    /// ZooKeeper's name for the operation (`cons` lop), `None` for answers
    /// it keeps out of the connection's stats (auth, sasl).
    pub(super) op: Option<&'static str>,
}

/// ZooKeeper's FinalRequestProcessor `lastOp` names.
pub(super) fn op_name(opcode: i32) -> Option<&'static str> {
    Some(match opcode {
        op::PING => "PING",
        op::CREATE_SESSION => "SESS",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::CREATE | op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => "CREA",
        op::DELETE | op::DELETE_CONTAINER => "DELE",
        op::SET_DATA => "SETD",
        op::RECONFIG => "RECO",
        op::SET_ACL => "SETA",
        op::CLOSE_SESSION => "CLOS",
        op::SYNC => "SYNC",
        op::CHECK => "CHEC",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_WATCHES => "SETW",
        op::SET_WATCHES2 => "STW2",
        op::ADD_WATCH => "ADDW",
        op::GET_ACL => "GETA",
        op::GET_CHILDREN | op::GET_CHILDREN2 => "GETC",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::WHO_AM_I => "HOMI",
        op::GET_EPHEMERALS => "GETE",
        _ => return None,
    })
}

/// What `cons` shows of a connection's replies (ServerCnxn's stats).
#[derive(Debug, Clone)]
pub(super) struct ConnStats {
    /// Wall-clock ms when the connection was accepted.
    pub(super) established: i64,
    pub(super) last_op: &'static str,
    pub(super) last_cxid: i64,
    pub(super) last_zxid: i64,
    /// Server uptime (ms) at the last reply.
    pub(super) last_response: u64,
    pub(super) last_latency: u64,
    pub(super) min_latency: u64,
    pub(super) max_latency: u64,
    pub(super) total_latency: u64,
    pub(super) count: u64,
}

/// What a connection waits for, in the order its requests arrived: the
/// per-session gate. A write holds everything behind it until it commits;
/// a read behind a write is answered only then, from the state that write
/// left (read-your-writes); a connection with nothing in flight is answered
/// at once.
#[derive(Debug)]
pub(super) enum Waiting {
    /// A write ordered as this zxid, answered when it commits.
    Write(i64),
    /// An output ready to go once everything before it has.
    Ready(Output, Option<Started>),
    /// A read (or ping, or watch operation) to answer once the writes
    /// before it have committed.
    Read {
        sid: i64,
        xid: i32,
        opcode: i32,
        req: Box<Request>,
        started: Started,
    },
    /// A request that came after its session ended: SESSIONEXPIRED, with
    /// the zxid of the state it is answered in.
    Expired { xid: i32, started: Started },
    /// A text-protocol read, likewise.
    Text { cmd: Command, started: Started },
}

impl Server {
    /// Sends `out` for `conn` now if nothing of the connection is waiting,
    /// or behind what is.
    pub(super) fn emit_to(&mut self, conn: ConnId, out: Output, started: Option<Started>) {
        if let Output::Transmit { data, .. } = &out {
            if self.feeding == Some(conn) {
                self.fed_bytes += data.len();
            }
        }
        let flushing = self.flushing == Some(conn);
        match self.conns.get_mut(&conn) {
            Some(c) if !flushing && !c.queue.is_empty() => {
                c.queue.push_back(Waiting::Ready(out, started));
            }
            Some(c) => {
                if matches!(out, Output::Close { .. }) {
                    // Nothing behind a close is ever answered.
                    c.queue.clear();
                }
                self.release(out, started);
            }
            None => self.release(out, started),
        }
    }

    /// Hands an output to the runtime.
    pub(super) fn release(&mut self, out: Output, started: Option<Started>) {
        if let Some(t) = started {
            self.record_latency(t, &out);
        }
        self.ready.push_back(out);
    }

    /// Whether `conn` has requests in flight (a write not committed, or
    /// anything behind one).
    pub(super) fn busy(&self, conn: ConnId) -> bool {
        self.flushing != Some(conn) && self.conns.get(&conn).is_some_and(|c| !c.queue.is_empty())
    }

    /// Answers what waited behind `conn`'s oldest writes, up to its next
    /// write in flight.
    pub(super) fn flush(&mut self, conn: ConnId) {
        let outer = self.flushing.replace(conn);
        while let Some(w) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| match c.queue.front() {
                None | Some(Waiting::Write(_)) => None,
                Some(_) => c.queue.pop_front(),
            })
        {
            match w {
                Waiting::Write(_) => {}
                Waiting::Ready(out, started) => {
                    let close = matches!(out, Output::Close { .. });
                    self.release(out, started);
                    if close {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.queue.clear();
                        }
                        break;
                    }
                }
                Waiting::Read {
                    sid,
                    xid,
                    opcode,
                    req,
                    started,
                } => {
                    self.current = started;
                    self.on_read_request(conn, sid, xid, opcode, *req);
                }
                Waiting::Expired { xid, started } => {
                    self.current = started;
                    let zxid = self.db.last_zxid;
                    self.reply(conn, xid, zxid, ErrorCode::SessionExpired);
                }
                Waiting::Text { cmd, started } => {
                    self.current = started;
                    self.text_read(conn, cmd);
                }
            }
        }
        self.flushing = outer;
    }

    pub(super) fn record_latency(&mut self, t: Started, out: &Output) {
        let (started, write) = (t.at, t.write);
        let ms = (self.now - started).as_millis() as u64;
        if let (Some(op), Output::Transmit { conn, data }) = (t.op, out) {
            let uptime = (self.now - self.start).as_millis() as u64;
            let committed = self.db.last_zxid;
            // Binary connections only: text-protocol lines have no header.
            if let Some(c) = self
                .conns
                .get_mut(conn)
                .filter(|c| c.dialect == Dialect::Binary)
            {
                let s = &mut c.stats;
                // A reply frame: length, xid, zxid, err; the connect answer
                // (SESS) has no header.
                if op != "SESS" && data.len() >= 16 {
                    let xid = i32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                    if xid >= 0 {
                        s.last_cxid = i64::from(xid);
                    }
                    let mut z = [0u8; 8];
                    z.copy_from_slice(&data[8..16]);
                    s.last_zxid = i64::from_be_bytes(z);
                } else {
                    s.last_zxid = committed;
                }
                s.last_op = op;
                s.last_response = uptime;
                s.last_latency = ms;
                s.min_latency = s.min_latency.min(ms);
                s.max_latency = s.max_latency.max(ms);
                s.total_latency += ms;
                s.count += 1;
            }
        }
        let s = &mut self.stats;
        if write {
            s.update_latency.add(ms);
        } else {
            s.read_latency.add(ms);
        }
        s.latency_min_ms = if s.latency_count == 0 {
            ms
        } else {
            s.latency_min_ms.min(ms)
        };
        s.latency_max_ms = s.latency_max_ms.max(ms);
        s.latency_total_ms += ms;
        s.latency_count += 1;
    }

    /// Sends a reply to the request being handled, in the connection's
    /// order; its latency counts from the request's arrival to its release.
    pub(super) fn send(&mut self, conn: ConnId, data: Bytes) {
        let started = self.current;
        self.emit_to(conn, Output::Transmit { conn, data }, Some(started));
    }

    /// Sends a notification (not a reply: no latency) at once. Watches fire
    /// when a write commits, so an event always goes out before any read
    /// of the state that fired it.
    pub(super) fn send_event(&mut self, conn: ConnId, data: Bytes) {
        self.release(Output::Transmit { conn, data }, None);
    }

    /// Closes after everything already queued for the connection.
    pub(super) fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.closing {
                return;
            }
            c.closing = true;
            self.emit_to(conn, Output::Close { conn, reason }, None);
        }
    }

    /// Closes at once (nothing of this connection is queued yet).
    pub(super) fn close_now(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            c.queue.clear();
            self.ready.push_back(Output::Close { conn, reason });
        }
    }

    /// Forgets a connection: its watches go, its session (if any) lives on
    /// until it expires or is resumed.
    pub(super) fn drop_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.watches.remove_conn(conn);
        if let Some(d) = c.handshake_deadline {
            self.handshakes.remove(&(d, conn));
        }
        if let Some(sid) = c.session {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if s.conn == Some(conn) {
                    s.conn = None;
                }
            }
            // A text connection's session ends with the connection, so its
            // ephemerals go at once (the seed's ECREATE semantics).
            if c.dialect == Dialect::Text {
                self.expire_session(sid, false);
            }
        }
        if let Some(ip) = c.peer.map(|p| p.ip()) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}
