//! The server's secret: the key of session passwords (see
//! [`pookeeper_core::Config::secret`]).
//!
//! It is made from the operating system's random source at the first start
//! and kept in `<dataDir>/pookeeper.secret` (32 bytes, mode 0600), so a
//! restarted server still accepts the sessions it handed out, while nobody
//! can compute a session's password from its id (ZooKeeper's passwords are a
//! function of the id and a constant, so anyone who reads an ephemeral
//! node's `ephemeralOwner` can take that session over).
//!
//! Every server of an ensemble must use the same secret, since a client may
//! resume its session on any of them. When replication comes, the leader
//! that starts the ensemble's first term will commit its secret as a log
//! entry and every server keeps it from there (in its snapshots too); until
//! then, an operator who runs several servers on one set of sessions copies
//! this file to each of them.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file name inside the data directory.
pub const FILE: &str = "pookeeper.secret";

/// Reads the secret kept in `data_dir`, or makes and keeps a new one.
/// Errors name the file.
pub fn load_or_create(data_dir: &str) -> io::Result<[u8; 32]> {
    let dir = Path::new(data_dir);
    let path = dir.join(FILE);
    let named = |what: &str, p: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    match fs::read(&path) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|b: Vec<u8>| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: {} bytes, expected 32 (restore it from a backup, or remove it: \
                         every session's password then changes)",
                        path.display(),
                        b.len()
                    ),
                )
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(named("cannot read", &path, e)),
    }
    fs::create_dir_all(dir).map_err(|e| named("cannot create", dir, e))?;
    let mut secret = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| named("cannot read", Path::new("/dev/urandom"), e))?;
    // Written whole or not at all: a temporary file, synced, renamed.
    let tmp: PathBuf = dir.join(format!(".{FILE}.tmp"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| named("cannot create", &tmp, e))?;
    f.write_all(&secret)
        .and_then(|()| f.sync_all())
        .map_err(|e| named("cannot write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| named("cannot rename to", &path, e))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let dir = std::env::temp_dir().join(format!("pk-secret-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let d = dir.to_str().unwrap();
        let a = load_or_create(d).unwrap();
        assert_ne!(a, [0; 32]);
        assert_eq!(load_or_create(d).unwrap(), a, "kept across starts");
        let mode = fs::metadata(dir.join(FILE)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
            0,
            "not readable by others"
        );
        let other = dir.join("other");
        let b = load_or_create(other.to_str().unwrap()).unwrap();
        assert_ne!(a, b, "each data directory has its own");
        fs::write(dir.join(FILE), b"short").unwrap();
        let err = load_or_create(d).unwrap_err().to_string();
        assert!(err.contains(FILE) && err.contains("expected 32"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
