//! Flat JSON objects (string and number values only): written by `--json`
//! and read back by `report`. No nesting is ever needed, so none is
//! supported.

use std::fmt::Write as _;

/// A JSON value of a flat object.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A number (written with up to 3 decimals, integers without).
    Num(f64),
}

impl Value {
    /// The number, if this is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            Self::Num(n) => Some(*n),
            Self::Str(_) => None,
        }
    }

    /// The string, if this is one.
    pub fn str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Num(_) => None,
        }
    }
}

/// An ordered flat object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(pub Vec<(String, Value)>);

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a string field.
    pub fn str(&mut self, k: &str, v: impl Into<String>) -> &mut Self {
        self.set(k, Value::Str(v.into()))
    }

    /// Adds (or replaces) a number field.
    pub fn num(&mut self, k: &str, v: impl Into<f64>) -> &mut Self {
        self.set(k, Value::Num(v.into()))
    }

    /// Adds a field from text: a number when it parses as one (so
    /// `--label round=1` compares as a number), a string otherwise.
    pub fn label(&mut self, k: &str, v: &str) -> &mut Self {
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() => self.num(k, n),
            _ => self.str(k, v),
        }
    }

    fn set(&mut self, k: &str, v: Value) -> &mut Self {
        match self.0.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k.to_string(), v)),
        }
        self
    }

    /// The field named `k`.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    /// The string field `k` (empty when missing or not a string).
    pub fn get_str(&self, k: &str) -> &str {
        self.get(k).and_then(Value::str).unwrap_or("")
    }

    /// The number field `k` (NaN when missing or not a number).
    pub fn get_num(&self, k: &str) -> f64 {
        self.get(k).and_then(Value::num).unwrap_or(f64::NAN)
    }

    /// One line of JSON.
    pub fn to_line(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            quote(&mut s, k);
            s.push(':');
            match v {
                Value::Str(t) => quote(&mut s, t),
                Value::Num(n) if !n.is_finite() => s.push_str("null"),
                Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                    let _ = write!(s, "{}", *n as i64);
                }
                Value::Num(n) => {
                    let _ = write!(s, "{n:.3}");
                }
            }
        }
        s.push('}');
        s
    }

    /// Parses one flat object (`null` reads as NaN).
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut p = Parser {
            s: line.as_bytes(),
            i: 0,
        };
        let mut o = Self::new();
        p.ws();
        p.expect(b'{')?;
        p.ws();
        if p.peek() == Some(b'}') {
            return Ok(o);
        }
        loop {
            p.ws();
            let k = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let v = match p.peek() {
                Some(b'"') => Value::Str(p.string()?),
                Some(b'n') => {
                    p.word("null")?;
                    Value::Num(f64::NAN)
                }
                _ => Value::Num(p.number()?),
            };
            o.0.push((k, v));
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(o),
                _ => return Err(format!("expected , or }} at byte {}", p.i)),
            }
        }
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.next() {
            Some(x) if x == c => Ok(()),
            _ => Err(format!("expected {:?} at byte {}", c as char, self.i)),
        }
    }

    fn word(&mut self, w: &str) -> Result<(), String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(())
        } else {
            Err(format!("expected {w} at byte {}", self.i))
        }
    }

    fn number(&mut self) -> Result<f64, String> {
        let from = self.i;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[from..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("bad number at byte {from}"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                None => return Err("unterminated string".into()),
                Some(b'"') => break,
                Some(b'\\') => match self.next() {
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'u') => {
                        let hex = self
                            .s
                            .get(self.i..self.i + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .ok_or("bad \\u escape")?;
                        self.i += 4;
                        let c = char::from_u32(hex).unwrap_or('\u{fffd}');
                        out.extend_from_slice(c.to_string().as_bytes());
                    }
                    Some(c) => out.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut o = Object::new();
        o.str("server", "zoo\"keeper\\\n")
            .num("ops", 12345u32)
            .num("p50_us", 81.25)
            .num("nan", f64::NAN);
        let line = o.to_line();
        assert_eq!(
            line,
            r#"{"server":"zoo\"keeper\\\n","ops":12345,"p50_us":81.250,"nan":null}"#
        );
        let back = Object::parse(&line).unwrap();
        assert_eq!(back.get_str("server"), "zoo\"keeper\\\n");
        assert_eq!(back.get_num("ops"), 12345.0);
        assert_eq!(back.get_num("p50_us"), 81.25);
        assert!(back.get_num("nan").is_nan());
        assert!(Object::parse("{\"a\":}").is_err());
        assert_eq!(Object::parse(" { } ").unwrap(), Object::new());
    }
}
