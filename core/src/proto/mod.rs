//! Wire protocols: ZooKeeper's jute encoding and its records.

pub mod jute;
pub mod records;
pub mod text;

pub use jute::{DecodeError, Reader, Writer};
