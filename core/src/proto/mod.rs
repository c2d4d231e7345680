//! Wire protocols: ZooKeeper's jute encoding and its records.

pub mod jute;
pub mod records;

pub use jute::{DecodeError, Reader, Writer};
