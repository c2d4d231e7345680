//! The seed's line-based text protocol (`CREATE:/yolo`, `GET:`, ...).

use super::*;

// ----- the seed's text protocol -----

impl Server {
    /// Registers a connection on a port that serves only the text protocol:
    /// it is greeted at once and gets a session, as if it had sent a first
    /// command.
    pub fn accept_text(&mut self, now: Instant, peer: Option<SocketAddr>) -> ConnId {
        let id = self.accept(now, peer);
        if self.conns.get(&id).is_some_and(|c| !c.closing) {
            self.start_text(id);
        }
        id
    }

    /// Makes `conn` a text connection with a session of its own (kept alive
    /// while the connection is open, closed with it).
    pub(super) fn start_text(&mut self, conn: ConnId) {
        let timeout = self.config.max_timeout();
        let mut sid = self.next_session_id;
        if sid == crate::prep::CONTAINER_OWNER {
            sid += 1;
        }
        self.next_session_id = sid.wrapping_add(1);
        // Not in the expiry set: a telnet user does not ping.
        self.sessions.insert(
            sid,
            Session {
                timeout,
                conn: Some(conn),
                expires: self.now,
                closing: false,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.dialect = Dialect::Text;
        }
        self.bind(conn, sid);
        let completion = Completion::Reply {
            conn,
            xid: 0,
            kind: ReplyKind::Raw(Bytes::from_static(b"true:Connected\n")),
            started: self.current,
        };
        let op = TxnOp::CreateSession {
            timeout: timeout.as_millis() as i32,
        };
        self.order(sid, 0, op, HashMap::new(), completion);
    }

    pub(super) fn text_lines(&mut self, conn: ConnId) {
        let max = self.config.text_max_line as usize;
        loop {
            if self.fed_bytes >= self.config.output_burst {
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing {
                return;
            }
            // Only the bytes not looked at before: constant work per byte.
            let from = c.scanned.min(c.inbuf.len());
            #[cfg(test)]
            {
                self.text_bytes_scanned += (c.inbuf.len() - from) as u64;
            }
            let Some(nl) = c.inbuf[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| from + i)
            else {
                c.scanned = c.inbuf.len();
                if c.inbuf.len() > max {
                    c.inbuf = BytesMut::new();
                    c.scanned = 0;
                    if !c.discarding {
                        c.discarding = true;
                        self.send(conn, Bytes::from_static(b"false:LineTooLong\n"));
                    }
                }
                return;
            };
            let line = c.inbuf.split_to(nl + 1);
            c.scanned = 0;
            if std::mem::take(&mut c.discarding) {
                continue;
            }
            if line.len() > max + 1 {
                // The whole line arrived in one piece, longer than allowed.
                self.send(conn, Bytes::from_static(b"false:LineTooLong\n"));
                continue;
            }
            c.packets_received += 1;
            self.stats.packets_received += 1;
            let line = &line[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(sid) = c.session else {
                return;
            };
            self.current = Started {
                at: self.now,
                write: false,
                op: None,
            };
            match text::parse(line) {
                Ok(cmd) if cmd.is_write() => {
                    self.current.write = true;
                    self.text_write(conn, sid, cmd);
                }
                Ok(cmd) if self.busy(conn) => {
                    let started = self.current;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.queue.push_back(Waiting::Text { cmd, started });
                    }
                }
                Ok(cmd) => self.text_read(conn, cmd),
                Err(reason) => self.send(conn, Bytes::from(format!("false:{reason}\n"))),
            }
        }
    }

    /// A text write: validated and ordered now, answered when it commits.
    pub(super) fn text_write(&mut self, conn: ConnId, sid: i64, cmd: Command) {
        let auth = self.auth_of(conn);
        let mut p = Prep::new(&self.db.tree, &self.outstanding, sid, auth).options(&self.config);
        let mut sequential = false;
        let prepared = match cmd {
            Command::Create {
                path,
                data,
                ephemeral,
                sequential: seq,
            } => {
                sequential = seq;
                let req = records::CreateRequest {
                    op: op::CREATE,
                    path,
                    data: Some(Bytes::from(data)),
                    acl: Some(smallvec::smallvec![records::Acl::open()]),
                    flags: i32::from(ephemeral) | (i32::from(seq) << 1),
                    ttl: -1,
                };
                p.create(&req)
            }
            Command::Delete(path) => p.delete(&path, -1),
            Command::Set(path, data) => p.set_data(&path, &Some(Bytes::from(data)), -1),
            _ => Err(ErrorCode::Unimplemented),
        };
        let changes = p.take_changes();
        let op = prepared.unwrap_or_else(|code| TxnOp::Error { code: code.code() });
        let completion = Completion::Reply {
            conn,
            xid: 0,
            kind: ReplyKind::Text { sequential },
            started: self.current,
        };
        self.order(sid, 0, op, changes, completion);
    }

    /// A text read, answered from committed state.
    pub(super) fn text_read(&mut self, conn: ConnId, cmd: Command) {
        let auth = self.auth_of(conn);
        let fail = |e: ErrorCode| format!("false:{}", e.name());
        let tree = &self.db.tree;
        let readable = |path: &str| -> Result<&crate::tree::Node, ErrorCode> {
            let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
            if acl::allowed(tree.acl_of(n), perm::READ, auth) {
                Ok(n)
            } else {
                Err(ErrorCode::NoAuth)
            }
        };
        let reply = match cmd {
            Command::Help => text::HELP.to_string(),
            Command::Exists(p) => match tree.get(&p) {
                Some(_) => "true".into(),
                None => fail(ErrorCode::NoNode),
            },
            Command::Get(p) => match readable(&p) {
                Ok(n) => format!("true:{}", escape(n.data.as_deref().unwrap_or_default())),
                Err(e) => fail(e),
            },
            Command::Children(p) => match readable(&p) {
                Ok(n) => format!("true:{}", tree.creation_order(n).join(",")),
                Err(e) => fail(e),
            },
            Command::Stat(p) => match tree.get(&p) {
                Some(n) => {
                    let s = n.stat();
                    format!(
                        "true:czxid={:#x},mzxid={:#x},pzxid={:#x},ctime={},mtime={},version={},cversion={},aversion={},ephemeralOwner={:#x},dataLength={},numChildren={}",
                        s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.cversion,
                        s.aversion, s.ephemeral_owner, s.data_length, s.num_children
                    )
                }
                None => fail(ErrorCode::NoNode),
            },
            Command::Sync(_) => "true".into(),
            Command::Watch(p) => {
                if path::is_valid(&p) {
                    let exists = tree.get(&p).is_some();
                    self.watches.add(Kind::Data, &p, conn);
                    if exists {
                        self.watches.add(Kind::Child, &p, conn);
                    }
                    "true".into()
                } else {
                    fail(ErrorCode::BadArguments)
                }
            }
            Command::Create { .. } | Command::Delete(_) | Command::Set(..) => {
                fail(ErrorCode::Unimplemented)
            }
        };
        self.send(conn, Bytes::from(reply + "\n"));
    }
}

/// Data as one printable line: UTF-8 (lossy) with `\` and line breaks
/// escaped.
pub(super) fn escape(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}
