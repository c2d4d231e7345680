//! The send queue of one connection, and the one backpressure rule every
//! runtime follows (sans-IO: no sockets; time comes in as `Instant`s).
//!
//! # The rule
//!
//! A connection's replies wait in its [`SendQueue`] until the socket takes
//! them. For a client that does not read its replies:
//!
//! 1. **Pause.** Once more than [`HIGH_WATER`] (4 MiB) is unsent, the
//!    runtime stops reading from the connection
//!    ([`SendQueue::reading_paused`]) and stops feeding the core the
//!    requests it kept from it ([`SendQueue::has_room`]; see
//!    `Server::has_pending_input`). The core bounds what one input
//!    produces (`Config::output_burst`, 1 MiB, plus the reply that crosses
//!    it), so the queue holds at most about `HIGH_WATER + output_burst` and
//!    one reply. (Not so for reads pipelined behind a write: the core
//!    answers them all when the write commits, within one input; see
//!    README.md, "What does not work yet".)
//! 2. **Resume** once less than [`LOW_WATER`] (1 MiB) is unsent
//!    (hysteresis: between the marks, a paused connection stays paused and
//!    a reading one keeps reading). [`SendQueue::advance`] says when a
//!    pause ends; the runtime then reads again and feeds the kept requests.
//! 3. **Close a stalled connection.** A queue that has been non-empty
//!    without any write progress for longer than the stall limit (the
//!    runtimes use the maximum session timeout, `maxSessionTimeout`) is
//!    closed as if the peer had gone ([`SendQueue::stalled`]): such a client
//!    would have lost its session anyway, and its queue and socket are
//!    freed. A connection the core closed gets [`CLOSE_GRACE`] (5 s)
//!    without progress to take its last bytes (or the stall limit, if
//!    that is shorter), then it is dropped. Either way the runtime logs
//!    one warn line naming the connection, its peer and the unsent bytes
//!    ([`stall_message`]). Runtimes check at least every
//!    [`STALL_CHECK_INTERVAL`] while some queue is non-empty.
//!
//! There is no hard limit on the queue's size: the pause bounds it (rule
//! 1), and the stall close frees what is left of a client that stopped
//! reading. (A hard limit would not help with the case above either: the
//! replies exist, in the core's output, before the first is queued.)
//!
//! Both runtimes (`runtimes/mio`, `runtimes/async-std`) use this type, so
//! the rule is the same whichever serves.

use bytes::Bytes;
use pookeeper_core::ConnId;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Stop reading from a connection whose unsent bytes exceed this...
pub const HIGH_WATER: usize = 4 << 20;
/// ...and resume below this.
pub const LOW_WATER: usize = 1 << 20;
/// A closing connection gets this long without progress to take its last
/// bytes.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often a runtime checks for stalled queues while any is non-empty.
pub const STALL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One connection's unsent bytes, with the backpressure state of the
/// module's rule. The runtime pushes what the core transmits, writes what
/// [`SendQueue::io_slices`] (or [`SendQueue::clone_front`]) offers and
/// reports what the socket took with [`SendQueue::advance`].
#[derive(Debug)]
pub struct SendQueue {
    bufs: VecDeque<Bytes>,
    /// Bytes of the front buffer already written.
    offset: usize,
    /// Unsent bytes in all.
    len: usize,
    high: usize,
    low: usize,
    /// Reading is paused (hysteresis state).
    paused: bool,
    /// The core closed the connection: drop it once the queue is flushed.
    closing: bool,
    /// When the queue last made progress, became non-empty, or started
    /// closing (`None`: nothing to watch).
    since: Option<Instant>,
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SendQueue {
    /// An empty queue with the standard marks ([`HIGH_WATER`],
    /// [`LOW_WATER`]).
    pub fn new() -> Self {
        Self::with_marks(LOW_WATER, HIGH_WATER)
    }

    /// An empty queue that pauses reading above `high` unsent bytes and
    /// resumes below `low`.
    pub fn with_marks(low: usize, high: usize) -> Self {
        assert!(low <= high, "low mark {low} above high mark {high}");
        Self {
            bufs: VecDeque::new(),
            offset: 0,
            len: 0,
            high,
            low,
            paused: false,
            closing: false,
            since: None,
        }
    }

    /// Queues bytes to send (empty ones are ignored). Pauses reading when
    /// the queue passes the high mark.
    pub fn push(&mut self, data: Bytes, now: Instant) {
        if data.is_empty() {
            return;
        }
        if self.bufs.is_empty() && !self.closing {
            // The stall clock starts when there is something to send.
            self.since = Some(now);
        }
        self.len += data.len();
        self.bufs.push_back(data);
        if self.len > self.high {
            self.paused = true;
        }
    }

    /// Appends the unsent bytes to `out` as slices, at most `max` of them,
    /// in order, for one vectored write.
    pub fn io_slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>, max: usize) {
        for (i, b) in self.bufs.iter().take(max).enumerate() {
            let s = if i == 0 { &b[self.offset..] } else { &b[..] };
            out.push(IoSlice::new(s));
        }
    }

    /// Appends (cheap) clones of the unsent bytes to `out`, at most `max`
    /// buffers, for a writer that cannot borrow the queue while it writes
    /// (an async task that must not hold a lock across an `.await`).
    pub fn clone_front(&self, out: &mut Vec<Bytes>, max: usize) {
        for (i, b) in self.bufs.iter().take(max).enumerate() {
            out.push(if i == 0 {
                b.slice(self.offset..)
            } else {
                b.clone()
            });
        }
    }

    /// Records that the socket took the first `n` unsent bytes (progress:
    /// the stall clock restarts). Returns true when this ends a pause
    /// (the queue fell below the low mark): read from the connection again
    /// and feed the core what it kept.
    ///
    /// # Panics
    /// If `n` is more than what is queued.
    pub fn advance(&mut self, mut n: usize, now: Instant) -> bool {
        assert!(n <= self.len, "advance({n}) past {} queued bytes", self.len);
        if n == 0 {
            return false;
        }
        self.len -= n;
        while n > 0 {
            let front = self.bufs[0].len() - self.offset;
            if n >= front {
                n -= front;
                self.offset = 0;
                self.bufs.pop_front();
            } else {
                self.offset += n;
                n = 0;
            }
        }
        self.since = if self.bufs.is_empty() && !self.closing {
            None
        } else {
            Some(now)
        };
        if self.paused && self.len < self.low {
            self.paused = false;
            return true;
        }
        false
    }

    /// Whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Unsent bytes.
    pub fn len_bytes(&self) -> usize {
        self.len
    }

    /// Whether the runtime must not read from the connection now (it went
    /// above the high mark and has not fallen below the low mark since).
    pub fn reading_paused(&self) -> bool {
        self.paused
    }

    /// Whether the core may be fed more of the connection's input (kept
    /// requests or new bytes): the queue is not above the high mark.
    pub fn has_room(&self) -> bool {
        self.len <= self.high
    }

    /// The core closed the connection: it is dropped once the queue is
    /// flushed, or when it makes no progress for [`CLOSE_GRACE`].
    pub fn close(&mut self, now: Instant) {
        if !self.closing {
            self.closing = true;
            self.since = Some(now);
        }
    }

    /// Whether [`SendQueue::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// How long the queue has waited for progress (since it became
    /// non-empty, last advanced, or started closing); `None` when empty and
    /// not closing.
    pub fn idle(&self, now: Instant) -> Option<Duration> {
        self.since.map(|t| now.saturating_duration_since(t))
    }

    /// Whether the connection must be closed now: its queue has been
    /// non-empty without progress for longer than `limit`, or it is
    /// closing and has made no progress for longer than [`CLOSE_GRACE`].
    pub fn stalled(&self, now: Instant, limit: Duration) -> bool {
        let Some(idle) = self.idle(now) else {
            return false;
        };
        (!self.bufs.is_empty() && idle > limit) || (self.closing && idle > CLOSE_GRACE)
    }
}

/// The warn line a runtime logs when it closes a stalled connection (see
/// [`SendQueue::stalled`]), the same in every runtime.
pub fn stall_message(conn: ConnId, peer: SocketAddr, q: &SendQueue, now: Instant) -> String {
    let idle = q.idle(now).unwrap_or_default().as_secs_f64();
    let what = if q.is_closing() {
        "client not reading its last replies"
    } else {
        "client not reading"
    };
    format!(
        "closing connection {} from {peer}: {what} ({} bytes unsent, no write progress for {idle:.1} s)",
        conn.0,
        q.len_bytes()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn flat(q: &SendQueue) -> Vec<u8> {
        let mut v = Vec::new();
        q.io_slices(&mut v, usize::MAX);
        v.iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn reading_pauses_above_the_high_mark_and_resumes_below_the_low_mark() {
        let t = Instant::now();
        let mut q = SendQueue::with_marks(10, 40);
        q.push(bytes(40), t);
        assert!(!q.reading_paused(), "at the high mark is not above it");
        assert!(q.has_room());
        q.push(bytes(1), t);
        assert!(q.reading_paused());
        assert!(!q.has_room());
        // Between the marks a paused queue stays paused (but has room for
        // what the core kept, once at or below the high mark).
        assert!(!q.advance(1, t));
        assert!(q.reading_paused());
        assert!(q.has_room());
        assert!(!q.advance(30, t));
        assert_eq!(q.len_bytes(), 10);
        assert!(q.reading_paused(), "at the low mark is not below it");
        assert!(q.advance(1, t), "the pause ends below the low mark");
        assert!(!q.reading_paused());
        assert!(!q.advance(1, t), "only once");
        // Between the marks a reading queue keeps reading.
        q.push(bytes(25), t);
        assert!(!q.reading_paused());
        assert!(q.has_room());
    }

    #[test]
    fn the_standard_marks_are_4_and_1_mib() {
        let t = Instant::now();
        let mut q = SendQueue::new();
        q.push(bytes(HIGH_WATER), t);
        assert!(!q.reading_paused() && q.has_room());
        q.push(bytes(1), t);
        assert!(q.reading_paused() && !q.has_room());
        assert!(!q.advance(HIGH_WATER + 1 - LOW_WATER, t));
        assert_eq!(q.len_bytes(), LOW_WATER);
        assert!(q.reading_paused());
        assert!(q.advance(1, t));
        assert!(!q.reading_paused());
        assert_eq!((HIGH_WATER, LOW_WATER), (4 << 20, 1 << 20));
    }

    #[test]
    fn partial_writes_across_several_buffers() {
        let t = Instant::now();
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"abc"), t);
        q.push(Bytes::new(), t); // ignored
        q.push(Bytes::from_static(b"defg"), t);
        q.push(Bytes::from_static(b"h"), t);
        assert_eq!(q.len_bytes(), 8);
        let mut s = Vec::new();
        q.io_slices(&mut s, 2);
        assert_eq!(s.len(), 2, "at most max slices");
        assert_eq!((&*s[0], &*s[1]), (&b"abc"[..], &b"defg"[..]));
        drop(s);
        q.advance(2, t);
        assert_eq!(flat(&q), b"cdefgh");
        q.advance(3, t); // "c" and "de": ends inside the second buffer
        assert_eq!(flat(&q), b"fgh");
        let mut c = Vec::new();
        q.clone_front(&mut c, 8);
        assert_eq!(c, vec![Bytes::from_static(b"fg"), Bytes::from_static(b"h")]);
        q.advance(2, t); // exactly the rest of a buffer
        assert_eq!(flat(&q), b"h");
        assert_eq!(q.len_bytes(), 1);
        q.advance(0, t);
        assert_eq!(q.len_bytes(), 1);
        q.advance(1, t);
        assert!(q.is_empty());
        assert_eq!(q.len_bytes(), 0);
        assert!(flat(&q).is_empty());
    }

    #[test]
    #[should_panic(expected = "past")]
    fn advancing_past_the_queue_is_a_bug() {
        let t = Instant::now();
        let mut q = SendQueue::new();
        q.push(Bytes::from_static(b"ab"), t);
        q.advance(3, t);
    }

    #[test]
    fn a_queue_without_progress_past_the_limit_is_stalled_and_progress_resets_it() {
        let t = Instant::now();
        let limit = ms(1000);
        let mut q = SendQueue::new();
        assert!(!q.stalled(t + ms(10_000), limit), "empty never stalls");
        q.push(bytes(10), t + ms(100));
        assert!(
            !q.stalled(t + ms(1100), limit),
            "at the limit is not past it"
        );
        assert!(q.stalled(t + ms(1101), limit));
        // Progress restarts the clock.
        q.advance(4, t + ms(900));
        assert!(!q.stalled(t + ms(1101), limit));
        assert!(!q.stalled(t + ms(1900), limit));
        assert!(q.stalled(t + ms(1901), limit));
        // More bytes for a non-empty queue do not.
        q.push(bytes(10), t + ms(1500));
        assert!(q.stalled(t + ms(1901), limit));
        // A drained queue does not stall; refilled later, its clock starts
        // then.
        q.advance(16, t + ms(2000));
        assert!(q.is_empty());
        assert_eq!(q.idle(t + ms(9000)), None);
        assert!(!q.stalled(t + ms(9000), limit));
        q.push(bytes(1), t + ms(9000));
        assert!(!q.stalled(t + ms(10_000), limit));
        assert!(q.stalled(t + ms(10_001), limit));
    }

    #[test]
    fn a_closing_connection_gets_the_grace_to_take_its_last_bytes() {
        let t = Instant::now();
        let limit = ms(60_000);
        let mut q = SendQueue::new();
        q.push(bytes(10), t);
        // The grace counts from the close...
        q.close(t + ms(1000));
        assert!(q.is_closing());
        let grace = CLOSE_GRACE.as_millis() as u64;
        assert!(!q.stalled(t + ms(1000 + grace), limit));
        assert!(q.stalled(t + ms(1001 + grace), limit));
        // ...or from the last progress.
        q.advance(5, t + ms(2000));
        assert!(!q.stalled(t + ms(1001 + grace), limit));
        assert!(q.stalled(t + ms(2001 + grace), limit));
        // Closing again or pushing does not extend it.
        q.close(t + ms(3000));
        q.push(bytes(1), t + ms(3000));
        assert!(q.stalled(t + ms(2001 + grace), limit));
        let m = stall_message(
            ConnId(7),
            "127.0.0.1:4000".parse().unwrap(),
            &q,
            t + ms(2001 + grace),
        );
        assert_eq!(
            m,
            "closing connection 7 from 127.0.0.1:4000: client not reading its last replies (6 bytes unsent, no write progress for 5.0 s)"
        );
        // A stall limit shorter than the grace applies to closing
        // connections too.
        let mut q = SendQueue::new();
        q.push(bytes(10), t);
        q.close(t);
        assert!(q.stalled(t + ms(1001), ms(1000)));
    }

    #[test]
    fn the_stall_message_names_the_connection_peer_and_unsent_bytes() {
        let t = Instant::now();
        let mut q = SendQueue::new();
        q.push(bytes(1234), t);
        let m = stall_message(ConnId(3), "10.0.0.1:555".parse().unwrap(), &q, t + ms(2500));
        assert_eq!(
            m,
            "closing connection 3 from 10.0.0.1:555: client not reading (1234 bytes unsent, no write progress for 2.5 s)"
        );
    }
}
