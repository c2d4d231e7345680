//! A snapshot on its way to disk: the writer thread that encodes the
//! core's frozen image and puts the file in place.

use super::*;

/// How much of a snapshot the writer thread encodes per write.
const SNAP_CHUNK: usize = 1 << 20;

/// A snapshot on its way to disk: a thread encodes the core's frozen image
/// of the tree a megabyte at a time, writes it to a temporary file and puts
/// it in place. The loop only checks whether it is done.
#[derive(Debug)]
pub(super) struct SnapJob {
    pub(super) zxid: i64,
    pub(super) path: PathBuf,
    pub(super) started: Instant,
    /// Bytes written, once done.
    pub(super) writer: std::thread::JoinHandle<io::Result<u64>>,
}

impl SnapJob {
    pub(super) fn start(
        snap_dir: &Path,
        mut snapshot: pookeeper_core::storage::SnapshotWriter,
    ) -> io::Result<Self> {
        let zxid = snapshot.zxid();
        let tmp = snap_dir.join(format!(".snapshot.{zxid:016x}.tmp"));
        let path = snap_dir.join(format!("snapshot.{zxid:016x}"));
        let mut file =
            File::create(&tmp).map_err(|e| disk_error(e, "cannot create snapshot", &tmp))?;
        let (dir, dest) = (snap_dir.to_path_buf(), path.clone());
        let writer = std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || -> io::Result<u64> {
                let written = (|| {
                    let mut bytes = 0u64;
                    let mut chunk = Vec::with_capacity(SNAP_CHUNK + 4096);
                    loop {
                        chunk.clear();
                        let done = snapshot.step(&mut chunk, SNAP_CHUNK);
                        file.write_all(&chunk)
                            .map_err(|e| disk_error(e, "cannot write snapshot", &tmp))?;
                        bytes += chunk.len() as u64;
                        if done {
                            break;
                        }
                    }
                    file.sync_all()
                        .map_err(|e| disk_error(e, "cannot sync snapshot", &tmp))?;
                    fs::rename(&tmp, &dest).map_err(at("cannot rename into place", &tmp))?;
                    sync_dir(&dir)?;
                    Ok(bytes)
                })();
                if written.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                written
            })?;
        info!("snapshot of zxid {zxid:#x} started");
        Ok(Self {
            zxid,
            path,
            started: Instant::now(),
            writer,
        })
    }

    pub(super) fn written(&self) -> bool {
        self.writer.is_finished()
    }

    /// Waits for the writer and reports.
    pub(super) fn finish(self) -> (i64, io::Result<u64>) {
        let result = match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("snapshot writer panicked")),
        };
        match &result {
            Ok(bytes) => info!(
                "snapshot {} written: {} bytes in {} ms",
                self.path.display(),
                bytes,
                self.started.elapsed().as_millis()
            ),
            Err(e) => warn!("snapshot of zxid {:#x} failed: {e}", self.zxid),
        }
        (self.zxid, result)
    }
}
