//! Server configuration: the subset of ZooKeeper's `zoo.cfg` that the core
//! itself acts on. Parsing files and flags is the runtimes' job.

use std::time::Duration;

/// What the core needs to know. Build with `Config::default()` and adjust
/// fields; [`crate::Server::new`] validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// ZooKeeper's `tickTime`: the basic time unit. Default 2000 ms.
    pub tick_time: Duration,
    /// `minSessionTimeout`; `None` means 2 × tick_time, as in ZooKeeper.
    pub min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; `None` means 20 × tick_time, as in ZooKeeper.
    pub max_session_timeout: Option<Duration>,
    /// `maxClientCnxns`: concurrent connections per client address; 0 is
    /// unlimited. Default 60, as ZooKeeper.
    pub max_client_cnxns: u32,
    /// `jute.maxbuffer`: the largest frame accepted. Default 0xfffff.
    pub max_buffer: u32,
    /// The server id (`myid`); the top byte of every session id, as in
    /// ZooKeeper. Default 0 for a standalone server.
    pub server_id: u8,
    /// The key of session passwords: a password is HMAC-SHA1(secret,
    /// session id), cut to 16 bytes, so nobody who lacks the secret can
    /// compute one from a session id (which every ephemeral node shows as its
    /// ephemeralOwner), and a restarted server with the same secret accepts
    /// its old sessions back. Runtimes make a random one at first start and
    /// keep it in the data directory. The default is a fixed value, for
    /// tests only.
    pub secret: [u8; 32],
    /// The longest line the text protocol accepts, in bytes (`textMaxLineLength`,
    /// default 8192); a longer one is answered `false:LineTooLong` and
    /// skipped.
    pub text_max_line: u32,
    /// Whether the client port also serves the text protocol
    /// (`textOnClientPort`, default true). The text port (`textPort`)
    /// serves it either way.
    pub text_on_client_port: bool,
    /// The most reply bytes one [`crate::Input::Received`] may produce for
    /// its connection (`pookeeper.outputBurstBytes`, default 1 MiB). Past
    /// it the server stops decoding that connection's requests and keeps
    /// the rest of its bytes, until the runtime feeds it again (an empty
    /// `Received` continues; see [`crate::Server::has_pending_input`]). With
    /// the runtime's high-water mark this bounds what one client that never
    /// reads can make the server hold, whatever its requests ask for.
    pub output_burst: usize,
    /// The largest reply a multiRead may build (`pookeeper.maxReplyBytes`,
    /// default 16 MiB, over 16 times the largest znode); past it the
    /// request fails with MARSHALLINGERROR and a log line. ZooKeeper has no
    /// such bound; its clients refuse frames above their own jute.maxbuffer.
    pub max_reply: usize,
    /// Four-letter words that are answered (`4lw.commands.whitelist`).
    /// Default `["srvr"]`, as ZooKeeper; `"*"` allows all.
    pub four_letter_words: Vec<String>,
    /// ZooKeeper's `zookeeper.DigestAuthenticationProvider.superDigest`
    /// (`super:base64(sha1("super:password"))`): a client that authenticates
    /// with the matching digest bypasses every ACL.
    pub super_digest: Option<String>,
    /// `extendedTypesEnabled`: allow TTL nodes (createTTL). Default false, as
    /// ZooKeeper.
    pub extended_types: bool,
    /// `enforceQuota` (`zookeeper.enforceQuota`): hard quota limits refuse
    /// writes with QUOTAEXCEEDED. Default false, as ZooKeeper.
    pub enforce_quota: bool,
    /// SASL DIGEST-MD5 users (name, password) from the JAAS configuration's
    /// `Server` section; `None` when SASL is not configured (sasl requests
    /// are then answered with a null token, as ZooKeeper does).
    pub sasl_users: Option<Vec<(String, String)>>,
    /// `authProvider.N=...SASLAuthenticationProvider`: the `sasl` ACL scheme.
    pub sasl_acl: bool,
    /// `zookeeper.superUser`: SASL users that bypass every ACL.
    pub sasl_super_users: Vec<String>,
    /// `reconfigEnabled`. A standalone server cannot change its membership:
    /// reconfig fails with RECONFIGDISABLED when false (the default) and
    /// UNIMPLEMENTED when true, as in a standalone ZooKeeper.
    pub reconfig_enabled: bool,
    /// `znode.container.checkIntervalMs`: how often containers and TTL nodes
    /// are checked for removal. Default 60 s.
    pub container_check_interval: Duration,
    /// `znode.container.maxPerMinute`: removals per minute at most. Default
    /// 10000.
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs`: remove containers that never
    /// had a child after this long (`None`, ZooKeeper's default 0, never).
    pub container_max_never_used: Option<Duration>,
    /// Where the snapshots live, only for display by `conf`.
    pub data_dir: String,
    /// Where the transaction log lives, only for display by `conf`.
    pub data_log_dir: String,
    /// The client port, only for display by `conf`.
    pub client_port: u16,
    /// At most this many authenticated ids per connection, counting the
    /// connection's own `ip` id and a `super` id (`pookeeper.maxAuthIds`,
    /// default 32; ZooKeeper has no limit). An addauth or SASL login that
    /// would add more fails with AUTHFAILED and closes the connection;
    /// repeating an id the connection already holds adds nothing.
    pub max_auth_ids: usize,
    /// At most this many bytes in one authenticated id (for `digest`,
    /// `user:hash`, so user names of up to ~990 bytes;
    /// `pookeeper.maxAuthIdBytes`, default 1024; ZooKeeper has no limit).
    /// A longer one fails with AUTHFAILED and closes the connection.
    pub max_auth_id_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tick_time: Duration::from_millis(2000),
            min_session_timeout: None,
            max_session_timeout: None,
            max_client_cnxns: 60,
            max_buffer: 0xfffff,
            server_id: 0,
            secret: *b"pookeeper test secret; not used!",
            text_max_line: 8192,
            text_on_client_port: true,
            output_burst: 1 << 20,
            max_reply: 16 << 20,
            four_letter_words: vec!["srvr".to_string()],
            super_digest: None,
            extended_types: false,
            enforce_quota: false,
            reconfig_enabled: false,
            sasl_users: None,
            sasl_acl: false,
            sasl_super_users: Vec::new(),
            container_check_interval: Duration::from_secs(60),
            container_max_per_minute: 10_000,
            container_max_never_used: None,
            data_dir: String::new(),
            data_log_dir: String::new(),
            client_port: 2181,
            max_auth_ids: 32,
            max_auth_id_bytes: 1024,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The effective minimum session timeout.
    pub fn min_timeout(&self) -> Duration {
        self.min_session_timeout.unwrap_or(self.tick_time * 2)
    }

    /// The effective maximum session timeout.
    pub fn max_timeout(&self) -> Duration {
        self.max_session_timeout.unwrap_or(self.tick_time * 20)
    }

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tick_time.is_zero() {
            return Err(ConfigError("tickTime must be positive".into()));
        }
        if self.min_timeout() > self.max_timeout() {
            return Err(ConfigError(format!(
                "minSessionTimeout {} ms is above maxSessionTimeout {} ms",
                self.min_timeout().as_millis(),
                self.max_timeout().as_millis()
            )));
        }
        if self.max_timeout() > Duration::from_millis(i32::MAX as u64) {
            return Err(ConfigError("maxSessionTimeout too large".into()));
        }
        if self.container_check_interval.is_zero() {
            return Err(ConfigError(
                "znode.container.checkIntervalMs must be positive".into(),
            ));
        }
        if self.extended_types && self.server_id == 255 {
            return Err(ConfigError(
                "extendedTypesEnabled needs a server id below 255".into(),
            ));
        }
        if self.text_max_line < 64 {
            return Err(ConfigError("textMaxLineLength below 64 bytes".into()));
        }
        if self.max_auth_ids < 2 {
            return Err(ConfigError(
                "pookeeper.maxAuthIds below 2 (the ip id and one more)".into(),
            ));
        }
        if self.max_buffer < 1024 {
            return Err(ConfigError("jute.maxbuffer below 1024 bytes".into()));
        }
        Ok(())
    }

    /// Whether four-letter word `cmd` is allowed.
    pub fn four_letter_word_allowed(&self, cmd: &str) -> bool {
        self.four_letter_words
            .iter()
            .any(|w| w == "*" || w.eq_ignore_ascii_case(cmd))
    }
}
