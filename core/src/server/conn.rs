//! What the server keeps per connection and per session.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Nothing received yet.
    Unknown,
    /// ZooKeeper binary protocol.
    Binary,
    /// The seed's line-based text protocol.
    Text,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) peer: Option<SocketAddr>,
    pub(super) inbuf: BytesMut,
    pub(super) dialect: Dialect,
    /// The session, once the handshake was accepted.
    pub(super) session: Option<i64>,
    /// A Close was decided; ignore further input.
    pub(super) closing: bool,
    /// Authenticated ids (`ip:` is always there when the peer is known).
    pub(super) auth: crate::acl::AuthIds,
    /// Handshake deadline while there is no session.
    pub(super) handshake_deadline: Option<Instant>,
    pub(super) packets_received: u64,
    pub(super) packets_sent: u64,
    /// What waits, in request order (the per-session gate).
    pub(super) queue: VecDeque<Waiting>,
    /// Text protocol: skipping the rest of an over-long line.
    pub(super) discarding: bool,
    /// Text protocol: how many bytes of `inbuf` are known to hold no
    /// newline, so each received byte is looked at once (a line sent a byte
    /// at a time would otherwise be rescanned whole for every byte).
    pub(super) scanned: usize,
    /// A closeSession was answered: requests pipelined behind it get
    /// SESSIONEXPIRED, then the connection closes after this input.
    pub(super) session_closed: bool,
    /// The SASL exchange under way, once the client sent a sasl token.
    pub(super) sasl: Option<Box<crate::sasl::DigestServer>>,
    pub(super) stats: Box<ConnStats>,
    /// A four-letter-word connection.
    pub(super) four_letter: bool,
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) timeout: Duration,
    pub(super) conn: Option<ConnId>,
    pub(super) expires: Instant,
    /// A CloseSession Txn was produced; the session is gone for clients.
    pub(super) closing: bool,
}

impl Conn {
    /// A connection just accepted: no session yet, the `ip` id when the
    /// peer is known, the handshake due by `deadline`.
    pub(super) fn new(peer: Option<SocketAddr>, deadline: Instant, wall_ms: i64) -> Self {
        let mut auth = crate::acl::AuthIds::default();
        if let Some(p) = peer {
            auth.insert(Id {
                scheme: "ip".into(),
                id: p.ip().to_string(),
            });
        }
        Self {
            peer,
            inbuf: BytesMut::new(),
            dialect: Dialect::Unknown,
            session: None,
            closing: false,
            auth,
            handshake_deadline: Some(deadline),
            packets_received: 0,
            packets_sent: 0,
            discarding: false,
            scanned: 0,
            session_closed: false,
            sasl: None,
            stats: Box::new(ConnStats {
                established: wall_ms,
                last_op: "NA",
                last_cxid: -1,
                last_zxid: -1,
                last_response: 0,
                last_latency: 0,
                min_latency: u64::MAX,
                max_latency: 0,
                total_latency: 0,
                count: 0,
            }),
            four_letter: false,
            queue: VecDeque::new(),
        }
    }
}
