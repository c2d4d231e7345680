//! What every PooKeeper runtime shares, written once: configuration
//! (`zoo.cfg` keys and the command line), logging, the transaction log
//! the runtime reports durability from, and the per-connection send queue
//! with its backpressure rule ([`sendq`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod datadir;
pub mod driver;
pub mod log;
pub mod process;
pub mod secret;
pub mod sendq;
pub mod settings;
pub mod txlog;

pub use settings::{Settings, SettingsError};
