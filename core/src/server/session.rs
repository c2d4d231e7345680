//! Sessions: the handshake (new and resumed sessions, passwords), expiry
//! by tick buckets, the container/TTL reaper.

use super::*;

impl Server {
    /// Session expiry rounded up to the next tick, as ZooKeeper's
    /// expiry buckets do.
    pub(super) fn expiry_for(&self, timeout: Duration) -> Instant {
        let tick = self.config.tick_time.as_millis().max(1);
        let at = (self.now - self.start + timeout).as_millis();
        let rounded = at.div_ceil(tick) * tick;
        self.start + Duration::from_millis(rounded as u64)
    }

    pub(super) fn touch(&mut self, sid: i64) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.closing {
            return;
        }
        let new = self.expiry_for(s.timeout);
        let old = s.expires;
        if new != old {
            self.expiry.remove(&(old, sid));
            self.expiry.insert((new, sid));
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.expires = new;
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now;
        if self.next_reap <= now {
            self.reap();
        }
        while let Some(&(at, sid)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.remove(&(at, sid));
            self.expire_session(sid, true);
        }
        while let Some(&(at, conn)) = self.handshakes.first() {
            if at > now {
                break;
            }
            self.handshakes.remove(&(at, conn));
            if self.conns.get(&conn).is_some_and(|c| c.session.is_none()) {
                self.close_conn(conn, CloseReason::HandshakeTimeout);
            }
        }
    }

    /// ZooKeeper's ContainerManager: deletes empty containers that have had
    /// children and expired TTL nodes, as ordinary (logged) deletes, which
    /// fire watches like any other.
    pub(super) fn reap(&mut self) {
        let interval = self.config.container_check_interval;
        self.next_reap = self.now + interval;
        let per_check = (u128::from(self.config.container_max_per_minute) * interval.as_millis()
            / 60_000)
            .max(1) as usize;
        let never_used = self
            .config
            .container_max_never_used
            .map(|d| d.as_millis() as i64);
        let candidates = self
            .db
            .tree
            .reap_candidates(self.wall_now(), never_used, per_check);
        for path in candidates {
            // Validated like any delete against the writes in flight: a
            // create under the container may be on its way.
            let mut p = Prep::new(&self.db.tree, &self.outstanding, 0, &[]);
            if let Ok(op) = p.reap(&path) {
                let changes = p.take_changes();
                self.order(0, 0, op, changes, Completion::Nothing);
            }
        }
    }

    /// Orders a closeSession: its ephemerals (committed or on their way)
    /// count as deleted for the writes behind it.
    pub(super) fn close_session(&mut self, sid: i64, cxid: i32, completion: Completion) -> i64 {
        let mut p = Prep::new(&self.db.tree, &self.outstanding, sid, &[]);
        p.close_session();
        let changes = p.take_changes();
        self.order(sid, cxid, TxnOp::CloseSession, changes, completion)
    }

    /// Ends a session through the log: its timeout passed (`timed_out`), or
    /// its text connection ended.
    pub(super) fn expire_session(&mut self, sid: i64, timed_out: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.closing {
            return;
        }
        s.closing = true;
        let conn = s.conn;
        let timeout_ms = s.timeout.as_millis() as u64;
        self.log(if timed_out {
            crate::LogEvent::SessionExpired {
                session: SessionId(sid),
                timeout_ms,
            }
        } else {
            crate::LogEvent::SessionClosed {
                session: SessionId(sid),
            }
        });
        self.sessions.remove(&sid);
        self.close_session(sid, 0, Completion::Expired(conn));
    }

    pub(super) fn negotiate(&self, requested: i32) -> Duration {
        let req = Duration::from_millis(requested.max(0) as u64);
        req.clamp(self.config.min_timeout(), self.config.max_timeout())
    }

    /// The session's password: HMAC-SHA1 keyed with the server's secret over
    /// the session id, cut to 16 bytes. ZooKeeper derives it from the id and
    /// a constant (`superSecret`), so anyone who knows a session id can take
    /// the session over; without our secret that is not possible.
    pub(super) fn password(&self, sid: i64) -> [u8; 16] {
        let mac = hmac_sha1(&self.config.secret, &sid.to_be_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }

    pub(super) fn connect_response(timeout: Duration, sid: i64, passwd: &[u8]) -> Bytes {
        Self::connect_response_for(timeout, sid, passwd, true)
    }

    /// The handshake answer; `read_only` says whether to end it with the
    /// readOnly flag, which ZooKeeper leaves out for clients (before 3.4)
    /// that did not send one.
    pub(super) fn connect_response_for(
        timeout: Duration,
        sid: i64,
        passwd: &[u8],
        read_only: bool,
    ) -> Bytes {
        let mut w = Writer::frame();
        w.int(0)
            .int(timeout.as_millis() as i32)
            .long(sid)
            .buffer(passwd);
        if read_only {
            w.boolean(false);
        }
        w.finish_frame()
    }

    pub(super) fn on_connect(&mut self, conn: ConnId, frame: &[u8]) {
        self.current = Started {
            at: self.now,
            write: true,
            op: Some("SESS"),
        };
        let req = match ConnectRequest::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                self.close_conn(
                    conn,
                    CloseReason::Malformed(format!("connect request: {e}")),
                );
                return;
            }
        };
        // Clients only ever see committed zxids.
        let committed = self.db.last_zxid;
        if req.last_zxid_seen > committed {
            self.close_conn(
                conn,
                CloseReason::ClientAhead {
                    client_zxid: Zxid(req.last_zxid_seen),
                    server_zxid: Zxid(committed),
                },
            );
            return;
        }
        let timeout = self.negotiate(req.timeout);
        // protocolVersion, lastZxidSeen, timeOut, sessionId, passwd: then
        // the optional readOnly byte.
        let ro = frame.len() > 28 + req.passwd.len();
        let answer =
            |timeout, sid, passwd: &[u8]| Self::connect_response_for(timeout, sid, passwd, ro);
        if req.session_id == 0 {
            let mut sid = self.next_session_id;
            if sid == crate::prep::CONTAINER_OWNER {
                sid += 1;
            }
            self.next_session_id = sid.wrapping_add(1);
            let expires = self.expiry_for(timeout);
            self.sessions.insert(
                sid,
                Session {
                    timeout,
                    conn: Some(conn),
                    expires,
                    closing: false,
                },
            );
            self.expiry.insert((expires, sid));
            self.bind(conn, sid);
            let passwd = self.password(sid);
            // Answered when the session's creation commits.
            let completion = Completion::Reply {
                conn,
                xid: 0,
                kind: ReplyKind::Raw(answer(timeout, sid, &passwd)),
                started: self.current,
            };
            let op = TxnOp::CreateSession {
                timeout: timeout.as_millis() as i32,
            };
            self.order(sid, 0, op, HashMap::new(), completion);
            self.log(crate::LogEvent::SessionEstablished {
                session: SessionId(sid),
                timeout_ms: timeout.as_millis() as u64,
            });
            return;
        }
        let sid = req.session_id;
        let valid = self.sessions.get(&sid).is_some_and(|s| !s.closing)
            && req.passwd.as_slice() == self.password(sid);
        if !valid {
            self.send(conn, answer(Duration::ZERO, 0, &[0; 16]));
            self.close_conn(conn, CloseReason::SessionExpired);
            return;
        }
        let old = self.sessions.get(&sid).and_then(|s| s.conn);
        if let Some(old) = old.filter(|&o| o != conn) {
            self.close_conn(old, CloseReason::SessionMoved);
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.conn = Some(conn);
        }
        self.bind(conn, sid);
        self.touch(sid);
        let passwd = self.password(sid);
        self.send(conn, answer(timeout, sid, &passwd));
    }

    pub(super) fn bind(&mut self, conn: ConnId, sid: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
            if let Some(d) = c.handshake_deadline.take() {
                self.handshakes.remove(&(d, conn));
            }
        }
    }
}
