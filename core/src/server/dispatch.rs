//! The binary protocol's front door: framing and dialect sniffing per
//! connection, then one dispatch of each decoded request.

use super::*;

impl Server {
    pub(super) fn on_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => c.inbuf.extend_from_slice(bytes),
            _ => return,
        }
        self.feeding = Some(conn);
        self.fed_bytes = 0;
        self.on_frames(conn);
        self.feeding = None;
        // After a closeSession the requests that came with it were answered
        // (SESSIONEXPIRED); the connection ends after them.
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.session_closed && !c.closing)
        {
            self.close_conn(conn, CloseReason::SessionClosed);
        }
    }

    /// Decodes and handles every complete frame (or text line) buffered for
    /// `conn`.
    pub(super) fn on_frames(&mut self, conn: ConnId) {
        let max = self.config.max_buffer;
        loop {
            if self.fed_bytes >= self.config.output_burst {
                // Enough replies for one input: the rest waits in `inbuf`
                // until the runtime has sent these (`has_pending_input`).
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing {
                c.inbuf = BytesMut::new();
                return;
            }
            if c.inbuf.len() < 4 {
                return;
            }
            let head = [c.inbuf[0], c.inbuf[1], c.inbuf[2], c.inbuf[3]];
            if c.dialect == Dialect::Unknown {
                if let Some(cmd) = crate::fourlw::recognise(&head) {
                    c.inbuf = BytesMut::new();
                    // ZooKeeper counts the word as a received packet.
                    c.packets_received += 1;
                    self.stats.packets_received += 1;
                    self.four_letter_word(conn, cmd);
                    return;
                }
                if text::looks_like_text(&head) {
                    if !self.config.text_on_client_port {
                        self.close_conn(conn, CloseReason::TextDisabled);
                        continue;
                    }
                    self.start_text(conn);
                    continue;
                }
                c.dialect = Dialect::Binary;
            }
            if c.dialect == Dialect::Text {
                self.text_lines(conn);
                return;
            }
            let len = i32::from_be_bytes(head);
            if len < 0 || len as u32 > max {
                self.close_conn(
                    conn,
                    CloseReason::FrameTooLarge {
                        len: len as i64,
                        max,
                    },
                );
                continue;
            }
            let total = 4 + len as usize;
            if c.inbuf.len() < total {
                c.inbuf.reserve(total - c.inbuf.len());
                return;
            }
            let mut frame = c.inbuf.split_to(total);
            frame.advance(4);
            let frame = frame.freeze();
            c.packets_received += 1;
            self.stats.packets_received += 1;
            match c.session {
                None => self.on_connect(conn, &frame),
                Some(sid) => self.on_request(conn, sid, &frame),
            }
        }
    }

    pub(super) fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: ErrorCode) {
        self.send(conn, reply_header(xid, zxid, err.code()).finish_frame());
    }

    pub(super) fn on_request(&mut self, conn: ConnId, sid: i64, frame: &[u8]) {
        if frame.len() < 8 {
            self.close_conn(
                conn,
                CloseReason::Malformed("request header truncated".into()),
            );
            return;
        }
        let mut r = Reader::new(frame);
        let (Ok(xid), Ok(opcode)) = (r.int("xid"), r.int("type")) else {
            return;
        };
        let body = &frame[8..];
        let committed = self.db.last_zxid;
        self.current = Started {
            at: self.now,
            write: is_write(opcode) || opcode == op::CLOSE_SESSION,
            op: op_name(opcode),
        };
        if !self.sessions.contains_key(&sid) {
            // The session was closed or expired while bytes were in flight:
            // ZooKeeper answers SESSIONEXPIRED.
            if self.busy(conn) {
                let started = self.current;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.push_back(Waiting::Expired { xid, started });
                }
            } else {
                self.reply(conn, xid, committed, ErrorCode::SessionExpired);
            }
            if !self.conns.get(&conn).is_some_and(|c| c.session_closed) {
                self.close_conn(conn, CloseReason::SessionExpired);
            }
            return;
        }
        self.touch(sid);
        let req = match Request::decode(opcode, body) {
            Ok(r) => r,
            Err(e) => {
                if opcode == op::AUTH {
                    self.close_conn(conn, CloseReason::Malformed(format!("auth packet: {e}")));
                } else if is_write(opcode) {
                    self.fail_write(conn, sid, xid, ErrorCode::MarshallingError);
                } else {
                    self.reply(conn, xid, committed, ErrorCode::MarshallingError);
                }
                return;
            }
        };
        match req {
            Request::CloseSession => {
                if let Some(s) = self.sessions.remove(&sid) {
                    self.expiry.remove(&(s.expires, sid));
                }
                let completion = Completion::Reply {
                    conn,
                    xid,
                    kind: ReplyKind::Header(ErrorCode::Ok),
                    started: self.current,
                };
                self.close_session(sid, xid, completion);
                self.log(crate::LogEvent::SessionClosed {
                    session: SessionId(sid),
                });
                // Closed once the requests pipelined behind it are answered
                // (see `on_bytes`).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session_closed = true;
                }
            }
            // Handled on arrival, as ZooKeeper does, so that the writes
            // behind them see the ids they add; their answers keep the
            // connection's order.
            Request::Auth { scheme, auth, .. } => self.on_auth(conn, xid, &scheme, &auth),
            Request::Other if opcode == op::SASL => self.on_sasl(conn, xid, body),
            Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. }
                if is_write(opcode) =>
            {
                self.on_write(conn, sid, xid, opcode, &req)
            }
            Request::Multi(ops) if opcode == op::MULTI => self.on_multi(conn, sid, xid, &ops),
            Request::Other if opcode == op::DELETE_CONTAINER => {
                // ZooKeeper accepts this internal op from clients, reads the
                // whole packet (header included) as the path, finds a NUL in
                // it and fails the write with BADARGUMENTS.
                self.fail_write(conn, sid, xid, ErrorCode::BadArguments);
            }
            Request::Other if opcode == op::CREATE_SESSION => {
                // A createSession sent inside a session: ZooKeeper logs a
                // CreateSession txn for it and answers with a fresh
                // ConnectResponse for the connection's session.
                let timeout = self
                    .sessions
                    .get(&sid)
                    .map_or(Duration::ZERO, |s| s.timeout);
                let requested = Reader::new(body)
                    .int("timeout")
                    .unwrap_or(timeout.as_millis() as i32);
                let passwd = self.password(sid);
                let completion = Completion::Reply {
                    conn,
                    xid,
                    kind: ReplyKind::Raw(Self::connect_response(timeout, sid, &passwd)),
                    started: self.current,
                };
                let op = TxnOp::CreateSession { timeout: requested };
                self.order(sid, xid, op, HashMap::new(), completion);
            }
            Request::Other if opcode == op::RECONFIG => {
                // A failed write, as in a standalone ZooKeeper: disabled, or
                // (reconfigEnabled=true) not possible without an ensemble.
                let code = if self.config.reconfig_enabled {
                    ErrorCode::Unimplemented
                } else {
                    ErrorCode::ReconfigDisabled
                };
                self.fail_write(conn, sid, xid, code);
            }
            Request::Other
            | Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. } => {
                // ZooKeeper answers opcodes it does not serve with
                // UNIMPLEMENTED (zxid -1) and closes the connection.
                self.reply(conn, xid, -1, ErrorCode::Unimplemented);
                self.close_conn(
                    conn,
                    CloseReason::Malformed(format!("unsupported opcode {opcode}")),
                );
            }
            read if self.busy(conn) => {
                // Behind a write of the same session: answered when that
                // write commits, from the state it left.
                let started = self.current;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.push_back(Waiting::Read {
                        sid,
                        xid,
                        opcode,
                        req: Box::new(read),
                        started,
                    });
                }
            }
            read => self.on_read_request(conn, sid, xid, opcode, read),
        }
    }

    /// A read, ping or watch operation, answered from committed state.
    pub(super) fn on_read_request(
        &mut self,
        conn: ConnId,
        sid: i64,
        xid: i32,
        opcode: i32,
        req: Request,
    ) {
        match req {
            Request::Ping => self.reply(conn, xid::PING, self.db.last_zxid, ErrorCode::Ok),
            Request::Multi(ops) => self.on_multi_read(conn, xid, &ops),
            read => self.on_read(conn, sid, xid, opcode, read),
        }
    }
}
