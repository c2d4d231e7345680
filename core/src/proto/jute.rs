//! Jute, ZooKeeper's binary serialization: big-endian integers, length-prefixed
//! buffers and strings (-1 is null), count-prefixed vectors. Decoding never
//! panics: every read is bounds-checked and lengths are checked against what
//! is left before anything is allocated.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record ended before a field did.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A length or count was negative (other than -1) or too large for the
    /// bytes that are left.
    BadLength {
        /// What was being read.
        what: &'static str,
        /// The announced length.
        len: i32,
    },
    /// A field held a value the protocol does not allow.
    BadValue {
        /// What was being read.
        what: &'static str,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated { what } => write!(f, "truncated while reading {what}"),
            Self::BadLength { what, len } => write!(f, "bad length {len} for {what}"),
            Self::BadValue { what } => write!(f, "bad value for {what}"),
        }
    }
}

/// A cursor over one record's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Truncated { what })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { what })?;
        self.pos = end;
        Ok(s)
    }

    /// A 4-byte big-endian int.
    pub fn int(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let s = self.take(4, what)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// An 8-byte big-endian long.
    pub fn long(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let s = self.take(8, what)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(i64::from_be_bytes(b))
    }

    /// A one-byte boolean (any non-zero byte is true, as Java reads it).
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.take(1, what)?[0] != 0)
    }

    /// A buffer; `None` for the null buffer (length -1).
    pub fn buffer_opt(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.int(what)?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.remaining() {
            return Err(DecodeError::BadLength { what, len });
        }
        self.take(len as usize, what).map(Some)
    }

    /// A buffer; null reads as empty.
    pub fn buffer(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        Ok(self.buffer_opt(what)?.unwrap_or(&[]))
    }

    /// A buffer copied into its own allocation (so it does not pin the frame).
    pub fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        Ok(Bytes::copy_from_slice(self.buffer(what)?))
    }

    /// A buffer copied into its own allocation; `None` for the null buffer
    /// (ZooKeeper keeps null znode data apart from empty data).
    pub fn bytes_opt(&mut self, what: &'static str) -> Result<Option<Bytes>, DecodeError> {
        Ok(self.buffer_opt(what)?.map(Bytes::copy_from_slice))
    }

    /// A string. Invalid UTF-8 is replaced by U+FFFD, as Java's decoder does;
    /// null reads as empty.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.buffer(what)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// A vector count: -1 (null) reads as 0. Each element takes at least
    /// `min_elem` bytes, which bounds the count by what is left.
    pub fn count(&mut self, what: &'static str, min_elem: usize) -> Result<usize, DecodeError> {
        let n = self.int(what)?;
        if n == -1 {
            return Ok(0);
        }
        if n < 0 || (n as usize).saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(DecodeError::BadLength { what, len: n });
        }
        Ok(n as usize)
    }

    /// A vector of strings.
    pub fn strings(&mut self, what: &'static str) -> Result<Vec<String>, DecodeError> {
        let n = self.count(what, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.string(what)?);
        }
        Ok(v)
    }
}

/// Appends jute fields to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(n),
        }
    }

    /// A writer that starts a frame: 4 bytes reserved for the length, filled in
    /// by [`Writer::finish_frame`].
    pub fn frame() -> Self {
        // Most replies (a header, a Stat, a small payload) fit without
        // growing the buffer.
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        Self { buf }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes an int.
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    /// Writes a long.
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    /// Writes a boolean.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.put_u8(u8::from(v));
        self
    }

    /// Writes a buffer.
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        // Records are bounded by jute.maxbuffer, far below i32::MAX.
        self.buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
        self.buf.put_slice(v);
        self
    }

    /// Writes a buffer, or the null buffer (length -1) for `None`.
    pub fn buffer_opt(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.buffer(v),
            None => self.null(),
        }
    }

    /// Writes a null buffer or string (length -1).
    pub fn null(&mut self) -> &mut Self {
        self.buf.put_i32(-1);
        self
    }

    /// Writes a string.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    /// Writes a vector of strings.
    pub fn strings<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.int(i32::try_from(v.len()).unwrap_or(i32::MAX));
        for s in v {
            self.string(s.as_ref());
        }
        self
    }

    /// Writes raw bytes.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_slice(v);
        self
    }

    /// The bytes written.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// Fills in the frame length reserved by [`Writer::frame`] and returns the
    /// frame.
    pub fn finish_frame(mut self) -> Bytes {
        let len = (self.buf.len().saturating_sub(4)) as u32;
        if self.buf.len() >= 4 {
            self.buf[..4].copy_from_slice(&len.to_be_bytes());
        }
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_primitives() {
        let mut w = Writer::new();
        w.int(-5)
            .long(1 << 40)
            .boolean(true)
            .string("/a/b")
            .null()
            .buffer(b"xyz")
            .strings(&["p", "q"]);
        let b = w.finish();
        let mut r = Reader::new(&b);
        assert_eq!(r.int("i").unwrap(), -5);
        assert_eq!(r.long("l").unwrap(), 1 << 40);
        assert!(r.boolean("b").unwrap());
        assert_eq!(r.string("s").unwrap(), "/a/b");
        assert_eq!(r.buffer_opt("n").unwrap(), None);
        assert_eq!(r.buffer("x").unwrap(), b"xyz");
        assert_eq!(r.strings("v").unwrap(), vec!["p", "q"]);
        assert!(r.is_empty());
        assert!(matches!(r.int("z"), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let b = [0x7f, 0xff, 0xff, 0xff, 1, 2];
        assert!(matches!(
            Reader::new(&b).buffer("x"),
            Err(DecodeError::BadLength { .. })
        ));
        let b = [0xff, 0xff, 0xff, 0xfe];
        assert!(Reader::new(&b).buffer("x").is_err());
        assert!(Reader::new(&b).count("v", 4).is_err());
        let b = [0x10, 0, 0, 0];
        assert!(Reader::new(&b).strings("v").is_err());
    }

    #[test]
    fn frame_length_is_filled_in() {
        let mut w = Writer::frame();
        w.int(7);
        let f = w.finish_frame();
        assert_eq!(&f[..], &[0, 0, 0, 4, 0, 0, 0, 7]);
    }
}
