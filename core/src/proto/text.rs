//! The seed's text protocol: one command per line, one reply line each.
//!
//! ```text
//! CREATE:/p[:data]    ECREATE:/p[:data]  (ephemeral)
//! SCREATE:/p[:data]   ESCREATE:/p[:data] (sequential; reply true:<path>)
//! DELETE:/p           EXISTS:/p          GET:/p        SET:/p:data
//! CHILDREN:/p         (creation order, comma-separated)
//! WATCH:/p            (one-shot; later a line EVENT:<type>:<path>)
//! STAT:/p             SYNC:/p            HELP
//! ```
//!
//! Replies: `true`, `true:<payload>` or `false:<reason>`, where the reason is
//! ZooKeeper's error name (`false:NoNode`). The greeting is `true:Connected`.

/// A parsed text command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create a node.
    Create {
        /// Path.
        path: String,
        /// Data (may be empty).
        data: Vec<u8>,
        /// Ephemeral: gone when the connection closes.
        ephemeral: bool,
        /// Sequential: a counter suffix is appended.
        sequential: bool,
    },
    /// Delete a node (any version).
    Delete(String),
    /// Does the node exist?
    Exists(String),
    /// Read a node's data.
    Get(String),
    /// Replace a node's data (any version).
    Set(String, Vec<u8>),
    /// List children in creation order.
    Children(String),
    /// Leave a one-shot watch on the node and its children.
    Watch(String),
    /// The node's Stat.
    Stat(String),
    /// Wait for earlier writes.
    Sync(String),
    /// List the commands.
    Help,
}

impl Command {
    /// Whether the command changes the tree (and so goes through the log).
    pub fn is_write(&self) -> bool {
        matches!(self, Self::Create { .. } | Self::Delete(_) | Self::Set(..))
    }
}

/// The help text (one line).
pub const HELP: &str = "true:commands CREATE:/p[:data] ECREATE:/p[:data] SCREATE:/p[:data] ESCREATE:/p[:data] DELETE:/p EXISTS:/p GET:/p SET:/p:data CHILDREN:/p WATCH:/p STAT:/p SYNC:/p HELP";

/// Parses one line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "BadEncoding")?;
    let line = line.trim();
    if line.eq_ignore_ascii_case("HELP") {
        return Ok(Command::Help);
    }
    let (cmd, rest) = line.split_once(':').ok_or("UnknownCommand")?;
    let cmd = cmd.to_ascii_uppercase();
    // Data follows the path after the next ':'.
    let (path, data) = match rest.split_once(':') {
        Some((p, d)) => (p.to_string(), Some(d.as_bytes().to_vec())),
        None => (rest.to_string(), None),
    };
    if path.is_empty() {
        return Err("BadArguments");
    }
    let create = |ephemeral, sequential| Command::Create {
        path: path.clone(),
        data: data.clone().unwrap_or_default(),
        ephemeral,
        sequential,
    };
    Ok(match cmd.as_str() {
        "CREATE" => create(false, false),
        "ECREATE" => create(true, false),
        "SCREATE" => create(false, true),
        "ESCREATE" => create(true, true),
        "DELETE" => Command::Delete(path),
        "EXISTS" => Command::Exists(path),
        "GET" => Command::Get(path),
        "SET" => Command::Set(path, data.unwrap_or_default()),
        "CHILDREN" => Command::Children(path),
        "WATCH" => Command::Watch(path),
        "STAT" => Command::Stat(path),
        "SYNC" => Command::Sync(path),
        _ => return Err("UnknownCommand"),
    })
}

/// Whether the first bytes of a connection look like the text protocol: a
/// command word in capitals.
pub fn looks_like_text(head: &[u8]) -> bool {
    head.first().is_some_and(u8::is_ascii_uppercase)
        && head.iter().all(|b| b.is_ascii_uppercase() || *b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_commands() {
        assert_eq!(
            parse(b"CREATE:/yolo"),
            Ok(Command::Create {
                path: "/yolo".into(),
                data: vec![],
                ephemeral: false,
                sequential: false
            })
        );
        assert_eq!(
            parse(b"SET:/a:hello:world\r"),
            Ok(Command::Set("/a".into(), b"hello:world".to_vec()))
        );
        assert_eq!(parse(b"children:/"), Ok(Command::Children("/".into())));
        assert_eq!(parse(b"HELP"), Ok(Command::Help));
        assert_eq!(parse(b"NOPE:/x"), Err("UnknownCommand"));
        assert_eq!(parse(b"GET:"), Err("BadArguments"));
        assert_eq!(parse(b"garbage"), Err("UnknownCommand"));
        assert_eq!(parse(&[0xff, b':']), Err("BadEncoding"));
        assert!(looks_like_text(b"CREA"));
        assert!(!looks_like_text(&[0, 0, 0, 45]));
    }
}
