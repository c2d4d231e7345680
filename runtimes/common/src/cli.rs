//! The command line shared by every runtime binary.

use crate::settings::{Settings, SettingsError};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run a server with these settings; `ignored` lists zoo.cfg keys that
    /// were not used (to be logged).
    Run {
        /// The settings.
        settings: Box<Settings>,
        /// Ignored zoo.cfg keys with their lines.
        ignored: Vec<String>,
    },
    /// Print this text and exit 0.
    Print(String),
    /// `inspect DATADIR`: describe what a data directory holds.
    Inspect(Box<Settings>),
    /// `repair DATADIR [--truncate-at FILE:OFFSET]`: say what keeps the
    /// server from starting, or cut a damaged log segment at an offset
    /// (keeping a copy of what is cut); see `datadir::repair`.
    Repair {
        /// The data directory.
        settings: Box<Settings>,
        /// The segment (a path, or a name in the log directory) and the
        /// byte offset to cut it at.
        truncate_at: Option<(String, u64)>,
    },
}

/// Carries out the commands that start no server (`--help`, `inspect`,
/// `repair`), printing their output; returns the process exit code, or
/// `None` for `Run`, which is the runtime's to do.
pub fn run_tool(bin: &str, cmd: &Command) -> Option<i32> {
    let done = |r: std::io::Result<(String, i32)>| match r {
        Ok((text, code)) => {
            print!("{text}");
            code
        }
        Err(e) => {
            eprintln!("{bin}: {e}");
            1
        }
    };
    match cmd {
        Command::Print(text) => {
            print!("{text}");
            Some(0)
        }
        Command::Inspect(settings) => {
            Some(done(crate::datadir::describe(settings).map(|t| (t, 0))))
        }
        Command::Repair {
            settings,
            truncate_at,
        } => Some(done(
            crate::datadir::repair(settings, truncate_at.clone())
                .map(|r| (r.text, if r.startable { 0 } else { 1 })),
        )),
        Command::Run { .. } => None,
    }
}

/// The usage text.
pub fn usage(bin: &str) -> String {
    format!(
        "usage: {bin} [OPTIONS] [path/to/zoo.cfg]\n\
         \x20      {bin} inspect DATADIR   (what a data directory holds)\n\
         \x20      {bin} repair DATADIR [--data-log-dir DIR] [--truncate-at FILE:OFFSET]\n\
         \x20          (stop the server first) without --truncate-at: why the server\n\
         \x20          refuses to start, changing nothing; with it: copy the bytes of the\n\
         \x20          log segment FILE from OFFSET on to damaged/ and cut FILE there\n\
         \x20          (later segments that cannot follow are moved to damaged/ too),\n\
         \x20          accepting the loss of those transactions. Recovery itself never\n\
         \x20          cuts anything but a torn tail (a write cut short by a crash).\n\
         \n\
         A ZooKeeper-compatible coordination server. With no arguments it\n\
         serves 127.0.0.1:2181. A zoo.cfg is read for the ZooKeeper keys that\n\
         apply; flags override it.\n\
         \n\
         options:\n\
         \x20 --port N              client port (clientPort); 0 picks a free port\n\
         \x20 --host ADDR           listen address (clientPortAddress), default 127.0.0.1\n\
         \x20 --tick-time MS        tickTime, default 2000\n\
         \x20 --max-client-cnxns N  maxClientCnxns, default 60 (0 = unlimited)\n\
         \x20 --data-dir DIR        dataDir, default ./pookeeper-data\n\
         \x20 --set forceSync=no    do not fdatasync the log (tests, benchmarks)\n\
         \x20 --text-port N         also serve the text protocol alone on port N\n\
         \x20 --set KEY=VALUE       any zoo.cfg key (repeatable)\n\
         \x20 -h, --help            this text\n\
         \x20 --version             the version\n\
         \n\
         environment: POOKEEPER_LOG=debug|info|warn (default info)\n"
    )
}

/// Parses the arguments (without the program name). Errors are for stderr,
/// with exit code 2.
pub fn parse(bin: &str, args: &[String]) -> Result<Command, SettingsError> {
    let mut settings = Settings::default();
    if args.first().map(String::as_str) == Some("inspect") {
        let dir = args
            .get(1)
            .ok_or_else(|| SettingsError("inspect needs a data directory".into()))?;
        settings.data_dir = dir.clone();
        return Ok(Command::Inspect(Box::new(settings)));
    }
    if args.first().map(String::as_str) == Some("repair") {
        let mut truncate_at = None;
        let mut dir = None;
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            if let Some(v) = a.strip_prefix("--data-log-dir") {
                let d = match v.strip_prefix('=') {
                    Some(d) => Some(d.to_string()),
                    None if v.is_empty() => it.next().cloned(),
                    None => return Err(SettingsError(format!("repair: unknown option {a}"))),
                };
                settings.data_log_dir = Some(
                    d.ok_or_else(|| SettingsError("--data-log-dir needs a directory".into()))?,
                );
                continue;
            }
            let spec = match a.strip_prefix("--truncate-at") {
                Some("") => it.next().cloned(),
                Some(v) if v.starts_with('=') => Some(v[1..].to_string()),
                Some(_) | None if a.starts_with('-') => {
                    return Err(SettingsError(format!("repair: unknown option {a}")))
                }
                _ => {
                    if dir.replace(a.clone()).is_some() {
                        return Err(SettingsError("repair takes one data directory".into()));
                    }
                    continue;
                }
            };
            let spec =
                spec.ok_or_else(|| SettingsError("--truncate-at needs FILE:OFFSET".into()))?;
            let (file, offset) = spec
                .rsplit_once(':')
                .and_then(|(f, o)| Some((f.to_string(), o.parse::<u64>().ok()?)))
                .ok_or_else(|| {
                    SettingsError(format!("--truncate-at needs FILE:OFFSET, got {spec:?}"))
                })?;
            truncate_at = Some((file, offset));
        }
        settings.data_dir =
            dir.ok_or_else(|| SettingsError("repair needs a data directory".into()))?;
        return Ok(Command::Repair {
            settings: Box::new(settings),
            truncate_at,
        });
    }
    let mut overrides: Vec<(String, String)> = Vec::new();
    let mut cfg_file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, SettingsError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| SettingsError(format!("{name} needs a value"))),
            }
        };
        let key = match name {
            "-h" | "--help" => return Ok(Command::Print(usage(bin))),
            "--version" => {
                return Ok(Command::Print(format!(
                    "{bin} {}\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "--port" => "clientPort",
            "--host" => "clientPortAddress",
            "--tick-time" => "tickTime",
            "--max-client-cnxns" => "maxClientCnxns",
            "--data-dir" => "dataDir",
            "--text-port" => "textPort",
            "--set" => {
                let kv = value(name)?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| SettingsError(format!("--set needs KEY=VALUE, got {kv:?}")))?;
                overrides.push((k.trim().to_string(), v.trim().to_string()));
                continue;
            }
            s if s.starts_with('-') => {
                return Err(SettingsError(format!("unknown option {s} (see --help)")))
            }
            file => {
                if cfg_file.replace(file.to_string()).is_some() {
                    return Err(SettingsError("only one configuration file".into()));
                }
                continue;
            }
        };
        overrides.push((key.to_string(), value(name)?));
    }
    let mut ignored = Vec::new();
    // zkServer.sh passes system properties in SERVER_JVMFLAGS / JVMFLAGS;
    // the ones we know (JAAS file, superUser, authProvider, superDigest)
    // apply too, below the configuration file and the command line.
    for var in ["JVMFLAGS", "SERVER_JVMFLAGS"] {
        let Ok(flags) = std::env::var(var) else {
            continue;
        };
        for prop in flags
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("-D"))
        {
            if let Some((k, v)) = prop.split_once('=') {
                if is_system_property(k) {
                    settings.set(k, v, var)?;
                }
            }
        }
    }
    if let Some(f) = cfg_file {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| SettingsError(format!("cannot read {f}: {e}")))?;
        ignored = settings.apply_cfg(&text, &f)?;
    }
    for (k, v) in overrides {
        if !settings.set(&k, &v, "command line")? {
            ignored.push(format!("command line: {k}"));
        }
    }
    settings.validate()?;
    settings.load_jaas()?;
    Ok(Command::Run {
        settings: Box::new(settings),
        ignored,
    })
}

/// The Java system properties read from `SERVER_JVMFLAGS`/`JVMFLAGS`.
fn is_system_property(k: &str) -> bool {
    k == "java.security.auth.login.config"
        || k == "zookeeper.DigestAuthenticationProvider.superDigest"
        || k == "zookeeper.sasl.serverconfig"
        || k.starts_with("zookeeper.superUser")
        || k.starts_with("zookeeper.authProvider.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_and_defaults() {
        let Command::Run { settings, .. } = parse("pk", &[]).unwrap() else {
            panic!()
        };
        assert_eq!((settings.host.as_str(), settings.port), ("127.0.0.1", 2181));
        let Command::Run { settings, .. } = parse(
            "pk",
            &args(&[
                "--port",
                "0",
                "--host=::1",
                "--tick-time",
                "500",
                "--set",
                "extendedTypesEnabled=true",
            ]),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(settings.port, 0);
        assert_eq!(settings.host, "::1");
        assert_eq!(settings.core.tick_time.as_millis(), 500);
        assert!(settings.core.extended_types);
        assert!(matches!(
            parse("pk", &args(&["--help"])),
            Ok(Command::Print(_))
        ));
        assert!(parse("pk", &args(&["--port", "x"])).is_err());
        assert!(parse("pk", &args(&["--bogus"])).is_err());
        assert!(parse("pk", &args(&["/no/such/zoo.cfg"])).is_err());
    }

    #[test]
    fn repair_arguments() {
        let Command::Repair {
            settings,
            truncate_at,
        } = parse(
            "pk",
            &args(&["repair", "d", "--truncate-at", "/x/log.01:123"]),
        )
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(settings.data_dir, "d");
        assert_eq!(truncate_at, Some(("/x/log.01".into(), 123)));
        let Command::Repair { truncate_at, .. } =
            parse("pk", &args(&["repair", "--truncate-at=log.1:16", "d"])).unwrap()
        else {
            panic!()
        };
        assert_eq!(truncate_at, Some(("log.1".into(), 16)));
        assert!(matches!(
            parse("pk", &args(&["repair", "d"])),
            Ok(Command::Repair {
                truncate_at: None,
                ..
            })
        ));
        assert!(parse("pk", &args(&["repair"])).is_err());
        assert!(parse("pk", &args(&["repair", "d", "--truncate-at", "f"])).is_err());
        assert!(parse("pk", &args(&["repair", "d", "--bogus"])).is_err());
        let Command::Print(help) = parse("pk", &args(&["--help"])).unwrap() else {
            panic!()
        };
        assert!(help.contains("repair DATADIR [--data-log-dir DIR] [--truncate-at FILE:OFFSET]"));
        let Command::Repair { settings, .. } =
            parse("pk", &args(&["repair", "d", "--data-log-dir", "l"])).unwrap()
        else {
            panic!()
        };
        assert_eq!(settings.data_log_dir.as_deref(), Some("l"));
    }
}
