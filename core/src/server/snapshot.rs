//! Recovery from snapshot and log, and snapshots taken while serving.

use super::*;

/// What [`Server::recover`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The zxid of the snapshot used, if any.
    pub snapshot_zxid: Option<i64>,
    /// Transactions replayed from the log.
    pub txns_replayed: u64,
    /// The zxid recovered to.
    pub last_zxid: i64,
    /// (segment index, byte offset) of a torn tail that was cut off.
    pub torn_tail: Option<(usize, usize)>,
    /// Sessions restored.
    pub sessions: usize,
    /// Znodes restored.
    pub znodes: usize,
}

/// Why recovery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The snapshot is unusable.
    Snapshot(crate::storage::SnapshotError),
    /// A log segment is damaged.
    Log {
        /// Index of the segment in the list given.
        segment: usize,
        /// What is wrong.
        error: crate::storage::LogError,
    },
    /// Transactions are missing between the snapshot and the log.
    Gap {
        /// The last zxid recovered.
        after: i64,
        /// The next zxid found.
        next: i64,
    },
}

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Snapshot(e) => write!(f, "{e}"),
            Self::Log { segment, error } => write!(f, "log segment #{segment}: {error}"),
            Self::Gap { after, next } => write!(
                f,
                "missing transactions: the log jumps from zxid {after:#x} to {next:#x}"
            ),
        }
    }
}

impl std::error::Error for RecoveryError {}

impl Server {
    /// Rebuilds a server from its newest valid snapshot (if any) and the log
    /// segments after it, in order. Transactions at or below the snapshot's
    /// zxid are skipped; the rest must follow each other without gaps. A
    /// torn tail is allowed only at the end of the last segment (it is cut
    /// off: `Recovered::torn_tail` says where). Sessions come back with their
    /// timeouts, counted from `now`, so clients can resume them.
    pub fn recover(
        config: Config,
        now: Instant,
        wall_ms: i64,
        snapshot: Option<&[u8]>,
        segments: &[&[u8]],
    ) -> Result<(Self, Recovered), RecoveryError> {
        let mut server = Self::new(config, now, wall_ms).map_err(RecoveryError::Config)?;
        let mut report = Recovered::default();
        if let Some(bytes) = snapshot {
            server.db = crate::storage::decode_snapshot(bytes).map_err(RecoveryError::Snapshot)?;
            report.snapshot_zxid = Some(server.db.last_zxid);
        }
        let mut scratch = Vec::new();
        for (i, bytes) in segments.iter().enumerate() {
            let scan = crate::storage::scan_log(bytes)
                .map_err(|error| RecoveryError::Log { segment: i, error })?;
            if let crate::storage::LogEnd::TornTail { offset } = scan.end {
                if i + 1 != segments.len() {
                    return Err(RecoveryError::Log {
                        segment: i,
                        error: crate::storage::LogError::Corrupt {
                            offset,
                            reason: "torn record in a segment that is not the last".into(),
                        },
                    });
                }
                report.torn_tail = Some((i, offset));
            }
            for txn in scan.txns {
                if txn.zxid <= server.db.last_zxid {
                    continue;
                }
                if txn.zxid != server.db.last_zxid + 1 {
                    return Err(RecoveryError::Gap {
                        after: server.db.last_zxid,
                        next: txn.zxid,
                    });
                }
                apply(&mut server.db, &txn, &mut scratch);
                release_triggers(&mut server.db.tree, &mut scratch);
                report.txns_replayed += 1;
            }
        }
        let last = server.db.last_zxid;
        server.seq = Standalone::at(last);
        report.last_zxid = last;
        let restored: Vec<(i64, i32)> = server.db.sessions.iter().map(|(&k, &v)| (k, v)).collect();
        for (sid, timeout_ms) in restored {
            let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
            let expires = server.expiry_for(timeout);
            server.sessions.insert(
                sid,
                Session {
                    timeout,
                    conn: None,
                    expires,
                    closing: false,
                },
            );
            server.expiry.insert((expires, sid));
            // Never hand out a restored id again.
            if sid >> 56 == server.next_session_id >> 56 && sid >= server.next_session_id {
                server.next_session_id = sid + 1;
            }
        }
        report.sessions = server.sessions.len();
        report.znodes = server.db.tree.len();
        Ok((server, report))
    }

    /// A snapshot of the whole committed state, in one go (see `storage`
    /// for the format; tests and tools). Abandons a snapshot under way.
    /// Only committed, hence durable, writes are in it.
    pub fn snapshot(&mut self) -> (i64, Vec<u8>) {
        self.abort_snapshot();
        let zxid = self.begin_snapshot();
        let mut out = Vec::new();
        while self.snapshot_step(&mut out, usize::MAX) == SnapshotProgress::More {}
        (zxid, out)
    }

    /// Starts a snapshot of the committed state, at the zxid returned,
    /// to be written piece by piece with [`Server::snapshot_step`] while the
    /// server goes on serving: the snapshot shows the tree exactly as it was
    /// at that zxid, whatever changes in between (see
    /// [`Server::snapshot_writer`]). If one is under way already, returns its
    /// zxid.
    ///
    /// The tree holds committed writes only, which the log already has, so
    /// the finished file may be put in place at once.
    pub fn begin_snapshot(&mut self) -> i64 {
        if let Some(s) = &self.snap {
            return s.zxid();
        }
        let w = self.snapshot_writer();
        let zxid = w.zxid();
        self.snap = Some(w);
        zxid
    }

    /// A writer for a snapshot of the committed state as it is now, to run
    /// anywhere: it holds a frozen image of the tree (taking it copies one
    /// pointer per node; a node changed afterwards is copied first), so it
    /// needs nothing of the server and is `Send`. A runtime hands it to
    /// another thread and calls [`crate::storage::SnapshotWriter::step`]
    /// there until it returns true, so the request loop never encodes.
    pub fn snapshot_writer(&mut self) -> crate::storage::SnapshotWriter {
        crate::storage::SnapshotWriter::begin(&self.db)
    }

    /// Appends the next part of the snapshot under way to `out`: about
    /// `budget` bytes (at least one node). Call it between inputs (for
    /// instance once per loop turn with a budget of a megabyte or so, a few
    /// milliseconds of work) until it returns [`SnapshotProgress::Done`];
    /// the concatenation of the parts is the snapshot file.
    pub fn snapshot_step(&mut self, out: &mut Vec<u8>, budget: usize) -> SnapshotProgress {
        let Some(w) = self.snap.as_mut() else {
            return SnapshotProgress::Idle;
        };
        if !w.step(out, budget) {
            return SnapshotProgress::More;
        }
        let zxid = w.zxid();
        self.snap = None;
        SnapshotProgress::Done { zxid }
    }

    /// The whole tree, for the fuzzer's comparisons.
    pub(crate) fn tree_dump(&self) -> Vec<crate::tree::DumpedNode> {
        self.db.tree.dump()
    }

    /// The zxid of the snapshot under way, if any.
    pub fn snapshot_in_progress(&self) -> Option<i64> {
        self.snap.as_ref().map(|s| s.zxid())
    }

    /// Abandons the snapshot under way (for instance when its file cannot be
    /// written); the runtime deletes what it wrote.
    pub fn abort_snapshot(&mut self) {
        self.snap = None;
    }

    /// Whether an operator asked for a snapshot since the last call (the
    /// `csnp` four-letter word). The runtime writes one when it sees true.
    pub fn take_snapshot_request(&mut self) -> bool {
        std::mem::take(&mut self.snapshot_requested)
    }
}
