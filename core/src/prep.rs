//! Turning a write request into a Txn: every check ZooKeeper's
//! `PrepRequestProcessor` makes, in the same order (so the same error wins),
//! against the committed tree plus the changes of writes still in flight
//! ([`Outstanding`]) plus those of earlier ops in the same multi.

use crate::acl::{self, perm};
use crate::path;
use crate::pipeline::{Change, Outstanding};
use crate::proto::records::{op, Acl, AclList, CreateRequest, Id, MultiOp};
use crate::tree::DataTree;
use crate::txn::TxnOp;
use crate::ErrorCode;
use hashbrown::HashMap;

/// What validation needs to know of a node.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) acl: AclList,
    pub(crate) data_len: i64,
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) ephemeral_owner: i64,
    pub(crate) num_children: i32,
}

/// Validation context for one request (one multi shares it across ops).
pub(crate) struct Prep<'a> {
    tree: &'a DataTree,
    /// Changes of writes ordered but not committed.
    outstanding: &'a Outstanding,
    session: i64,
    /// The authenticated ids of the caller (for the `auth` ACL scheme).
    auth: &'a [Id],
    /// Changes made by earlier ops of the same multi; `None` = deleted.
    overlay: HashMap<String, Change>,
    /// `extendedTypesEnabled`: TTL nodes allowed.
    extended: bool,
    /// `enforceQuota`: hard quota limits refuse writes.
    enforce_quota: bool,
    /// The `sasl` ACL scheme exists (SASLAuthenticationProvider configured).
    sasl: bool,
}

type PrepResult = Result<TxnOp, ErrorCode>;

impl<'a> Prep<'a> {
    pub(crate) fn new(
        tree: &'a DataTree,
        outstanding: &'a Outstanding,
        session: i64,
        auth: &'a [Id],
    ) -> Self {
        Self {
            tree,
            outstanding,
            session,
            auth,
            overlay: HashMap::new(),
            extended: false,
            enforce_quota: false,
            sasl: false,
        }
    }

    /// Applies the configuration switches that change validation
    /// (`extendedTypesEnabled`, `enforceQuota`).
    pub(crate) fn options(mut self, config: &crate::Config) -> Self {
        self.extended = config.extended_types;
        self.enforce_quota = config.enforce_quota;
        self.sasl = config.sasl_acl;
        self
    }

    fn check_quota(&self, path: &str, bytes: i64, count: i64) -> Result<(), ErrorCode> {
        if self.enforce_quota && !self.tree.quota_allows(path, bytes, count) {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    fn view(&self, path: &str) -> Option<View> {
        let p = path::normalize(path);
        if let Some(v) = self.overlay.get(p) {
            return v.clone();
        }
        if let Some(v) = self.outstanding.get(p) {
            return v.clone();
        }
        self.tree.get(p).map(|n| View {
            acl: self.tree.acl_of(n).iter().cloned().collect(),
            data_len: crate::tree::data_len(&n.data) as i64,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            ephemeral_owner: n.ephemeral_owner,
            num_children: n.children.len() as i32,
        })
    }

    fn record(&mut self, path: &str, v: Option<View>) {
        self.overlay.insert(path::normalize(path).to_string(), v);
    }

    /// The changes this request makes, for [`Outstanding::record`] once it
    /// is ordered (only when it succeeded: a failed multi changes nothing).
    pub(crate) fn take_changes(&mut self) -> HashMap<String, Change> {
        std::mem::take(&mut self.overlay)
    }

    /// The deletes a closeSession makes: the session's ephemerals, committed
    /// or still being created, minus those already being deleted
    /// (ZooKeeper's PrepRequestProcessor walks `outstandingChanges` the
    /// same way). Returns their paths; the changes are recorded.
    pub(crate) fn close_session(&mut self) -> Vec<String> {
        let sid = self.session;
        let mut paths: std::collections::BTreeSet<String> =
            self.tree.ephemerals_of(sid).into_iter().collect();
        for (p, change) in self.outstanding.iter() {
            match change {
                None => {
                    paths.remove(p);
                }
                Some(v) if v.ephemeral_owner == sid => {
                    paths.insert(p.to_string());
                }
                Some(_) => {}
            }
        }
        let paths: Vec<String> = paths.into_iter().collect();
        for p in &paths {
            self.remove(p);
        }
        paths
    }

    /// The container/TTL reaper's delete (ZooKeeper's deleteContainer): no
    /// ACL or version check, only that the node is there and childless once
    /// the writes in flight are counted.
    pub(crate) fn reap(&mut self, path: &str) -> PrepResult {
        let node = self.node(path)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(path);
        Ok(TxnOp::Delete {
            path: path.to_string(),
        })
    }

    /// Records that `path` goes and its parent loses a child.
    fn remove(&mut self, path: &str) {
        if let Some(parent_path) = path::parent(path) {
            if let Some(parent) = self.view(parent_path) {
                self.record(
                    parent_path,
                    Some(View {
                        num_children: parent.num_children - 1,
                        ..parent
                    }),
                );
            }
        }
        self.record(path, None);
    }

    fn node(&self, path: &str) -> Result<View, ErrorCode> {
        self.view(path).ok_or(ErrorCode::NoNode)
    }

    fn check_acl(&self, node: &View, perm: i32) -> Result<(), ErrorCode> {
        if acl::allowed(&node.acl, perm, self.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// create / create2 / createContainer / createTTL.
    pub(crate) fn create(&mut self, req: &CreateRequest) -> PrepResult {
        let mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl && !self.extended {
            return Err(ErrorCode::Unimplemented);
        }
        // EphemeralType.validateTTL. A createTTL with a non-TTL mode is
        // refused too: ZooKeeper 3.8.0 logs such a request with ttl -1 and
        // then cannot apply it, forever; we must never log what cannot apply.
        let ttl_ok = if mode.ttl {
            req.ttl > 0 && req.ttl <= MAX_TTL
        } else {
            req.ttl < 0 && req.op != op::CREATE_TTL
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(&req.path).ok_or(ErrorCode::BadArguments)?;
        if req.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = fixup(req.acl.as_deref(), self.auth, self.sasl)?;
        let parent = self.node(parent_path)?;
        self.check_acl(&parent, perm::CREATE)?;
        let mut path = req.path.clone();
        if mode.sequential {
            path.push_str(&format!("{:010}", parent.cversion));
        }
        if !path::is_valid(&path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.view(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if parent.ephemeral_owner != 0 && !crate::tree::is_special_owner(parent.ephemeral_owner) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(&path, crate::tree::data_len(&req.data) as i64, 1)?;
        let parent_cversion = parent.cversion.wrapping_add(1);
        // ZooKeeper makes a container only for the createContainer opcode
        // (a create with flags 4 makes a plain persistent node), whatever
        // the flags say.
        let ephemeral_owner = if req.op == op::CREATE_CONTAINER {
            CONTAINER_OWNER
        } else if mode.ttl {
            TTL_MASK | req.ttl
        } else if mode.ephemeral {
            self.session
        } else {
            0
        };
        self.record(
            parent_path,
            Some(View {
                cversion: parent_cversion,
                num_children: parent.num_children + 1,
                ..parent
            }),
        );
        self.record(
            &path,
            Some(View {
                acl: acl.clone(),
                data_len: crate::tree::data_len(&req.data) as i64,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner,
                num_children: 0,
            }),
        );
        Ok(TxnOp::Create {
            path,
            data: req.data.clone(),
            acl,
            ephemeral_owner,
            parent_cversion,
        })
    }

    /// delete.
    pub(crate) fn delete(&mut self, path: &str, version: i32) -> PrepResult {
        let parent_path = path::parent(path).ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') || path::is_special(path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.node(parent_path)?;
        self.check_acl(&parent, perm::DELETE)?;
        let node = self.node(path)?;
        check_version(node.version, version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(path);
        Ok(TxnOp::Delete {
            path: path.to_string(),
        })
    }

    /// setData.
    pub(crate) fn set_data(
        &mut self,
        path: &str,
        data: &Option<bytes::Bytes>,
        version: i32,
    ) -> PrepResult {
        if !path::is_valid(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.node(path)?;
        self.check_acl(&node, perm::WRITE)?;
        self.check_quota(path, crate::tree::data_len(data) as i64 - node.data_len, 0)?;
        check_version(node.version, version)?;
        let version = node.version.wrapping_add(1);
        self.record(
            path,
            Some(View {
                version,
                data_len: crate::tree::data_len(data) as i64,
                ..node
            }),
        );
        Ok(TxnOp::SetData {
            path: path.to_string(),
            data: data.clone(),
            version,
        })
    }

    /// setACL.
    pub(crate) fn set_acl(&mut self, path: &str, acl: Option<&[Acl]>, version: i32) -> PrepResult {
        if !path::is_valid(path) {
            return Err(ErrorCode::BadArguments);
        }
        let acl = fixup(acl, self.auth, self.sasl)?;
        let node = self.node(path)?;
        self.check_acl(&node, perm::ADMIN)?;
        check_version(node.aversion, version)?;
        let version = node.aversion.wrapping_add(1);
        self.record(
            path,
            Some(View {
                acl: acl.clone(),
                aversion: version,
                ..node
            }),
        );
        Ok(TxnOp::SetAcl {
            path: path.to_string(),
            acl,
            version,
        })
    }

    /// check.
    pub(crate) fn check(&mut self, path: &str, version: i32) -> PrepResult {
        if !path::is_valid(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.node(path)?;
        self.check_acl(&node, perm::READ)?;
        check_version(node.version, version)?;
        Ok(TxnOp::Check {
            path: path.to_string(),
        })
    }

    /// One op of a multi.
    pub(crate) fn multi_op(&mut self, op: &MultiOp) -> PrepResult {
        match op {
            MultiOp::Create(c) => self.create(c),
            MultiOp::Delete { path, version } => self.delete(path, *version),
            MultiOp::SetData {
                path,
                data,
                version,
            } => self.set_data(path, data, *version),
            MultiOp::Check { path, version } => self.check(path, *version),
            // Reads in a write multi fail the whole request before prep
            // (Server::on_multi); kept total for other callers.
            MultiOp::GetChildren { .. } | MultiOp::GetData { .. } => Err(ErrorCode::BadArguments),
        }
    }

    /// A whole multi: all ops or none. A failure turns the op into its error,
    /// ops after it into RUNTIMEINCONSISTENCY, and the ops before it are
    /// rolled back, as ZooKeeper does (and their changes forgotten).
    pub(crate) fn multi(&mut self, ops: &[MultiOp]) -> TxnOp {
        let mut out = Vec::with_capacity(ops.len());
        let mut failed = false;
        for o in ops {
            if failed {
                out.push(TxnOp::Error {
                    code: ErrorCode::RuntimeInconsistency.code(),
                });
                continue;
            }
            match self.multi_op(o) {
                Ok(t) => out.push(t),
                Err(e) => {
                    failed = true;
                    out.push(TxnOp::Error { code: e.code() });
                }
            }
        }
        if failed {
            self.overlay.clear();
        }
        TxnOp::Multi(out)
    }
}

pub(crate) use crate::tree::CONTAINER_OWNER;
use crate::tree::{MAX_TTL, TTL_MASK};

fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(())
}

/// ZooKeeper's `CreateMode` flags.
#[derive(Debug, Clone, Copy, Default)]
struct CreateMode {
    ephemeral: bool,
    sequential: bool,
    ttl: bool,
}

impl CreateMode {
    fn from_flags(flags: i32) -> Option<Self> {
        let m = Self::default();
        Some(match flags {
            0 => m,
            1 => Self {
                ephemeral: true,
                ..m
            },
            2 => Self {
                sequential: true,
                ..m
            },
            3 => Self {
                ephemeral: true,
                sequential: true,
                ..m
            },
            // CONTAINER: the opcode, not the flag, decides (see `create`).
            4 => m,
            5 => Self { ttl: true, ..m },
            6 => Self {
                ttl: true,
                sequential: true,
                ..m
            },
            _ => return None,
        })
    }
}

/// ZooKeeper's `fixupACL`: drop duplicates, reject empty or malformed lists,
/// expand `auth` to the caller's authenticated ids.
#[cfg(test)]
pub(crate) fn fixup_acl(acl: Option<&[Acl]>, auth: &[Id]) -> Result<AclList, ErrorCode> {
    fixup(acl, auth, false)
}

/// `fixup_acl`, with the `sasl` scheme known when `sasl` is true.
fn fixup(acl: Option<&[Acl]>, auth: &[Id], sasl: bool) -> Result<AclList, ErrorCode> {
    let acl = acl.ok_or(ErrorCode::InvalidAcl)?;
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = AclList::new();
    for a in uniq {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a.clone()),
            "auth" => {
                // Only ids of authenticating providers count: not ip, and
                // not `super`, which has no provider.
                let mut any = false;
                let counts = |id: &&Id| match id.scheme.as_str() {
                    "ip" | "super" => false,
                    "sasl" => sasl,
                    _ => true,
                };
                for id in auth.iter().filter(counts) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: id.clone(),
                    });
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if a.id.id.split(':').count() == 2 => out.push(a.clone()),
            "ip" if valid_ip_acl(&a.id.id) => out.push(a.clone()),
            "sasl" if sasl && valid_kerberos_name(&a.id.id) => out.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// An `ip` ACL id: an address, optionally `/bits`.
/// `SASLAuthenticationProvider.isValid`: Hadoop's KerberosName accepts a
/// plain name, or `service[/host]@REALM`.
fn valid_kerberos_name(id: &str) -> bool {
    match id.split_once('@') {
        None => true,
        Some((principal, realm)) => {
            !realm.contains(['@', '/']) && principal.matches('/').count() <= 1
        }
    }
}

fn valid_ip_acl(id: &str) -> bool {
    crate::acl::parse_ip_acl(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(scheme: &str, id: &str) -> Acl {
        Acl {
            perms: 31,
            id: Id {
                scheme: scheme.into(),
                id: id.into(),
            },
        }
    }

    #[test]
    fn acl_fixup_follows_zookeeper() {
        assert_eq!(fixup_acl(None, &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup_acl(Some(&[]), &[]), Err(ErrorCode::InvalidAcl));
        let open = [Acl::open(), Acl::open()];
        assert_eq!(fixup_acl(Some(&open), &[]).unwrap().len(), 1);
        assert!(fixup_acl(Some(&[acl("world", "someone")]), &[]).is_err());
        assert!(fixup_acl(Some(&[acl("auth", "")]), &[]).is_err());
        let me = [Id {
            scheme: "digest".into(),
            id: "bob:xyz".into(),
        }];
        let got = fixup_acl(Some(&[acl("auth", "")]), &me).unwrap();
        assert_eq!(got[0].id, me[0]);
        assert!(fixup_acl(Some(&[acl("digest", "bob:hash")]), &[]).is_ok());
        assert!(fixup_acl(Some(&[acl("digest", "bob")]), &[]).is_err());
        assert!(fixup_acl(Some(&[acl("ip", "10.0.0.0/8")]), &[]).is_ok());
        assert!(fixup_acl(Some(&[acl("ip", "10.0.0.0/33")]), &[]).is_err());
        assert!(fixup_acl(Some(&[acl("ip", "nope")]), &[]).is_err());
        assert!(fixup_acl(Some(&[acl("super", "x")]), &[]).is_err());
    }

    #[test]
    fn multi_sees_its_own_earlier_ops() {
        let tree = DataTree::new();
        let none = Outstanding::default();
        let create = |p: &str, flags| {
            MultiOp::Create(CreateRequest {
                op: op::CREATE,
                path: p.into(),
                data: Some(bytes::Bytes::new()),
                acl: Some(smallvec::smallvec![Acl::open()]),
                flags,
                ttl: -1,
            })
        };
        let ops = [
            create("/a", 0),
            create("/a/b", 0),
            create("/a/s-", 2),
            MultiOp::Delete {
                path: "/a/b".into(),
                version: 0,
            },
        ];
        let TxnOp::Multi(t) = Prep::new(&tree, &none, 1, &[]).multi(&ops) else {
            panic!()
        };
        assert!(t.iter().all(|o| !matches!(o, TxnOp::Error { .. })), "{t:?}");
        let TxnOp::Create { path, .. } = &t[2] else {
            panic!()
        };
        assert_eq!(path, "/a/s-0000000001");
        // Deleting /a while /a/s- still exists fails; later ops are
        // RUNTIMEINCONSISTENCY, earlier ones stay as prepared (apply rolls
        // them back).
        let ops = [
            create("/a", 0),
            create("/a/b", 0),
            MultiOp::Delete {
                path: "/a".into(),
                version: -1,
            },
            create("/c", 0),
        ];
        let TxnOp::Multi(t) = Prep::new(&tree, &none, 1, &[]).multi(&ops) else {
            panic!()
        };
        assert_eq!(t[2], TxnOp::Error { code: -111 });
        assert_eq!(t[3], TxnOp::Error { code: -2 });
    }

    #[test]
    fn create_errors_in_zookeeper_order() {
        let tree = DataTree::new();
        let none = Outstanding::default();
        let mut p = Prep::new(&tree, &none, 1, &[]);
        let mk = |path: &str, flags, acl: Option<AclList>| CreateRequest {
            op: op::CREATE,
            path: path.into(),
            data: Some(bytes::Bytes::new()),
            acl,
            flags,
            ttl: -1,
        };
        let open = Some(smallvec::smallvec![Acl::open()]);
        assert_eq!(
            p.create(&mk("a", 0, open.clone())),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            p.create(&mk("/x/y", 0, open.clone())),
            Err(ErrorCode::NoNode)
        );
        assert_eq!(p.create(&mk("/x/y", 0, None)), Err(ErrorCode::InvalidAcl));
        // The parent is looked up before the full path is validated.
        assert_eq!(
            p.create(&mk("/a/", 0, open.clone())),
            Err(ErrorCode::NoNode)
        );
        assert_eq!(
            p.create(&mk("/zookeeper/", 0, open.clone())),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            p.create(&mk("/zookeeper", 0, open.clone())),
            Err(ErrorCode::NodeExists)
        );
        assert_eq!(
            p.create(&mk("/a", 9, open.clone())),
            Err(ErrorCode::BadArguments)
        );
        // A sequential create of "/" + "" is fine: the suffix alone.
        let TxnOp::Create { path, .. } = p.create(&mk("/", 2, open)).unwrap() else {
            panic!()
        };
        assert_eq!(path, "/0000000000");
    }
}
