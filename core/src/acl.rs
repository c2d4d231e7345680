//! ACL checks with ZooKeeper's rules (`ZooKeeperServer.checkACL` and the
//! `digest` and `ip` authentication providers).

use crate::proto::records::{Acl, Id};

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
        // SASLAuthenticationProvider.matches: the same name, or the sasl
        // user called `super`.
        "sasl" => have == want || have == "super",
        _ => false,
    }
}

/// `ip` scheme: the caller's address inside `addr[/bits]`.
fn ip_matches(have: &str, want: &str) -> bool {
    let Some((want, bits)) = parse_ip_acl(want) else {
        return false;
    };
    let Some(have) = java_v4(have) else {
        // ZooKeeper's ip scheme knows only IPv4: IPv6 clients never match.
        return false;
    };
    if bits == 0 {
        return true;
    }
    let shift = 32 - bits;
    (have >> shift) == (want >> shift)
}

/// Java's `Integer.parseInt`: an optional sign, then decimal digits.
fn java_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    i32::try_from(v).ok().map(i64::from)
}

/// An IPv4 address the way ZooKeeper's IPAuthenticationProvider reads it:
/// four dot-separated `Integer.parseInt` values in 0..=255 (there is no
/// IPv6 support in ZooKeeper 3.8 or 3.9).
fn java_v4(addr: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut n = 0;
    for part in addr.split('.') {
        let v = java_int(part).filter(|v| (0..=255).contains(v))?;
        out = (out << 8) | v as u32;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// An `ip` ACL id, `a.b.c.d` or `a.b.c.d/bits`: the address and the prefix
/// length; `None` when ZooKeeper would call it invalid.
pub(crate) fn parse_ip_acl(id: &str) -> Option<(u32, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let addr = java_v4(addr)?;
    let bits = match bits {
        None => 32,
        Some(b) => java_int(b).filter(|b| (0..=32).contains(b))? as u32,
    };
    Some((addr, bits))
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
        // No IPv6 in ZooKeeper's ip scheme; Java's parseInt takes signs.
        assert!(!allowed(&[acl(31, "ip", "::1")], 1, &[id("ip", "::1")]));
        assert!(allowed(
            &[acl(31, "ip", "+10.0.0.-0/+8")],
            1,
            &[id("ip", "10.9.8.7")]
        ));
        assert!(parse_ip_acl("1.2.3.4/33").is_none());
        assert!(parse_ip_acl("1.2.3").is_none());
        assert!(parse_ip_acl("1.2.3.4.5").is_none());
        assert!(parse_ip_acl("1.2.3.256").is_none());
        assert!(parse_ip_acl("1.2..4").is_none());
        assert_eq!(parse_ip_acl("0.0.0.0/0"), Some((0, 0)));
    }
}
