//! Facts about this process that the core cannot see (it does no I/O),
//! reported to it for the four-letter words.

/// (open file descriptors, soft limit) from /proc, where there is one.
pub fn fd_counts() -> Option<(u64, u64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some((open, max))
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_fds_on_linux() {
        if cfg!(target_os = "linux") {
            let (open, max) = super::fd_counts().expect("procfs");
            assert!(open >= 3 && max >= open, "{open} {max}");
        }
    }
}
