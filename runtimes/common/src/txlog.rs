//! Where the runtime puts [`pookeeper_core::Output::Append`] entries, and how
//! it learns what is durable.

use pookeeper_core::Server;
use std::time::Instant;

/// A transaction log as a runtime drives it: append every entry of a loop
/// turn, then `start_flush` (group commit: one batch holds everything
/// appended since the last one), and report what `poll_flushed` returns to
/// the server as `Input::Durable`. A batch may take a while (a disk log
/// writes and syncs it on a thread of its own); at most one is in flight,
/// and what is appended meanwhile goes into the next one.
pub trait TxLog {
    /// Queues one entry.
    fn append(&mut self, zxid: i64, entry: &[u8]);
    /// Hands everything appended and not yet handed over to the log as one
    /// batch, unless a batch is already in flight (or nothing waits).
    /// Returns whether a batch was started.
    fn start_flush(&mut self) -> std::io::Result<bool>;
    /// Never blocks: the highest zxid made durable by a batch that finished
    /// since the last call, if one did. An error means the log cannot be
    /// written: the server must stop.
    fn poll_flushed(&mut self) -> std::io::Result<Option<i64>>;
    /// Whether a batch was started and `poll_flushed` has not reported it.
    fn in_flight(&self) -> bool;
    /// Blocks until everything appended so far is durable; returns the
    /// highest durable zxid when anything became durable that
    /// `poll_flushed` has not reported (tests, tools, shutdown).
    fn flush(&mut self) -> std::io::Result<Option<i64>>;
    /// Whether appended entries wait to be handed over as a batch.
    fn has_pending(&self) -> bool;
    /// Installs what a log that writes on a thread of its own calls when a
    /// batch is done, so the loop wakes up for it. A log whose batches
    /// complete at once has no use for it.
    fn set_waker(&mut self, _wake: Box<dyn Fn() + Send>) {}
    /// Snapshot work for one loop turn (see `DiskLog::snapshot_work`); a
    /// log that keeps no snapshots does none.
    fn snapshot_work(&mut self, _server: &mut Server, _forced: bool) -> std::io::Result<()> {
        Ok(())
    }
    /// When the runtime should come back for snapshot work, if ever.
    fn snapshot_wakeup(&self, _now: Instant) -> Option<Instant> {
        None
    }
    /// Bytes in (snapshot directory, log directory), for `conf` and `dirs`.
    fn dir_sizes(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// The log of a server without durability: entries are "durable" as soon
/// as they are flushed, and kept nowhere. (The disk log replaces this.)
#[derive(Debug, Default)]
pub struct MemoryLog {
    pending: Option<i64>,
    /// A batch started and not yet reported (it completes at once).
    done: Option<i64>,
    /// Entries appended since start.
    pub entries: u64,
}

impl TxLog for MemoryLog {
    fn append(&mut self, zxid: i64, _entry: &[u8]) {
        self.entries += 1;
        self.pending = Some(self.pending.map_or(zxid, |z| z.max(zxid)));
    }

    fn start_flush(&mut self) -> std::io::Result<bool> {
        if self.done.is_some() || self.pending.is_none() {
            return Ok(false);
        }
        self.done = self.pending.take();
        Ok(true)
    }

    fn poll_flushed(&mut self) -> std::io::Result<Option<i64>> {
        Ok(self.done.take())
    }

    fn in_flight(&self) -> bool {
        self.done.is_some()
    }

    fn flush(&mut self) -> std::io::Result<Option<i64>> {
        let mut durable = self.done.take();
        if let Some(z) = self.pending.take() {
            durable = Some(z);
        }
        Ok(durable)
    }

    fn has_pending(&self) -> bool {
        self.pending.is_some()
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

    #[test]
    fn memory_log_batches_complete_at_once_one_at_a_time() {
        let mut l = MemoryLog::default();
        assert!(!l.start_flush().unwrap());
        l.append(1, b"a");
        assert!(l.start_flush().unwrap());
        assert!(l.in_flight());
        l.append(2, b"b");
        // One batch at a time: 2 waits until 1 is reported.
        assert!(!l.start_flush().unwrap());
        assert_eq!(l.poll_flushed().unwrap(), Some(1));
        assert_eq!(l.poll_flushed().unwrap(), None);
        assert!(!l.in_flight());
        assert!(l.start_flush().unwrap());
        l.append(3, b"c");
        // flush covers the batch in flight and what waits.
        assert_eq!(l.flush().unwrap(), Some(3));
        assert_eq!(l.poll_flushed().unwrap(), None);
    }
}
