//! Read requests, answered from the committed tree (at once, or once the
//! writes of the same session before them have committed): getData,
//! exists, getChildren, getACL, multiRead, watches and setWatches.

use super::*;

impl Server {
    pub(super) fn on_multi_read(&mut self, conn: ConnId, xid: i32, ops: &[MultiOp]) {
        let zxid = self.db.last_zxid;
        let reads = ops.iter().filter(|o| o.is_read()).count();
        if reads < ops.len() {
            // ZooKeeper refuses to decode a multi that mixes reads and writes
            // (MARSHALLINGERROR, no body); writes alone decode, and its
            // multiRead loop fails on the first with an empty result list.
            if reads > 0 {
                self.reply(conn, xid, zxid, ErrorCode::MarshallingError);
            } else {
                let mut w = reply_header(xid, zxid, ErrorCode::MarshallingError.code());
                w.int(-1).boolean(true).int(-1);
                self.send(conn, w.finish_frame());
            }
            return;
        }
        let mut w = reply_header(xid, zxid, 0);
        let auth = self.auth_of(conn);
        let tree = &self.db.tree;
        let denied = |n: &crate::tree::Node| !acl::allowed(tree.acl_of(n), perm::READ, auth);
        let no_auth = ErrorCode::NoAuth.code();
        let limit = self.config.max_reply;
        for o in ops {
            if w.len() > limit {
                break;
            }
            match o {
                MultiOp::GetData { path } => match tree.get(path) {
                    Some(n) if denied(n) => {
                        w.int(op::ERROR).boolean(false).int(no_auth).int(no_auth);
                    }
                    Some(n) => {
                        w.int(op::GET_DATA)
                            .boolean(false)
                            .int(0)
                            .buffer_opt(n.data.as_deref());
                        encode_stat(&mut w, &n.stat());
                    }
                    None => {
                        let c = ErrorCode::NoNode.code();
                        w.int(op::ERROR).boolean(false).int(c).int(c);
                    }
                },
                MultiOp::GetChildren { path } => match tree.get(path) {
                    Some(n) if denied(n) => {
                        w.int(op::ERROR).boolean(false).int(no_auth).int(no_auth);
                    }
                    Some(n) => {
                        w.int(op::GET_CHILDREN).boolean(false).int(0);
                        w.strings(&tree.zookeeper_order(n));
                    }
                    None => {
                        let c = ErrorCode::NoNode.code();
                        w.int(op::ERROR).boolean(false).int(c).int(c);
                    }
                },
                // Write ops were answered above.
                _ => {}
            }
        }
        if w.len() > limit {
            // One request must not make the server build a reply of any
            // size (ZooKeeper does: 1 GB from a 16 KB multiRead). No client
            // with default settings could read it anyway.
            let bytes = w.len();
            let session = self.conns.get(&conn).and_then(|c| c.session).unwrap_or(0);
            self.log(crate::LogEvent::ReplyTooLarge {
                session: SessionId(session),
                bytes,
                max: limit,
            });
            self.reply(conn, xid, zxid, ErrorCode::MarshallingError);
            return;
        }
        w.int(-1).boolean(true).int(-1);
        self.send(conn, w.finish_frame());
    }

    pub(super) fn on_read(&mut self, conn: ConnId, sid: i64, xid: i32, opcode: i32, req: Request) {
        let zxid = self.db.last_zxid;
        let mut w = reply_header(xid, zxid, 0);
        let auth = auth_in(&self.conns, conn);
        let tree = &self.db.tree;
        let can = |n: &crate::tree::Node, p: i32| acl::allowed(tree.acl_of(n), p, auth);
        let result: Result<(), ErrorCode> = match req {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else if tree.get(&path).is_some_and(|n| !can(n, perm::READ)) {
                    // ZooKeeper 3.9.2 / 3.8.4 (ZOOKEEPER-2590): exists() on a
                    // node needs READ, checked before any watch is set;
                    // 3.8.0 answered the Stat.
                    Err(ErrorCode::NoAuth)
                } else {
                    if watch {
                        self.watches.add(Kind::Data, &path, conn);
                    }
                    match tree.get(&path) {
                        Some(n) => {
                            encode_stat(&mut w, &n.stat());
                            Ok(())
                        }
                        None => Err(ErrorCode::NoNode),
                    }
                }
            }
            Request::GetData { path, watch } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    w.buffer_opt(n.data.as_deref());
                    encode_stat(&mut w, &n.stat());
                    if watch {
                        self.watches.add(Kind::Data, &path, conn);
                    }
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::GetChildren { path, watch } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    w.strings(&tree.zookeeper_order(n));
                    if opcode == op::GET_CHILDREN2 {
                        encode_stat(&mut w, &n.stat());
                    }
                    if watch {
                        self.watches.add(Kind::Child, &path, conn);
                    }
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::GetAcl { path } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ | perm::ADMIN) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    if can(n, perm::ADMIN) {
                        encode_acls(&mut w, tree.acl_of(n));
                    } else {
                        // Without ADMIN, digest hashes are hidden.
                        let masked: Vec<records::Acl> = tree
                            .acl_of(n)
                            .iter()
                            .map(|a| {
                                let mut a = a.clone();
                                if a.id.scheme == "digest" {
                                    let user = a.id.id.split(':').next().unwrap_or("");
                                    a.id.id = format!("{user}:x");
                                }
                                a
                            })
                            .collect();
                        encode_acls(&mut w, &masked);
                    }
                    encode_stat(&mut w, &n.stat());
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::Sync { path } => {
                w.string(&path);
                Ok(())
            }
            Request::GetEphemerals { prefix } => {
                let all = tree.ephemerals_of(sid);
                let p = prefix.trim();
                let v: Vec<&String> = all
                    .iter()
                    .filter(|e| p.is_empty() || p == "/" || e.starts_with(prefix.as_str()))
                    .collect();
                w.strings(&v);
                Ok(())
            }
            Request::GetAllChildrenNumber { path } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(_) => {
                    // ZooKeeper counts the keys that start with `path + "/"`:
                    // for "" that includes its second key for the root, "/".
                    let alias = usize::from(path.is_empty());
                    w.int((tree.descendant_count(&path) + alias) as i32);
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::WhoAmI => {
                w.int(auth.len() as i32);
                for id in auth {
                    // The provider's user name: digest ids show the user
                    // only; schemes without a provider show "".
                    let user = match id.scheme.as_str() {
                        "digest" => id.id.split(':').next().unwrap_or(""),
                        "ip" | "sasl" => id.id.as_str(),
                        _ => "",
                    };
                    w.string(&id.scheme).string(user);
                }
                Ok(())
            }
            Request::AddWatch { path, mode } => match mode {
                0 | 1 => {
                    self.watches.add_persistent(&path, conn, mode == 1);
                    // ZooKeeper answers with an ErrorResponse(0) body.
                    w.int(0);
                    Ok(())
                }
                _ => Err(ErrorCode::MarshallingError),
            },
            Request::WatchOp { path, watcher_type } => {
                match crate::watch::WatcherType::from_code(watcher_type) {
                    None => Err(ErrorCode::MarshallingError),
                    // ZooKeeper's checkWatches walks the path's parents (for
                    // recursive watches) and fails on a relative path with an
                    // exception it answers as MARSHALLINGERROR; removeWatches
                    // just finds nothing.
                    Some(_)
                        if opcode == op::CHECK_WATCHES
                            && !path.is_empty()
                            && !path.starts_with('/') =>
                    {
                        Err(ErrorCode::MarshallingError)
                    }
                    Some(t) => {
                        let found = if opcode == op::REMOVE_WATCHES {
                            self.watches.remove(&path, t, conn)
                        } else {
                            self.watches.contains(&path, t, conn)
                        };
                        if found {
                            Ok(())
                        } else {
                            Err(ErrorCode::NoWatcher)
                        }
                    }
                }
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            } => {
                self.set_watches(conn, relative_zxid, &data, &exist, &child);
                for p in &persistent {
                    self.watches.add_persistent(p, conn, false);
                }
                for p in &persistent_recursive {
                    self.watches.add_persistent(p, conn, true);
                }
                w = reply_header(xid, self.db.last_zxid, 0);
                Ok(())
            }
            _ => Err(ErrorCode::Unimplemented),
        };
        match result {
            Ok(()) => self.send(conn, w.finish_frame()),
            Err(code) => self.reply(conn, xid, zxid, code),
        }
    }

    /// ZooKeeper's `DataTree.setWatches`: re-arm the watches a reconnecting
    /// client had, firing at once those whose change it missed.
    pub(super) fn set_watches(
        &mut self,
        conn: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
    ) {
        use crate::watch::EventType as E;
        let mut fired: Vec<(E, String)> = Vec::new();
        for p in data {
            match self.db.tree.get(p) {
                None => fired.push((E::NodeDeleted, p.clone())),
                Some(n) if n.mzxid > relative_zxid => fired.push((E::NodeDataChanged, p.clone())),
                Some(_) => self.watches.add(Kind::Data, p, conn),
            }
        }
        for p in exist {
            match self.db.tree.get(p) {
                Some(_) => fired.push((E::NodeCreated, p.clone())),
                None => self.watches.add(Kind::Data, p, conn),
            }
        }
        for p in child {
            match self.db.tree.get(p) {
                None => fired.push((E::NodeDeleted, p.clone())),
                Some(n) if n.pzxid > relative_zxid => {
                    fired.push((E::NodeChildrenChanged, p.clone()))
                }
                Some(_) => self.watches.add(Kind::Child, p, conn),
            }
        }
        for (kind, path) in fired {
            self.notify(conn, kind, &path, -1);
        }
    }
}
