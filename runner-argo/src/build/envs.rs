//! `INGESTION_EXTRA_ENVS` (alias `ARGO_EXTRA_ENVS`): `[k1:v1,k2:v2]`.
//!
//! Grammar (docs/argo.md has the table):
//! - optional surrounding `[` `]`; entries separated by `,`; empty entries are skipped;
//! - an entry is `key:value`, split at the FIRST unquoted `:` (so `URL:http://h:8080` works);
//! - a key or value may be double-quoted: inside quotes `,` `:` `]` are literal and `\"`, `\\`
//!   are escapes; outside quotes a backslash escapes the next character (`\,` `\:` `\]` `\\`);
//! - unquoted keys and values are trimmed;
//! - keys must be valid environment variable names and must not be one of the runner's own
//!   (`config`, `pipelineType`, `pipelineRunId`, `ingestionPipelineFQN`, `pipelineStatus`).

use super::BuildError;

/// Env var names the runner sets itself; never taken from configuration.
pub const RESERVED_ENV: &[&str] = &[
    "config",
    "pipelineType",
    "pipelineRunId",
    "ingestionPipelineFQN",
    "pipelineStatus",
];

pub fn parse_extra_envs(input: &str) -> Result<Vec<(String, String)>, BuildError> {
    let err = |m: String| {
        BuildError::Config(format!(
            "INGESTION_EXTRA_ENVS: {m} (format: [key1:value1,key2:value2])"
        ))
    };
    let mut s = input.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let opened = s.starts_with('[');
    if opened {
        // The closing bracket is the last character, unless it is escaped or inside quotes:
        // the tokenizer below treats a trailing unquoted, unescaped `]` as the end.
        s = &s[1..];
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut closed = false;
    while i < chars.len() && !closed {
        // key
        let (key, key_quoted, ni, stop) = token(&chars, i, true).map_err(err)?;
        i = ni;
        match stop {
            Stop::Colon => {}
            Stop::Comma | Stop::End | Stop::Close => {
                if key.trim().is_empty() && !key_quoted {
                    if stop == Stop::Close {
                        closed = true;
                    }
                    continue; // empty entry
                }
                return Err(err(format!(
                    "entry {key:?} has no ':' between key and value"
                )));
            }
        }
        let (value, _, ni, stop) = token(&chars, i, false).map_err(err)?;
        i = ni;
        if stop == Stop::Close {
            closed = true;
        }
        let key = if key_quoted {
            key
        } else {
            key.trim().to_owned()
        };
        if !valid_env_name(&key) {
            return Err(err(format!(
                "{key:?} is not a valid environment variable name"
            )));
        }
        if RESERVED_ENV.contains(&key.as_str()) {
            return Err(err(format!(
                "{key:?} is set by the runner itself and cannot be overridden"
            )));
        }
        out.push((key, value));
    }
    if opened && !closed {
        return Err(err("missing the closing ']'".into()));
    }
    if closed && i < chars.len() && !chars[i..].iter().all(|c| c.is_whitespace()) {
        return Err(err("text after the closing ']'".into()));
    }
    Ok(out)
}

/// The inverse of [`parse_extra_envs`]: `[` `"key":"value"` entries `]`, every key and value
/// double-quoted with `"` and `\` escaped, so any value (commas, colons, brackets, quotes,
/// surrounding spaces, newlines) comes back unchanged. Keys are written as they are: only
/// [`parse_extra_envs`] judges them.
pub fn encode_extra_envs(envs: &[(String, String)]) -> String {
    fn quoted(out: &mut String, s: &str) {
        out.push('"');
        for ch in s.chars() {
            if matches!(ch, '"' | '\\') {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    }
    let mut out = String::from("[");
    for (i, (k, v)) in envs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quoted(&mut out, k);
        out.push(':');
        quoted(&mut out, v);
    }
    out.push(']');
    out
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Stop {
    Colon,
    Comma,
    Close,
    End,
}

/// Read one key (stops at `:`) or value (does not stop at `:`) from `i`.
/// Returns (text, was_quoted, next index, what stopped it).
fn token(c: &[char], mut i: usize, is_key: bool) -> Result<(String, bool, usize, Stop), String> {
    let mut out = String::new();
    // skip leading whitespace
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    if i < c.len() && c[i] == '"' {
        i += 1;
        loop {
            match c.get(i) {
                None => return Err("unterminated quoted string".into()),
                Some('"') => {
                    i += 1;
                    break;
                }
                Some('\\') => {
                    match c.get(i + 1) {
                        Some(ch) => out.push(*ch),
                        None => return Err("backslash at the end".into()),
                    }
                    i += 2;
                }
                Some(ch) => {
                    out.push(*ch);
                    i += 1;
                }
            }
        }
        while i < c.len() && c[i].is_whitespace() {
            i += 1;
        }
        return match c.get(i) {
            None => Ok((out, true, i, Stop::End)),
            Some(':') if is_key => Ok((out, true, i + 1, Stop::Colon)),
            Some(',') => Ok((out, true, i + 1, Stop::Comma)),
            Some(']') if is_last_close(c, i) => Ok((out, true, i + 1, Stop::Close)),
            Some(ch) => Err(format!("unexpected {ch:?} after a quoted string")),
        };
    }
    while i < c.len() {
        match c[i] {
            '\\' => {
                match c.get(i + 1) {
                    Some(ch) => out.push(*ch),
                    None => return Err("backslash at the end".into()),
                }
                i += 2;
            }
            ':' if is_key => return Ok((out.trim().to_owned(), false, i + 1, Stop::Colon)),
            ',' => return Ok((out.trim().to_owned(), false, i + 1, Stop::Comma)),
            ']' if is_last_close(c, i) => {
                return Ok((out.trim().to_owned(), false, i + 1, Stop::Close));
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    Ok((out.trim().to_owned(), false, i, Stop::End))
}

fn is_last_close(c: &[char], i: usize) -> bool {
    c[i + 1..].iter().all(|ch| ch.is_whitespace())
}

pub(crate) fn valid_env_name(k: &str) -> bool {
    let mut it = k.chars();
    matches!(it.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == '.' || ch == '-')
        && it.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse_extra_envs(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn plain_forms() {
        assert_eq!(p(""), vec![]);
        assert_eq!(p("[]"), vec![]);
        assert_eq!(p("[k1:v1,k2:v2]"), kv(&[("k1", "v1"), ("k2", "v2")]));
        assert_eq!(p("k1:v1"), kv(&[("k1", "v1")]));
        assert_eq!(p("[ A : b , C:d ]"), kv(&[("A", "b"), ("C", "d")]));
        assert_eq!(p("[A:,B:x]"), kv(&[("A", ""), ("B", "x")]));
        assert_eq!(p("[A:x,,]"), kv(&[("A", "x")]));
    }

    #[test]
    fn colons_in_values_need_no_quoting() {
        assert_eq!(
            p("[URL:http://h:8080/x,T:12:30]"),
            kv(&[("URL", "http://h:8080/x"), ("T", "12:30")])
        );
    }

    #[test]
    fn quoting_of_comma_colon_bracket() {
        assert_eq!(
            p(r#"[A:"x,y",B:"p:q]",C:"say \"hi\" \\ ok"]"#),
            kv(&[("A", "x,y"), ("B", "p:q]"), ("C", r#"say "hi" \ ok"#)])
        );
        assert_eq!(p(r"[A:x\,y,B:z\]]"), kv(&[("A", "x,y"), ("B", "z]")]));
        // an unquoted `]` that is not the last character is literal
        assert_eq!(p("[A:a]b,B:c]"), kv(&[("A", "a]b"), ("B", "c")]));
        assert_eq!(p(r#"["my.key":v]"#), kv(&[("my.key", "v")]));
    }

    #[test]
    fn encoding_round_trips() {
        let envs = kv(&[
            ("A", "x,y"),
            ("B", " p:q] "),
            ("C", r#"say "hi" \ ok"#),
            ("my.key", ""),
            ("D", "line\nbreak"),
        ]);
        let text = encode_extra_envs(&envs);
        assert_eq!(p(&text), envs, "{text}");
        assert_eq!(encode_extra_envs(&[]), "[]");
        assert_eq!(p(&encode_extra_envs(&[])), vec![]);
    }

    #[test]
    fn errors_are_clear() {
        for bad in [
            "[novalue]",
            r#"[A:"open]"#,
            "[1A:x]",
            "[config:x]",
            "[A:b\\]",
            r#"[A:"x"y]"#,
        ] {
            let e = parse_extra_envs(bad).unwrap_err().to_string();
            assert!(e.contains("INGESTION_EXTRA_ENVS"), "{bad}: {e}");
        }
        assert!(
            parse_extra_envs("[pipelineRunId:x]")
                .unwrap_err()
                .to_string()
                .contains("set by the runner")
        );
    }
}
