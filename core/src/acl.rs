//! ACL checks with ZooKeeper's rules (`ZooKeeperServer.checkACL` and the
//! `digest` and `ip` authentication providers).

use crate::proto::records::{Acl, Id};
use std::net::IpAddr;

/// Permission bits (`ZooDefs.Perms`).
pub(crate) mod perm {
    pub(crate) const READ: i32 = 1;
    pub(crate) const WRITE: i32 = 2;
    pub(crate) const CREATE: i32 = 4;
    pub(crate) const DELETE: i32 = 8;
    pub(crate) const ADMIN: i32 = 16;
}

/// Whether a caller with authenticated `ids` holds `perm` on a node with
/// `acl`. An empty ACL allows everything; a `super` id bypasses all checks.
pub(crate) fn allowed(acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || ids
                    .iter()
                    .any(|i| i.scheme == a.id.scheme && matches(&a.id.scheme, &i.id, &a.id.id)))
    })
}

/// Does the caller's id match the ACL's id under `scheme`?
fn matches(scheme: &str, have: &str, want: &str) -> bool {
    match scheme {
        "digest" => have == want,
        "ip" => ip_matches(have, want),
        _ => false,
    }
}

/// `ip` scheme: the caller's address inside `addr[/bits]`.
fn ip_matches(have: &str, want: &str) -> bool {
    let (addr, bits) = match want.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (want, None),
    };
    let (Ok(have), Ok(want)) = (have.parse::<IpAddr>(), addr.parse::<IpAddr>()) else {
        return false;
    };
    let (h, w, total): (u128, u128, u32) = match (have, want) {
        (IpAddr::V4(h), IpAddr::V4(w)) => (u32::from(h).into(), u32::from(w).into(), 32),
        (IpAddr::V6(h), IpAddr::V6(w)) => (u128::from(h), u128::from(w), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(total).min(total);
    if bits == 0 {
        return true;
    }
    let shift = total - bits;
    (h >> shift) == (w >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.into(),
                id: id.into(),
            },
        }
    }
    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    #[test]
    fn zookeeper_acl_rules() {
        let bob = id("digest", "bob:h");
        let a = [acl(perm::READ, "digest", "bob:h")];
        assert!(allowed(&a, perm::READ, std::slice::from_ref(&bob)));
        assert!(!allowed(&a, perm::WRITE, &[bob]));
        assert!(!allowed(&a, perm::READ, &[id("ip", "127.0.0.1")]));
        assert!(allowed(&a, perm::WRITE, &[id("super", "")]));
        assert!(allowed(&[], perm::ADMIN, &[]));
        let w = [acl(perm::READ | perm::CREATE, "world", "anyone")];
        assert!(allowed(&w, perm::CREATE, &[]));
        assert!(!allowed(&w, perm::DELETE, &[]));
        let net = [acl(31, "ip", "10.1.0.0/16")];
        assert!(allowed(&net, perm::READ, &[id("ip", "10.1.200.3")]));
        assert!(!allowed(&net, perm::READ, &[id("ip", "10.2.0.1")]));
        assert!(allowed(
            &[acl(31, "ip", "127.0.0.1")],
            1,
            &[id("ip", "127.0.0.1")]
        ));
        assert!(allowed(&[acl(31, "ip", "::1")], 1, &[id("ip", "::1")]));
    }
}
