//! Where the runtime puts [`pookeeper_core::Output::Append`] entries, and how
//! it learns what is durable.

/// A transaction log as a runtime drives it: append every entry of a loop
/// turn, then `flush` once (group commit) and report the returned zxid to
/// the server as `Input::Durable`.
pub trait TxLog {
    /// Queues one entry.
    fn append(&mut self, zxid: i64, entry: &[u8]);
    /// Makes everything appended durable; returns the highest durable zxid
    /// when anything new became durable.
    fn flush(&mut self) -> std::io::Result<Option<i64>>;
}

/// The log of a server without durability: entries are "durable" as soon
/// as they are flushed, and kept nowhere. (The disk log replaces this.)
#[derive(Debug, Default)]
pub struct MemoryLog {
    pending: Option<i64>,
    /// Entries appended since start.
    pub entries: u64,
}

impl TxLog for MemoryLog {
    fn append(&mut self, zxid: i64, _entry: &[u8]) {
        self.entries += 1;
        self.pending = Some(self.pending.map_or(zxid, |z| z.max(zxid)));
    }

    fn flush(&mut self) -> std::io::Result<Option<i64>> {
        Ok(self.pending.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_log_reports_the_highest_appended_zxid_once() {
        let mut l = MemoryLog::default();
        assert_eq!(l.flush().unwrap(), None);
        l.append(3, b"a");
        l.append(4, b"b");
        assert_eq!(l.flush().unwrap(), Some(4));
        assert_eq!(l.flush().unwrap(), None);
        assert_eq!(l.entries, 2);
    }
}
