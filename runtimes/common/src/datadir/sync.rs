//! The log's sync thread: one batch at a time written and fdatasynced off
//! the request loop, its result handed back with a wake-up.

use super::*;

/// A batch for the sync thread: records to write at `offset` of the
/// segment with one write, then one fdatasync.
pub(super) struct Batch {
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    pub(super) offset: u64,
    pub(super) buf: Vec<u8>,
    /// The last zxid in it.
    pub(super) upto: i64,
    pub(super) force_sync: bool,
}

impl Batch {
    /// Writes the records and syncs them (unless forceSync=no); an error
    /// names the file, what was being written and the free space.
    pub(super) fn write(&self) -> io::Result<()> {
        let started = Instant::now();
        let mut file = &*self.file;
        let written = file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.write_all(&self.buf));
        if let Err(e) = written {
            let what = format!(
                "cannot write {} bytes at offset {} of the log segment",
                self.buf.len(),
                self.offset
            );
            return Err(disk_error(e, &what, &self.path));
        }
        if self.force_sync {
            if let Err(e) = file.sync_data() {
                let what = format!(
                    "cannot sync {} bytes written at offset {} of the log segment",
                    self.buf.len(),
                    self.offset
                );
                return Err(disk_error(e, &what, &self.path));
            }
        }
        // ZooKeeper's fsync.warningthresholdms (default 1000).
        let took = started.elapsed();
        if took.as_millis() >= 1000 {
            warn!(
                "writing and syncing {} bytes of the transaction log took {} ms: the disk is slow, and every write waits for it",
                self.buf.len(),
                took.as_millis()
            );
        }
        Ok(())
    }
}

/// A batch the sync thread is done with.
pub(super) struct Finished {
    pub(super) upto: i64,
    pub(super) result: io::Result<()>,
    /// The batch's buffer, emptied, for the batch after next.
    pub(super) buf: Vec<u8>,
}

#[derive(Default)]
pub(super) struct SyncState {
    /// Handed over, not yet taken by the thread.
    pub(super) batch: Option<Batch>,
    /// Done, not yet collected by the loop.
    pub(super) finished: Option<Finished>,
    /// The log is being dropped: the thread ends (after any batch it was
    /// given).
    pub(super) stop: bool,
    /// fdatasyncs done.
    pub(super) syncs: u64,
}

type WakeFn = Box<dyn Fn() + Send>;

pub(super) struct SyncShared {
    pub(super) state: Mutex<SyncState>,
    /// A batch or the stop arrived (the thread waits on it).
    pub(super) work: Condvar,
    /// A batch finished (a blocking flush waits on it).
    pub(super) done: Condvar,
    /// Called on the sync thread after every batch, so the loop wakes up
    /// and collects it.
    pub(super) wake: Mutex<Option<WakeFn>>,
    /// The thread takes this before writing a batch: a test holds it to
    /// keep a batch in flight.
    #[cfg(test)]
    pub(super) gate: Mutex<()>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn sync_thread_lost() -> io::Error {
    io::Error::other(
        "the transaction log's sync thread stopped; stopping, no acknowledged write is lost",
    )
}

impl SyncShared {
    pub(super) fn run(&self) {
        loop {
            let batch = {
                let mut st = lock(&self.state);
                loop {
                    if let Some(b) = st.batch.take() {
                        break b;
                    }
                    if st.stop {
                        return;
                    }
                    st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            #[cfg(test)]
            drop(lock(&self.gate));
            let result = batch.write();
            let synced = batch.force_sync && result.is_ok();
            let Batch { mut buf, upto, .. } = batch;
            buf.clear();
            {
                let mut st = lock(&self.state);
                st.syncs += u64::from(synced);
                st.finished = Some(Finished { upto, result, buf });
            }
            self.done.notify_all();
            if let Some(wake) = lock(&self.wake).as_ref() {
                wake();
            }
        }
    }
}

/// The log's sync thread: takes one batch at a time, writes and syncs it,
/// posts the result and calls the wake callback. It ends when the log is
/// dropped, after the batch it has.
pub(super) struct SyncThread {
    pub(super) shared: Arc<SyncShared>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SyncThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncThread")
            .field("syncs", &lock(&self.shared.state).syncs)
            .finish_non_exhaustive()
    }
}

impl SyncThread {
    pub(super) fn start() -> io::Result<Self> {
        let shared = Arc::new(SyncShared {
            state: Mutex::new(SyncState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            wake: Mutex::new(None),
            #[cfg(test)]
            gate: Mutex::new(()),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-sync".into())
            .spawn(move || s.run())
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the log's sync thread: {e}"))
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub(super) fn hand_over(&self, batch: Batch) {
        lock(&self.shared.state).batch = Some(batch);
        self.shared.work.notify_one();
    }

    /// The finished batch, if there is one (never blocks).
    pub(super) fn try_take(&self) -> io::Result<Option<Finished>> {
        let mut st = lock(&self.shared.state);
        match st.finished.take() {
            Some(f) => Ok(Some(f)),
            // The thread only ends when dropped, or when it panicked.
            None if self.ended() => Err(sync_thread_lost()),
            None => Ok(None),
        }
    }

    /// Waits for the batch in flight.
    pub(super) fn wait(&self) -> io::Result<Finished> {
        let mut st = lock(&self.shared.state);
        loop {
            if let Some(f) = st.finished.take() {
                return Ok(f);
            }
            if self.ended() {
                return Err(sync_thread_lost());
            }
            st = self
                .shared
                .done
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(super) fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    #[cfg(test)]
    pub(super) fn syncs(&self) -> u64 {
        lock(&self.shared.state).syncs
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
