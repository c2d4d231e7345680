//! On-disk formats, as bytes only (files are the runtime's business): the
//! transaction log and its recovery scan. Documented in docs/storage.md.
//!
//! A log segment is a 16-byte header followed by records:
//!
//! ```text
//! header:  "PKLG" | u32 version (2) | i64 zxid of the first record it may hold
//! record:  u32 len | u32 crc32c(payload) | u32 crc32c(len, crc32c(payload))
//!          | payload (len bytes, a Txn) | u8 0xA5 (end mark)
//! ```
//!
//! The record header checks itself, so a damaged length is recognised before
//! it is believed; the end mark, which no single damaged bit can turn into a
//! zero, tells a record that was written to its end from one whose write was
//! cut short. Version 1 segments (`u32 len | u32 crc32c(payload) | payload`)
//! are still read.
//!
//! Segments are preallocated with zeros, so a record header of all zeros
//! marks the end of the data. A crash during a write leaves a prefix of that
//! write followed by zeros (or the end of the file); recovery calls the
//! damaged record a torn tail — never acknowledged, to be cut off — only if
//! it can be exactly that (see [`scan_log`]). Anything else is corruption,
//! reported with its offset; recovery refuses it.
//!
//! ## Where each concern lives
//!
//! | module | concern |
//! | --- | --- |
//! | `log` | log segments: header, records (versions 1 and 2), the recovery scan |
//! | `snapshot` | snapshots: the writer that runs while the tree changes, and the reader |
//!
//! Both checksum with the CRC-32C functions defined here; their public items
//! are re-exported from here.

mod log;
mod snapshot;
#[cfg(test)]
mod tests;

pub use log::{
    encode_record, encode_record_v1, is_unfinished_segment, log_header, log_header_v1, scan_log,
    LogEnd, LogError, LogScan, LOG_HEADER_LEN, LOG_MAGIC, LOG_VERSION, LOG_VERSION_1, RECORD_END,
    RECORD_HEADER_LEN, RECORD_OVERHEAD, V1_RECORD_HEADER_LEN,
};
pub(crate) use snapshot::decode_snapshot;
pub use snapshot::SnapshotWriter;
pub use snapshot::{SnapshotError, SNAP_MAGIC, SNAP_VERSION};

/// CRC-32C (Castagnoli), the checksum of log records and snapshots.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Continues a CRC-32C: `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}
