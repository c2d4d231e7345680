//! Outputs and the durability gate: replies, notifications and closes
//! wait for the log, in production order; latency statistics; forgetting a
//! connection.

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

impl Server {
    pub(super) fn emit_timed(&mut self, gate: i64, out: Output, started: Option<Started>) {
        if let Output::Transmit { conn, data } = &out {
            if self.feeding == Some(*conn) {
                self.fed_bytes += data.len();
            }
        }
        if self.gated.is_empty() && gate <= self.durable_zxid {
            if let Some(t) = started {
                self.record_latency(t, &out);
            }
            self.ready.push_back(out);
        } else {
            self.gated.push_back((gate, out, started));
        }
    }

    pub(super) fn emit(&mut self, gate: i64, out: Output) {
        self.emit_timed(gate, out, None);
    }

    pub(super) fn record_latency(&mut self, t: Started, out: &Output) {
        let (started, write) = (t.at, t.write);
        let ms = (self.now - started).as_millis() as u64;
        if let (Some(op), Output::Transmit { conn, data }) = (t.op, out) {
            let uptime = (self.now - self.start).as_millis() as u64;
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
                    s.last_zxid = self.last_zxid;
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

    /// Sends a reply once everything ordered so far is durable; its latency
    /// counts from now (the request's arrival) to its release.
    pub(super) fn send(&mut self, conn: ConnId, data: Bytes) {
        let gate = self.last_zxid;
        let started = Started {
            at: self.now,
            write: self.current_is_write,
            op: self.current_op,
        };
        self.emit_timed(gate, Output::Transmit { conn, data }, Some(started));
    }

    /// Sends a notification (not a reply: no latency).
    pub(super) fn send_event(&mut self, conn: ConnId, data: Bytes) {
        let gate = self.last_zxid;
        self.emit(gate, Output::Transmit { conn, data });
    }

    pub(super) fn close_gated(&mut self, conn: ConnId, gate: i64, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.closing {
                return;
            }
            c.closing = true;
            self.emit(gate, Output::Close { conn, reason });
        }
    }

    /// Closes after everything already queued for the connection.
    pub(super) fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        let gate = self.last_zxid;
        self.close_gated(conn, gate, reason);
    }

    /// Closes at once (nothing of this connection is queued yet).
    pub(super) fn close_now(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            self.ready.push_back(Output::Close { conn, reason });
        }
    }

    pub(super) fn on_durable(&mut self, zxid: i64) {
        let zxid = zxid.min(self.last_zxid);
        if zxid > self.durable_zxid {
            self.durable_zxid = zxid;
        }
        while let Some((gate, _, _)) = self.gated.front() {
            if *gate > self.durable_zxid {
                break;
            }
            if let Some((_, out, started)) = self.gated.pop_front() {
                if let Some(t) = started {
                    self.record_latency(t, &out);
                }
                self.ready.push_back(out);
            }
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
