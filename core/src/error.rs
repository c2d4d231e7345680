//! stub
/// Code
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode { /// ok
Ok }
