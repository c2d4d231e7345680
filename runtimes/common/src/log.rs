//! A tiny logger: timestamped lines on stderr, level from `POOKEEPER_LOG`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Log levels, most verbose last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something is wrong.
    Warn = 1,
    /// Normal operation.
    Info = 2,
    /// Everything.
    Debug = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(2);

/// Reads `POOKEEPER_LOG` (debug, info, warn).
pub fn init_from_env() {
    let l = match std::env::var("POOKEEPER_LOG").as_deref() {
        Ok("debug") | Ok("trace") => Level::Debug,
        Ok("warn") | Ok("error") => Level::Warn,
        _ => Level::Info,
    };
    LEVEL.store(l as u8, Ordering::Relaxed);
}

/// Whether `l` is logged.
pub fn enabled(l: Level) -> bool {
    l as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line (use the macros).
pub fn write(l: Level, msg: std::fmt::Arguments<'_>) {
    if !enabled(l) {
        return;
    }
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let tag = match l {
        Level::Warn => "WARN ",
        Level::Info => "INFO ",
        Level::Debug => "DEBUG",
    };
    eprintln!("{h:02}:{m:02}:{s:02}.{milli:03} {tag} {msg}");
}

/// Logs at info.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
/// Logs at warn.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Logs at debug.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } }
