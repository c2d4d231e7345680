//! Settings from ZooKeeper's `zoo.cfg` and the command line.

use pookeeper_core::Config;
use std::time::Duration;

/// Everything a runtime needs to start a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the core acts on.
    pub core: Config,
    /// Address to listen on (`clientPortAddress`, `--host`).
    pub host: String,
    /// Client port (`clientPort`, `--port`); 0 picks a free one.
    pub port: u16,
    /// A port serving only the seed's text protocol (`textPort`), if any.
    pub text_port: Option<u16>,
    /// `dataDir`.
    pub data_dir: String,
    /// `dataLogDir` (defaults to dataDir).
    pub data_log_dir: Option<String>,
    /// `forceSync`: fdatasync the log before acknowledging writes
    /// (default yes; `no` is for tests and benchmarks).
    pub force_sync: bool,
    /// `snapCount`: transactions between snapshots (default 100000).
    pub snap_count: u64,
    /// Size at which a log segment is closed and a new one started.
    pub segment_bytes: u64,
    /// `autopurge.snapRetainCount` (at least 3, default 3).
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 (default) disables purging.
    /// When enabled, old files are purged after every snapshot.
    pub purge_interval_hours: u64,
    /// The JAAS configuration (`java.security.auth.login.config`) holding
    /// the SASL DIGEST-MD5 users.
    pub jaas_file: Option<String>,
    /// Its section for the server (`zookeeper.sasl.serverconfig`, default
    /// `Server`).
    pub jaas_section: String,
    /// The ensemble's `server.N=...` lines, each with where it was read.
    pub servers: Vec<String>,
    /// `standaloneEnabled` (default true): with a single `server.N` line
    /// ZooKeeper then runs standalone.
    pub standalone_enabled: bool,
    /// `forceStandalone=true`: serve alone even though `server.N` lines
    /// describe an ensemble (PooKeeper has no replication yet).
    pub force_standalone: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let core = Config {
            data_dir: "./pookeeper-data".into(),
            ..Config::default()
        };
        Self {
            core,
            host: "127.0.0.1".into(),
            port: 2181,
            text_port: None,
            data_dir: "./pookeeper-data".into(),
            data_log_dir: None,
            force_sync: true,
            snap_count: 100_000,
            segment_bytes: 64 << 20,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            jaas_file: None,
            jaas_section: "Server".into(),
            servers: Vec::new(),
            standalone_enabled: true,
            force_standalone: false,
        }
    }
}

/// A configuration problem: a message naming the key, value and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(pub String);

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SettingsError {}

fn num<T: std::str::FromStr>(key: &str, value: &str, at: &str) -> Result<T, SettingsError> {
    value
        .parse()
        .map_err(|_| SettingsError(format!("{at}: bad value {value:?} for {key}")))
}

fn flag(key: &str, value: &str, at: &str) -> Result<bool, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(SettingsError(format!(
            "{at}: bad value {value:?} for {key} (true or false)"
        ))),
    }
}

impl Settings {
    /// Applies one `key=value`. Returns `Ok(false)` for keys PooKeeper does
    /// not use (the caller logs them), `Err` for a bad value. `at` names the
    /// place for messages (`zoo.cfg:12`).
    pub fn set(&mut self, key: &str, value: &str, at: &str) -> Result<bool, SettingsError> {
        let ms = |v: &str| num::<u64>(key, v, at).map(Duration::from_millis);
        match key {
            "clientPort" => self.port = num(key, value, at)?,
            "clientPortAddress" => self.host = value.to_string(),
            "textPort" => self.text_port = Some(num(key, value, at)?),
            "tickTime" => self.core.tick_time = ms(value)?,
            "minSessionTimeout" => self.core.min_session_timeout = Some(ms(value)?),
            "maxSessionTimeout" => self.core.max_session_timeout = Some(ms(value)?),
            "maxClientCnxns" => self.core.max_client_cnxns = num(key, value, at)?,
            "jute.maxbuffer" => self.core.max_buffer = parse_int_maybe_hex(key, value, at)?,
            "4lw.commands.whitelist" => {
                self.core.four_letter_words = value
                    .split(',')
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty())
                    .collect();
            }
            "dataDir" => {
                self.data_dir = value.to_string();
                self.core.data_dir = value.to_string();
            }
            "dataLogDir" => self.data_log_dir = Some(value.to_string()),
            "autopurge.snapRetainCount" => self.snap_retain_count = num(key, value, at)?,
            "autopurge.purgeInterval" => self.purge_interval_hours = num(key, value, at)?,
            "forceSync" | "zookeeper.forceSync" => self.force_sync = flag(key, value, at)?,
            "snapCount" | "zookeeper.snapCount" => {
                self.snap_count = num(key, value, at)?;
                if self.snap_count < 2 {
                    return Err(SettingsError(format!("{at}: snapCount must be at least 2")));
                }
            }
            "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                self.core.extended_types = flag(key, value, at)?
            }
            "enforceQuota" | "zookeeper.enforceQuota" => {
                self.core.enforce_quota = flag(key, value, at)?
            }
            "reconfigEnabled" => self.core.reconfig_enabled = flag(key, value, at)?,
            "pookeeper.maxAuthIds" => self.core.max_auth_ids = num(key, value, at)?,
            "pookeeper.maxAuthIdBytes" => self.core.max_auth_id_bytes = num(key, value, at)?,
            "znode.container.checkIntervalMs" => self.core.container_check_interval = ms(value)?,
            "znode.container.maxPerMinute" => {
                self.core.container_max_per_minute = num(key, value, at)?
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                let d = ms(value)?;
                self.core.container_max_never_used = (!d.is_zero()).then_some(d);
            }
            "superDigest" | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                self.core.super_digest = Some(value.to_string())
            }
            "java.security.auth.login.config" | "jaasConfig" => {
                self.jaas_file = Some(value.to_string())
            }
            "zookeeper.sasl.serverconfig" => self.jaas_section = value.to_string(),
            k if k.starts_with("zookeeper.superUser") => {
                self.core.sasl_super_users.push(value.to_string())
            }
            k if k.starts_with("authProvider.") || k.starts_with("zookeeper.authProvider.") => {
                // ZooKeeper's built-in ip and digest are always there; the
                // SASL provider enables the `sasl` ACL scheme.
                if value.ends_with("SASLAuthenticationProvider") {
                    self.core.sasl_acl = true;
                }
            }
            "serverId" | "myid" => self.core.server_id = num(key, value, at)?,
            "pookeeper.maxReplyBytes" => self.core.max_reply = num(key, value, at)?,
            "pookeeper.outputBurstBytes" => {
                self.core.output_burst = num::<usize>(key, value, at)?.max(1)
            }
            "textMaxLineLength" => self.core.text_max_line = num(key, value, at)?,
            "textOnClientPort" => self.core.text_on_client_port = flag(key, value, at)?,
            "standaloneEnabled" => self.standalone_enabled = flag(key, value, at)?,
            "forceStandalone" => self.force_standalone = flag(key, value, at)?,
            k if k.starts_with("server.") && k[7..].parse::<u64>().is_ok() => {
                self.servers.push(format!("{at}: {k}={value}"))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reads a `zoo.cfg` text. Returns the keys that were ignored, each with
    /// its line, for the caller to log.
    pub fn apply_cfg(&mut self, text: &str, file: &str) -> Result<Vec<String>, SettingsError> {
        let mut ignored = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{file}:{}", i + 1);
            let Some((k, v)) = line.split_once('=') else {
                return Err(SettingsError(format!(
                    "{at}: expected key=value, got {line:?}"
                )));
            };
            let (k, v) = (k.trim(), v.trim());
            if !self.set(k, v, &at)? {
                ignored.push(format!("{at}: {k}"));
            }
        }
        Ok(ignored)
    }

    /// Reads the JAAS file, if one is configured, into the SASL users.
    pub fn load_jaas(&mut self) -> Result<(), SettingsError> {
        let Some(f) = &self.jaas_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(f)
            .map_err(|e| SettingsError(format!("cannot read JAAS configuration {f}: {e}")))?;
        let users = pookeeper_core::sasl::jaas_users(&text, &self.jaas_section)
            .ok_or_else(|| SettingsError(format!("{f}: no {} section", self.jaas_section)))?;
        self.core.sasl_users = Some(users);
        Ok(())
    }

    /// Checks the whole configuration.
    ///
    /// `server.N` lines that describe an ensemble (two or more servers, or
    /// one with `standaloneEnabled=false`) are refused: PooKeeper cannot
    /// replicate yet, and servers started from one ensemble's configuration
    /// would each serve a different, diverging copy of the data. Setting
    /// `forceStandalone=true` serves alone anyway.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let ensemble =
            self.servers.len() >= 2 || (!self.servers.is_empty() && !self.standalone_enabled);
        if ensemble && !self.force_standalone {
            return Err(SettingsError(format!(
                "this configuration describes an ensemble, which PooKeeper cannot run yet \
                 (each server would serve its own diverging copy of the data):\n  {}\n\
                 remove the server.N lines, or set forceStandalone=true to serve alone",
                self.servers.join("\n  ")
            )));
        }
        self.core
            .validate()
            .map_err(|e| SettingsError(format!("invalid configuration: {e}")))
    }
}

fn parse_int_maybe_hex(key: &str, value: &str, at: &str) -> Result<u32, SettingsError> {
    let v = value.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    };
    parsed.ok_or_else(|| SettingsError(format!("{at}: bad value {value:?} for {key}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_zookeeper_config() {
        let cfg = "# a comment\n\
                   tickTime=1000\n\
                   clientPort = 2999\n\
                   clientPortAddress=::1\n\
                   initLimit=10\n\
                   server.1=a:2888:3888\n\
                   maxClientCnxns=0\n\
                   jute.maxbuffer=0x200000\n\
                   4lw.commands.whitelist=ruok, mntr\n\
                   dataDir=/tmp/zk\n";
        let mut s = Settings::default();
        let ignored = s.apply_cfg(cfg, "zoo.cfg").unwrap();
        assert_eq!(ignored, vec!["zoo.cfg:5: initLimit"]);
        assert_eq!(s.servers, vec!["zoo.cfg:6: server.1=a:2888:3888"]);
        assert_eq!(s.core.tick_time, Duration::from_millis(1000));
        assert_eq!(s.port, 2999);
        assert_eq!(s.host, "::1");
        assert_eq!(s.core.max_client_cnxns, 0);
        assert_eq!(s.core.max_buffer, 0x200000);
        assert_eq!(s.core.four_letter_words, vec!["ruok", "mntr"]);
        assert_eq!(s.data_dir, "/tmp/zk");
        s.validate().unwrap();
    }

    #[test]
    fn bad_values_name_key_value_and_line() {
        for (cfg, want) in [
            (
                "clientPort=abc",
                "zoo.cfg:1: bad value \"abc\" for clientPort",
            ),
            ("\ntickTime=-5", "zoo.cfg:2: bad value \"-5\" for tickTime"),
            ("clientPort", "zoo.cfg:1: expected key=value"),
            ("extendedTypesEnabled=maybe", "extendedTypesEnabled"),
        ] {
            let err = Settings::default().apply_cfg(cfg, "zoo.cfg").unwrap_err();
            assert!(err.0.contains(want), "{} vs {want}", err.0);
        }
        let mut s = Settings::default();
        s.apply_cfg("minSessionTimeout=9000\nmaxSessionTimeout=5000", "f")
            .unwrap();
        assert!(s.validate().is_err());
        let mut s = Settings::default();
        s.apply_cfg("tickTime=0", "f").unwrap();
        assert!(s.validate().is_err());
    }

    /// Until replication exists, an ensemble's zoo.cfg must not start a
    /// standalone server that silently diverges from its peers.
    #[test]
    fn an_ensemble_configuration_is_refused_unless_forced() {
        let three = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
                     server.3=127.0.0.1:2890:3890\n";
        let mut s = Settings::default();
        s.apply_cfg(three, "zoo.cfg").unwrap();
        let err = s.validate().unwrap_err().0;
        assert!(
            err.contains("zoo.cfg:1: server.1=127.0.0.1:2888:3888"),
            "{err}"
        );
        assert!(err.contains("zoo.cfg:3: server.3="), "{err}");
        assert!(err.contains("forceStandalone=true"), "{err}");
        s.set("forceStandalone", "true", "command line").unwrap();
        s.validate().unwrap();
        // One server with standaloneEnabled (the default) is standalone in
        // ZooKeeper too; without it, a one-server ensemble.
        let mut one = Settings::default();
        one.apply_cfg("server.1=127.0.0.1:2888:3888\n", "f")
            .unwrap();
        one.validate().unwrap();
        one.set("standaloneEnabled", "false", "f").unwrap();
        assert!(one.validate().is_err());
    }

    #[test]
    fn auth_id_caps() {
        let mut s = Settings::default();
        assert_eq!((s.core.max_auth_ids, s.core.max_auth_id_bytes), (32, 1024));
        s.apply_cfg("pookeeper.maxAuthIds=8\npookeeper.maxAuthIdBytes=256", "f")
            .unwrap();
        assert_eq!((s.core.max_auth_ids, s.core.max_auth_id_bytes), (8, 256));
        s.validate().unwrap();
        s.apply_cfg("pookeeper.maxAuthIds=1", "f").unwrap();
        assert!(s.validate().is_err());
    }
}
