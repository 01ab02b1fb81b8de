//! Target `extra_envs`: arbitrary text as `INGESTION_EXTRA_ENVS`.
//!
//! - `parse_extra_envs` never panics;
//! - what it accepts has valid, non-reserved names, and `encode_extra_envs` of it parses back to
//!   the same list;
//! - any list of values (taken from the input, one per line) under generated names survives
//!   encode -> parse unchanged; with names taken from the input too (`name=value` lines), a list
//!   either survives unchanged or is refused for a name, never for its values.

use runner_argo::build::envs::{RESERVED_ENV, encode_extra_envs, parse_extra_envs};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(envs) = parse_extra_envs(text) {
        for (k, _) in &envs {
            assert!(valid_name(k), "accepted the name {k:?}");
            assert!(
                !RESERVED_ENV.contains(&k.as_str()),
                "accepted reserved {k:?}"
            );
        }
        let encoded = encode_extra_envs(&envs);
        let again = parse_extra_envs(&encoded)
            .unwrap_or_else(|e| panic!("encoding {encoded:?} of {envs:?} does not parse: {e}"));
        assert_eq!(again, envs, "encoding {encoded:?} parses to another list");
    }

    let generated: Vec<(String, String)> = text
        .split('\n')
        .enumerate()
        .map(|(i, v)| (format!("K{i}"), v.to_owned()))
        .collect();
    let encoded = encode_extra_envs(&generated);
    let again = parse_extra_envs(&encoded)
        .unwrap_or_else(|e| panic!("encoding {encoded:?} does not parse: {e}"));
    assert_eq!(
        again, generated,
        "encoding {encoded:?} parses to another list"
    );

    let named: Vec<(String, String)> = text
        .split('\n')
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let encoded = encode_extra_envs(&named);
    match parse_extra_envs(&encoded) {
        Ok(again) => assert_eq!(again, named, "encoding {encoded:?} parses to another list"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                named
                    .iter()
                    .any(|(k, _)| !valid_name(k) || RESERVED_ENV.contains(&k.as_str())),
                "encoding {encoded:?} of valid names refused: {msg}"
            );
        }
    }
}

/// The documented rule for names (docs/argo.md): letters, digits, `_`, `.`, `-`, not starting
/// with a digit.
fn valid_name(k: &str) -> bool {
    let mut it = k.chars();
    matches!(it.next(), Some(c) if c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '-'))
        && it.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
