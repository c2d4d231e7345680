//! Authentication: `addauth` (digest, ip, super), SASL DIGEST-MD5, the
//! caps on a connection's ids, and what a connection's ids are.

use super::*;

/// Adds authenticated `ids` to a connection, all or none: an id it already
/// holds adds nothing (ZooKeeper's `addAuthInfo` skips duplicates); a new
/// one must fit `max_auth_id_bytes`, and the list `max_auth_ids`. On `Err`
/// (which says which cap) nothing was added. With `before_ip`, new ids go
/// before the connection's `ip` id, as Apache ZooKeeper's whoAmI lists
/// addauth ids.
pub(super) fn admit_ids(c: &mut Conn, ids: Vec<Id>, config: &Config) -> Result<(), String> {
    let mut fresh: Vec<Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if !c.auth.contains(&id) && !fresh.contains(&id) {
            fresh.push(id);
        }
    }
    if let Some(long) = fresh.iter().find(|i| i.id.len() > config.max_auth_id_bytes) {
        return Err(format!(
            "{} id of {} bytes, over the {}-byte cap (pookeeper.maxAuthIdBytes)",
            long.scheme,
            long.id.len(),
            config.max_auth_id_bytes
        ));
    }
    if c.auth.len() + fresh.len() > config.max_auth_ids {
        return Err(format!(
            "the connection already holds {} authenticated ids, the cap is {} \
             (pookeeper.maxAuthIds)",
            c.auth.len(),
            config.max_auth_ids
        ));
    }
    // ZooKeeper's order: see `AuthIds`.
    for id in fresh {
        c.auth.insert(id);
    }
    Ok(())
}

/// The ids of `conn` in `conns`, borrowing only the connection table (so
/// callers can change the watches or the tree meanwhile).
pub(super) fn auth_in(conns: &BTreeMap<ConnId, Conn>, conn: ConnId) -> &[Id] {
    conns.get(&conn).map_or(&[], |c| c.auth.as_slice())
}

pub(super) fn is_write(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
    )
}

impl Server {
    /// A SASL token (`GetSASLRequest`), answered with `SetSASLResponse` and
    /// zxid 0 as ZooKeeper does; a failure is AUTHFAILED and the connection
    /// closes (the session lives on until it expires).
    pub(super) fn on_sasl(&mut self, conn: ConnId, xid: i32, body: &[u8]) {
        let Some(users) = self.config.sasl_users.as_ref() else {
            // A ZooKeeper without SASL configured answers OK with a null
            // token.
            let mut w = reply_header(xid, 0, 0);
            w.null();
            self.send(conn, w.finish_frame());
            return;
        };
        let token = match Reader::new(body).buffer("token") {
            Ok(t) => t.to_vec(),
            Err(e) => {
                self.close_conn(conn, CloseReason::Malformed(format!("sasl request: {e}")));
                return;
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let step = c
            .sasl
            .get_or_insert_with(|| {
                // 30 bytes, 40 base64 characters, as ZooKeeper's nonces.
                self.sasl_nonces = self.sasl_nonces.wrapping_add(1);
                let key = hmac_sha1(&self.config.secret, b"sasl nonce");
                let mut k = [0u8; 8];
                k.copy_from_slice(&key[..8]);
                let seed = u64::from_be_bytes(k) ^ self.sasl_nonces.rotate_left(32) ^ conn.0;
                Box::new(crate::sasl::DigestServer::new(base64(&seeded_bytes::<30>(
                    seed,
                ))))
            })
            .step(&token, |u| {
                users
                    .iter()
                    .find(|(name, _)| name == u)
                    .map(|(_, p)| p.clone())
            });
        let token = match step {
            crate::sasl::Step::Continue(t) => t,
            crate::sasl::Step::Done { token, authz } => {
                let is_super = self.config.sasl_super_users.contains(&authz);
                let mut ids = vec![Id {
                    scheme: "sasl".into(),
                    id: authz,
                }];
                if is_super {
                    ids.push(Id {
                        scheme: "super".into(),
                        id: String::new(),
                    });
                }
                if let Err(why) = admit_ids(c, ids, &self.config) {
                    self.stats.auth_failed += 1;
                    let mut w = reply_header(xid, 0, ErrorCode::AuthFailed.code());
                    w.null();
                    self.send(conn, w.finish_frame());
                    self.close_conn(conn, CloseReason::AuthLimit(why));
                    return;
                }
                token
            }
            crate::sasl::Step::Fail(why) => {
                self.stats.auth_failed += 1;
                let mut w = reply_header(xid, 0, ErrorCode::AuthFailed.code());
                w.null();
                self.send(conn, w.finish_frame());
                self.close_conn(conn, CloseReason::SaslFailed(why));
                return;
            }
        };
        let mut w = reply_header(xid, 0, 0);
        w.buffer(&token);
        self.send(conn, w.finish_frame());
    }

    pub(super) fn on_auth(&mut self, conn: ConnId, xid: i32, scheme: &str, auth: &[u8]) {
        let id = match scheme {
            "digest" => Some(digest_id(auth)),
            "ip" => self
                .conns
                .get(&conn)
                .and_then(|c| c.peer)
                .map(|p| p.ip().to_string()),
            _ => None,
        };
        let Some(id) = id else {
            self.stats.auth_failed += 1;
            self.send(
                conn,
                reply_header(xid, 0, ErrorCode::AuthFailed.code()).finish_frame(),
            );
            self.close_conn(conn, CloseReason::AuthFailed);
            return;
        };
        let is_super = scheme == "digest" && self.config.super_digest.as_deref() == Some(&id);
        if let Some(c) = self.conns.get_mut(&conn) {
            let mut ids = vec![Id {
                scheme: scheme.to_string(),
                id,
            }];
            if is_super {
                ids.insert(
                    0,
                    Id {
                        scheme: "super".into(),
                        id: String::new(),
                    },
                );
            }
            if let Err(why) = admit_ids(c, ids, &self.config) {
                self.stats.auth_failed += 1;
                self.send(
                    conn,
                    reply_header(xid, 0, ErrorCode::AuthFailed.code()).finish_frame(),
                );
                self.close_conn(conn, CloseReason::AuthLimit(why));
                return;
            }
        }
        self.send(conn, reply_header(xid, 0, 0).finish_frame());
    }

    /// The connection's authenticated ids, borrowed (never copied per
    /// request: a connection may hold up to `max_auth_ids` of them).
    pub(crate) fn auth_of(&self, conn: ConnId) -> &[Id] {
        auth_in(&self.conns, conn)
    }
}
