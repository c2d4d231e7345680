//! ACL checks with ZooKeeper's rules (`ZooKeeperServer.checkACL` and the
//! `digest` and `ip` authentication providers).

use crate::proto::records::{Acl, Id};
use crate::tree::java_string_hash;

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

/// A connection's authenticated ids in the order ZooKeeper iterates them.
///
/// ZooKeeper keeps them in `Collections.newSetFromMap(new
/// ConcurrentHashMap<Id, Boolean>())`; whoAmI and the expansion of an `auth`
/// ACL iterate that map, so the order is its bucket order: `Id.hashCode()`
/// (jute's `37 * (37 * 17 + scheme.hashCode()) + id.hashCode()`), spread as
/// `(h ^ (h >>> 16)) & 0x7fffffff`, over a table of 16 bins that doubles
/// once it holds 3/4 of its size; within a bin, insertion order, except that
/// a resize moves each bin the way `ConcurrentHashMap.transfer` does (the
/// nodes before the bin's last run land reversed).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthIds {
    /// The ids in iteration order (what callers read).
    ordered: Vec<Id>,
    /// The modelled table: bins of (spread hash, id).
    bins: Vec<Vec<(u32, Id)>>,
}

impl AuthIds {
    /// The ids, in ZooKeeper's iteration order.
    pub(crate) fn as_slice(&self) -> &[Id] {
        &self.ordered
    }

    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether `id` is there.
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.ordered.contains(id)
    }

    /// Adds `id` (a set: nothing happens when it is there already).
    pub(crate) fn insert(&mut self, id: Id) {
        if self.contains(&id) {
            return;
        }
        if self.bins.is_empty() {
            self.bins = vec![Vec::new(); 16];
        }
        let h = id_spread(&id);
        let n = self.bins.len();
        self.bins[h as usize & (n - 1)].push((h, id));
        let count = self.ordered.len() + 1;
        if count >= n - (n >> 2) {
            self.grow();
        }
        self.ordered = self
            .bins
            .iter()
            .flatten()
            .map(|(_, id)| id.clone())
            .collect();
    }

    /// `ConcurrentHashMap.transfer` to a table twice the size.
    fn grow(&mut self) {
        let n = self.bins.len();
        let mut next: Vec<Vec<(u32, Id)>> = vec![Vec::new(); 2 * n];
        for (i, bin) in std::mem::take(&mut self.bins).into_iter().enumerate() {
            if bin.is_empty() {
                continue;
            }
            let bit = |h: u32| h as usize & n;
            // The last run: the longest tail whose nodes all go one way.
            let mut last = 0;
            for k in 1..bin.len() {
                if bit(bin[k].0) != bit(bin[k - 1].0) {
                    last = k;
                }
            }
            let run_high = bit(bin[last].0) != 0;
            let (mut low, mut high) = (Vec::new(), Vec::new());
            let tail: Vec<(u32, Id)> = bin[last..].to_vec();
            if run_high {
                high = tail;
            } else {
                low = tail;
            }
            // Nodes before the run are pushed on the front, one by one.
            for node in bin[..last].iter().cloned() {
                if bit(node.0) == 0 {
                    low.insert(0, node);
                } else {
                    high.insert(0, node);
                }
            }
            next[i] = low;
            next[i + n] = high;
        }
        self.bins = next;
    }
}

/// `Id.hashCode()` spread as `ConcurrentHashMap.spread` does.
fn id_spread(id: &Id) -> u32 {
    let h = 37i32
        .wrapping_mul(
            37i32
                .wrapping_mul(17)
                .wrapping_add(java_string_hash(&id.scheme)),
        )
        .wrapping_add(java_string_hash(&id.id)) as u32;
    (h ^ (h >> 16)) & 0x7fff_ffff
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

    /// Orders recorded from Apache ZooKeeper 3.8.0 (whoAmI after the
    /// addAuths, in this order) and from its Id set built in Java.
    #[test]
    fn auth_ids_iterate_in_zookeepers_order() {
        let digest = |u: &str, pw: &str| {
            let d = crate::server::digest_id(format!("{u}:{pw}").as_bytes());
            id("digest", &d)
        };
        let names = |a: &AuthIds| -> Vec<String> {
            a.as_slice()
                .iter()
                .map(|i| format!("{}:{}", i.scheme, i.id.split(':').next().unwrap_or("")))
                .collect()
        };
        let mut a = AuthIds::default();
        a.insert(id("ip", "127.0.0.1"));
        a.insert(digest("alice", "pw1"));
        assert_eq!(names(&a), ["digest:alice", "ip:127.0.0.1"]);
        a.insert(digest("bob", "pw2"));
        a.insert(digest("bob", "pw2"));
        assert_eq!(names(&a), ["digest:alice", "digest:bob", "ip:127.0.0.1"]);
        let mut b = AuthIds::default();
        b.insert(id("ip", "127.0.0.1"));
        b.insert(digest("bob", "pw2"));
        b.insert(digest("alice", "pw1"));
        assert_eq!(names(&b), ["digest:alice", "digest:bob", "ip:127.0.0.1"]);
        // 15 ids: past 12 the table doubles (ZooKeeper's answer).
        let mut c = AuthIds::default();
        c.insert(id("ip", "127.0.0.1"));
        for i in 1..15 {
            c.insert(digest(&format!("u{i}"), "x"));
        }
        assert_eq!(
            names(&c).join(" "),
            "digest:u1 digest:u9 digest:u6 digest:u5 ip:127.0.0.1 digest:u11 digest:u7 \
             digest:u13 digest:u3 digest:u4 digest:u12 digest:u2 digest:u8 digest:u10 digest:u14"
        );
        // Built in Java: super, ip, then the super digest.
        let mut d = AuthIds::default();
        d.insert(id("ip", "127.0.0.1"));
        d.insert(id("super", ""));
        d.insert(id("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!(names(&d), ["super:", "ip:127.0.0.1", "digest:super"]);
        // Raw ids through a resize (Java: u3 u2 u5 u4 u7 u6 u10 u9 u8 u1 u13
        // ip u14 u11 u12).
        let mut e = AuthIds::default();
        e.insert(id("ip", "10.1.2.3"));
        for i in 1..15 {
            e.insert(id("digest", &format!("u{i}:x")));
        }
        assert_eq!(
            names(&e).join(" "),
            "digest:u3 digest:u2 digest:u5 digest:u4 digest:u7 digest:u6 digest:u10 \
             digest:u9 digest:u8 digest:u1 digest:u13 ip:10.1.2.3 digest:u14 digest:u11 digest:u12"
        );
    }
}
