//! stub
/// Stat
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {}
