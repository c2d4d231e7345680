//! The server side of SASL DIGEST-MD5 (RFC 2831) as Apache ZooKeeper runs it
//! with JAAS's `DigestLoginModule`: realm and server name `zk-sasl-md5`,
//! service `zookeeper`, qop `auth` only (no integrity or confidentiality
//! layer), one round: empty token → challenge → digest response → `rspauth`.
//!
//! Pure: the nonce is given by the caller; the passwords come from the
//! configuration (the runtime reads the JAAS file).

/// ZooKeeper's fixed realm and server name for DIGEST-MD5.
pub(crate) const REALM: &str = "zk-sasl-md5";
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// What one token leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this token and wait for the next.
    Continue(Vec<u8>),
    /// Authenticated as `authz`; send the final token.
    Done { token: Vec<u8>, authz: String },
    /// Authentication failed (the reason is for the log).
    Fail(String),
}

#[derive(Debug)]
enum State {
    Start,
    Challenged,
    Finished,
}

/// One connection's exchange.
#[derive(Debug)]
pub(crate) struct DigestServer {
    nonce: String,
    state: State,
}

impl DigestServer {
    /// A new exchange using `nonce` (random, base64; ZooKeeper's are 40
    /// characters).
    pub(crate) fn new(nonce: String) -> Self {
        Self {
            nonce,
            state: State::Start,
        }
    }

    /// Evaluates a client token. `password` looks a user up.
    pub(crate) fn step(&mut self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Step {
        match self.state {
            State::Start => {
                if !token.is_empty() {
                    self.state = State::Finished;
                    return Step::Fail("DIGEST-MD5 must not have an initial response".into());
                }
                self.state = State::Challenged;
                Step::Continue(
                    format!(
                        "realm=\"{REALM}\",nonce=\"{}\",charset=utf-8,algorithm=md5-sess",
                        self.nonce
                    )
                    .into_bytes(),
                )
            }
            State::Challenged => {
                self.state = State::Finished;
                self.verify(token, password)
            }
            State::Finished => Step::Fail("SASL authentication already complete".into()),
        }
    }

    fn verify(&self, token: &[u8], password: impl Fn(&str) -> Option<String>) -> Step {
        let Ok(text) = std::str::from_utf8(token) else {
            return Step::Fail("digest response is not UTF-8".into());
        };
        let Some(fields) = parse_directives(text) else {
            return Step::Fail("malformed digest response".into());
        };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(user), Some(nonce), Some(cnonce), Some(nc), Some(uri), Some(response)) = (
            get("username"),
            get("nonce"),
            get("cnonce"),
            get("nc"),
            get("digest-uri"),
            get("response"),
        ) else {
            return Step::Fail("digest response lacks a directive".into());
        };
        let realm = get("realm").unwrap_or("");
        let qop = get("qop").unwrap_or("auth");
        if nonce != self.nonce {
            return Step::Fail("nonce mismatch".into());
        }
        if qop != "auth" {
            return Step::Fail(format!("qop {qop} not offered"));
        }
        if nc != "00000001" {
            return Step::Fail(format!("unexpected nonce count {nc}"));
        }
        if uri != DIGEST_URI {
            return Step::Fail(format!("digest-uri {uri} is not {DIGEST_URI}"));
        }
        let Some(pw) = password(user) else {
            return Step::Fail(format!("no user {user:?}"));
        };
        let authzid = get("authzid");
        let kd = |a2: &str| {
            let mut a1 = md5::compute(
                [
                    latin1_or_utf8(user),
                    b":".to_vec(),
                    latin1_or_utf8(realm),
                    b":".to_vec(),
                    latin1_or_utf8(&pw),
                ]
                .concat(),
            )
            .0
            .to_vec();
            a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
            if let Some(z) = authzid {
                a1.extend_from_slice(format!(":{z}").as_bytes());
            }
            let ha1 = hex(&md5::compute(&a1).0);
            let ha2 = hex(&md5::compute(a2.as_bytes()).0);
            hex(&md5::compute(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")).0)
        };
        if kd(&format!("AUTHENTICATE:{uri}")) != response.to_ascii_lowercase() {
            return Step::Fail(format!("wrong password for {user:?}"));
        }
        Step::Done {
            token: format!("rspauth={}", kd(&format!(":{uri}"))).into_bytes(),
            authz: authzid.unwrap_or(user).to_string(),
        }
    }
}

/// RFC 2831 §7.2: with charset=utf-8, strings that fit ISO 8859-1 are hashed
/// in ISO 8859-1 (as Java's and Cyrus' implementations do).
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `name=value` or `name="quoted \" value"`, comma separated.
fn parse_directives(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            it.next();
        }
        it.next()?; // '='
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next()? {
                    '\\' => value.push(it.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                it.next();
            }
        }
        out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if out.len() > 64 {
            return None;
        }
    }
}

/// Reads the users of a JAAS configuration section (`Server` by default):
/// `user_NAME="PASSWORD"` options of its `DigestLoginModule`.
pub fn jaas_users(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    // Drop comments, then find `section {` ... `};`.
    let mut clean = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        clean.push_str(line);
        clean.push('\n');
    }
    // The section's name as a word of its own, followed by `{`.
    let start = clean.match_indices(section).find_map(|(i, _)| {
        let before_ok = clean[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == ';' || c == '}');
        let rest = clean[i + section.len()..].trim_start();
        (before_ok && rest.starts_with('{')).then(|| clean.len() - rest.len() + 1)
    })?;
    let end = clean[start..].find('}')? + start;
    let body = &clean[start..end];
    let mut users = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("user_") {
        rest = &rest[i + 5..];
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let value = if let Some(q) = after.strip_prefix('"') {
            let close = q.find('"')?;
            rest = &q[close + 1..];
            q[..close].to_string()
        } else {
            let stop = after
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(after.len());
            rest = &after[stop..];
            after[..stop].to_string()
        };
        users.push((name, value));
    }
    Some(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange recorded from Apache ZooKeeper 3.8 and pure-sasl, with
    /// user jaasuser / jaas_password.
    #[test]
    fn recorded_exchange_verifies() {
        let mut s = DigestServer::new("wEfspQl54rG82Q/J1Znzcc2PEVCkRMB/GCEDu9as".into());
        let pw = |u: &str| (u == "jaasuser").then(|| "jaas_password".to_string());
        let Step::Continue(ch) = s.step(b"", pw) else {
            panic!("challenge")
        };
        assert_eq!(
            String::from_utf8(ch).unwrap(),
            "realm=\"zk-sasl-md5\",nonce=\"wEfspQl54rG82Q/J1Znzcc2PEVCkRMB/GCEDu9as\",charset=utf-8,algorithm=md5-sess"
        );
        let resp = b"qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"wEfspQl54rG82Q/J1Znzcc2PEVCkRMB/GCEDu9as\",cnonce=\"4216064861743539\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response=a25ff610b24aa172055e69a663dd3356";
        assert_eq!(
            s.step(resp, pw),
            Step::Done {
                token: b"rspauth=4d993f6062d94bbace0086276931b0ef".to_vec(),
                authz: "jaasuser".into()
            }
        );
        assert!(matches!(s.step(b"", pw), Step::Fail(_)));
    }

    #[test]
    fn wrong_password_and_garbage_fail() {
        let pw = |_: &str| Some("other".to_string());
        let mut s = DigestServer::new("wEfspQl54rG82Q/J1Znzcc2PEVCkRMB/GCEDu9as".into());
        s.step(b"", pw);
        let resp = b"qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",nonce=\"wEfspQl54rG82Q/J1Znzcc2PEVCkRMB/GCEDu9as\",cnonce=\"4216064861743539\",nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response=a25ff610b24aa172055e69a663dd3356";
        assert!(matches!(s.step(resp, pw), Step::Fail(_)));
        for junk in [&b"\xff\xfe"[..], b"username=\"x", b"=,=,", b"a=b"] {
            let mut s = DigestServer::new("n".into());
            s.step(b"", pw);
            assert!(matches!(s.step(junk, pw), Step::Fail(_)), "{junk:?}");
        }
    }

    #[test]
    fn jaas_file_users() {
        let text = "// comment\nQuorumServer { user_q=\"no\"; };\nClient { x required; };\nServer {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_super=\"super_secret\"\n    user_jaasuser=\"jaas_password\";\n};\n";
        assert_eq!(
            jaas_users(text, "Server").unwrap(),
            vec![
                ("super".to_string(), "super_secret".to_string()),
                ("jaasuser".to_string(), "jaas_password".to_string())
            ]
        );
        assert!(jaas_users(text, "Nope").is_none());
    }
}
