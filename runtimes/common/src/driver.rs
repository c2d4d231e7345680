//! The part of every runtime's loop that is not about sockets: draining the
//! core's outputs, group commit of the log, reporting durability, and
//! snapshots. Runtimes own the sockets and the clock and call this.

use crate::datadir::{self, DiskLog};
use crate::txlog::TxLog;
use crate::{info, warn, Settings};
use pookeeper_core::{ConnId, Input, Output, Server, Zxid};
use std::io;
use std::time::Instant;

/// What the runtime must do with a connection.
#[derive(Debug)]
pub enum Action {
    /// Queue these bytes for the connection.
    Send(ConnId, bytes::Bytes),
    /// Send what is queued, then close (the reason is for the log).
    Close(ConnId, pookeeper_core::CloseReason),
}

/// A server with its log: its data directory ([`DiskLog`], what the
/// binaries use) or any other [`TxLog`] (a [`crate::txlog::MemoryLog`] for
/// tests and embedding without a disk). The core stays inside: runtimes
/// feed it through these methods, so every runtime turns the loop the
/// same way.
#[derive(Debug)]
pub struct Driver<L: TxLog = DiskLog> {
    server: Server,
    log: L,
}

impl Driver<DiskLog> {
    /// Recovers the server from the data directory.
    pub fn open(settings: &Settings, now: Instant, wall_ms: i64) -> io::Result<Self> {
        if !settings.force_sync {
            warn!("forceSync=no: writes are acknowledged before they reach the disk (tests and benchmarks only)");
        }
        let mut settings = settings.clone();
        settings.core.secret = crate::secret::load_or_create(&settings.data_dir)?;
        let (server, log) = datadir::open(&settings, now, wall_ms)?;
        Ok(Self { server, log })
    }
}

impl<L: TxLog> Driver<L> {
    /// A driver for `server` over `log` (which must hold what the server
    /// recovered from, if anything).
    pub fn with_log(server: Server, log: L) -> Self {
        Self { server, log }
    }

    /// Drains the core's outputs after an input: connection actions go to
    /// `sink`, log entries to the log's buffer (written by `commit`).
    pub fn drain(&mut self, sink: &mut impl FnMut(Action)) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, data } => sink(Action::Send(conn, data)),
                Output::Close { conn, reason } => sink(Action::Close(conn, reason)),
                Output::Append { zxid, entry } => self.log.append(zxid.0, &entry),
            }
        }
        while let Some(e) = self.server.poll_log() {
            info!("{e}");
        }
    }

    /// Registers a connection (`text`: on the text-only port); drain
    /// afterwards, since a refused connection is closed at once.
    pub fn accept(
        &mut self,
        now: Instant,
        peer: Option<std::net::SocketAddr>,
        text: bool,
    ) -> ConnId {
        if text {
            self.server.accept_text(now, peer)
        } else {
            self.server.accept(now, peer)
        }
    }

    /// Feeds one input without draining (for runtimes whose sink borrows
    /// state the driver call cannot hold): call [`Driver::drain`] next.
    pub fn feed(&mut self, now: Instant, input: Input<'_>) {
        self.server.handle(now, input);
    }

    /// Whether the core holds requests of `conn` it has not handled yet (see
    /// `Server::has_pending_input`): feed an empty `Received` once its send
    /// queue has room.
    pub fn has_pending_input(&self, conn: ConnId) -> bool {
        self.server.has_pending_input(conn)
    }

    /// Whether the core's deadline has passed (then feed `Input::Tick`).
    pub fn tick_due(&self, now: Instant) -> bool {
        self.server.poll_timeout().is_some_and(|t| t <= now)
    }

    /// Feeds one input and drains.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, sink: &mut impl FnMut(Action)) {
        self.server.handle(now, input);
        self.drain(sink);
    }

    /// Ticks the core if its deadline has passed.
    pub fn tick_if_due(&mut self, now: Instant, sink: &mut impl FnMut(Action)) {
        if self.tick_due(now) {
            self.handle(now, Input::Tick, sink);
        }
    }

    /// Group commit, without waiting for the disk. If the log's sync
    /// thread has finished a batch, reports it to the core (releasing what
    /// waited for it); otherwise, unless a batch is still being written,
    /// hands everything appended since the last batch to the sync thread
    /// as the next one (one write, one fdatasync). The sync thread calls
    /// the waker (see [`Driver::set_waker`]) when it is done: call `commit`
    /// again then. Then does snapshot work if a snapshot is due or was
    /// asked for. An error means the log cannot be written: the server
    /// must stop, since it cannot acknowledge writes any more.
    ///
    /// Right after a batch the next one waits for the next call, once the
    /// runtime has sent the replies this released and read what came in
    /// meanwhile ([`Driver::poll_timeout`] asks for that call at once): the
    /// clients that answered at once then join the next batch instead of
    /// waiting a whole sync more. (Starting it at once made batches half
    /// as large and cost a third of the throughput of a 90 % read load
    /// with a 2 ms sync.)
    pub fn commit(&mut self, now: Instant, sink: &mut impl FnMut(Action)) -> io::Result<()> {
        let released = match self.log.poll_flushed()? {
            Some(zxid) => {
                // The time after the write and sync: what the replies it
                // releases waited for is part of their latency.
                let done = Instant::now().max(now);
                self.handle(done, Input::Durable { zxid: Zxid(zxid) }, sink);
                true
            }
            None => false,
        };
        if !released {
            self.log.start_flush()?;
        }
        // A snapshot is of the committed tree, which the log has for good
        // already: it starts whatever is being written meanwhile.
        let forced = self.server.take_snapshot_request();
        if let Err(e) = self.log.snapshot_work(&mut self.server, forced) {
            warn!("snapshot failed: {e}");
        }
        Ok(())
    }

    /// Waits until everything appended is durable (the batch in flight,
    /// then the rest) and tells the core, which may release replies into
    /// `sink`. For shutdown (and snapshots): the loop itself uses `commit`.
    pub fn flush_log(&mut self, now: Instant, sink: &mut impl FnMut(Action)) -> io::Result<()> {
        if let Some(zxid) = self.log.flush()? {
            let done = Instant::now().max(now);
            self.handle(done, Input::Durable { zxid: Zxid(zxid) }, sink);
        }
        Ok(())
    }

    /// Installs what the log's sync thread calls (from that thread) when a
    /// batch is durable: it must wake the loop, which then calls `commit`.
    pub fn set_waker(&mut self, wake: Box<dyn Fn() + Send>) {
        self.log.set_waker(wake);
    }

    /// When the runtime must call in next (then `tick_if_due` and
    /// `commit`): the core's deadline, or sooner while a snapshot is being
    /// written (at once while it is encoded, a turn per megabyte).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.has_pending() {
            // A batch to hand to the log (see `commit`).
            return Some(now);
        }
        match (self.server.poll_timeout(), self.log.snapshot_wakeup(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reports what the core cannot see for itself (open file descriptors,
    /// the size of the data directories) for `mntr`, `conf` and `dirs`.
    /// Runtimes call it about once a second.
    pub fn report_process_facts(&mut self) {
        if let Some((open, max)) = crate::process::fd_counts() {
            self.server.set_fd_counts(open, max);
        }
        let (data, log) = self.log.dir_sizes();
        self.server.set_disk_usage(data, log);
    }

    /// Whether `commit` would hand log entries to the sync thread now
    /// (entries wait and no batch is in flight). While a batch is in flight
    /// the waker brings the loop back when it is done.
    pub fn has_pending(&self) -> bool {
        self.log.has_pending() && !self.log.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txlog::MemoryLog;
    use pookeeper_core::proto::records::ConnectRequest;
    use pookeeper_core::Config;

    /// The same loop turn over a memory log: a handshake is answered only
    /// once its batch, handed to the log by one `commit`, is reported
    /// durable by the next.
    #[test]
    fn a_driver_over_a_memory_log_answers_at_commit() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let server = Server::new(Config::default(), now, 1_700_000_000_000).unwrap();
        let mut d = Driver::with_log(server, MemoryLog::default());
        let conn = d.accept(now, None, false);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        };
        let mut sent = Vec::new();
        d.handle(
            now,
            Input::Received {
                conn,
                bytes: &req.encode_frame(),
            },
            &mut |a| sent.push(a),
        );
        assert!(sent.is_empty(), "nothing before the session is durable");
        assert!(d.has_pending());
        d.commit(now, &mut |a| sent.push(a)).unwrap();
        assert!(sent.is_empty(), "the batch was only handed to the log");
        d.commit(now, &mut |a| sent.push(a)).unwrap();
        assert!(
            matches!(sent.as_slice(), [Action::Send(c, b)] if *c == conn && b.len() == 41),
            "{sent:?}"
        );
        assert!(!d.has_pending());
    }
}
