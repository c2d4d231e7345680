//! ZooKeeper's path rules (`PathUtils.validatePath`), applied to UTF-16 code
//! units as Java does.

/// Whether `path` is a valid znode path: absolute, no empty, `.` or `..`
/// segments, no trailing slash (except the root), and none of the characters
/// ZooKeeper forbids.
pub(crate) fn is_valid(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    if b.len() == 1 {
        return true;
    }
    if b.last() == Some(&b'/') {
        return false;
    }
    // Fast path for the usual all-ASCII path: one pass over the bytes.
    if b.is_ascii() {
        let mut seg_start = 1;
        for i in 1..=b.len() {
            let c = b.get(i).copied().unwrap_or(b'/');
            if c == b'/' {
                match &b[seg_start..i] {
                    b"" | b"." | b".." => return false,
                    _ => seg_start = i + 1,
                }
            } else if c < 0x20 || c == 0x7f {
                return false;
            }
        }
        return true;
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return false;
        }
    }
    path.chars().all(|c| {
        let u = c as u32;
        // Characters outside the BMP are surrogate pairs in Java, which
        // fall in the forbidden \ud800-\uf8ff range.
        !(u == 0
            || (0x01..=0x1f).contains(&u)
            || (0x7f..=0x9f).contains(&u)
            || (0xd800..=0xf8ff).contains(&u)
            || (0xfff0..=0xffff).contains(&u)
            || u > 0xffff)
    })
}

/// The parent of `path` as ZooKeeper computes it (everything before the last
/// slash; `""` stands for the root), or `None` when there is no slash.
pub(crate) fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// The last segment of `path`.
pub(crate) fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Maps ZooKeeper's alias `""` for the root to `"/"`.
pub(crate) fn normalize(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Whether the path is one ZooKeeper reserves and never lets clients delete.
pub(crate) fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/a/.x", "/é"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/..",
            "/a\0",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff5}",
            "/😀",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some(""));
        assert_eq!(parent("a"), None);
        assert_eq!(name("/a/b"), "b");
        assert_eq!(normalize(""), "/");
    }
}
