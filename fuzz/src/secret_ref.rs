//! Target `secret_ref`: arbitrary text as a `secret:` reference and as a YAML workflow config.
//!
//! - `SecretRef::parse` never panics;
//! - a parsed reference displays as the text it was parsed from, and that text parses to an equal
//!   reference; rebuilding `secret:<id>[?version=<v>]` from its parts gives it back too;
//! - the id obeys the grammar: non-empty, at most `MAX_ID_LEN` bytes, no whitespace, control
//!   character or `?`, no empty, `.` or `..` segment, no trailing `/`;
//! - the JSON-key split rejoins to the id, and its parent is itself a valid reference (the
//!   resolver looks it up);
//! - `find_references_yaml` never panics, and every reference it reports sits at its pointer in
//!   the parsed document, as the very string parsed.

use runner_secrets::reference::MAX_ID_LEN;
use runner_secrets::{SecretRef, find_references, parse_yaml};
use serde_json::Value;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_reference(text);
    // Also as a reference with the prefix the fuzzer would otherwise have to find first.
    check_reference(&format!("secret:{text}"));
    check_document(text);
}

fn check_reference(text: &str) {
    let Ok(r) = SecretRef::parse(text) else {
        return;
    };
    assert_eq!(r.to_string(), text, "display differs from the parsed text");
    assert_eq!(r.as_str(), text);
    let again = SecretRef::parse(&r.to_string()).expect("a displayed reference parses");
    assert_eq!(again, r, "display does not parse to the same reference");
    let rebuilt = match r.version() {
        Some(v) => format!("secret:{}?version={v}", r.id()),
        None => format!("secret:{}", r.id()),
    };
    let rebuilt = SecretRef::parse(&rebuilt).expect("a reference rebuilt from its parts parses");
    assert_eq!((rebuilt.id(), rebuilt.version()), (r.id(), r.version()));

    let id = r.id();
    assert!(!id.trim_start_matches('/').is_empty(), "empty id");
    assert!(id.len() <= MAX_ID_LEN, "id over {MAX_ID_LEN} bytes");
    assert!(
        !id.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?'),
        "id {id:?} holds whitespace, a control character or `?`"
    );
    assert!(!id.ends_with('/'), "id ends with `/`");
    assert!(
        !id.split('/')
            .skip(usize::from(id.starts_with('/')))
            .any(|s| s.is_empty() || s == "." || s == ".."),
        "id {id:?} has an empty, `.` or `..` segment"
    );
    if let Some(v) = r.version() {
        assert!(
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "version {v:?} outside the grammar"
        );
    }
    if let Some((parent, key)) = r.key_split() {
        assert_eq!(format!("{parent}/{key}"), id, "key split does not rejoin");
        assert!(!key.is_empty() && !key.contains('/'), "key {key:?}");
        let p = SecretRef::parse(&format!("secret:{parent}"))
            .unwrap_or_else(|e| panic!("parent {parent:?} of {text:?} is not a reference: {e}"));
        assert_eq!(p.id(), parent);
    }
}

fn check_document(text: &str) {
    // The YAML parser is the slow part; long inputs add nothing the short ones do not cover.
    if text.len() > 4096 {
        return;
    }
    let Ok(doc) = parse_yaml(text) else {
        return;
    };
    let Ok(found) = find_references(&doc) else {
        return;
    };
    for f in found {
        let at = doc
            .pointer(&f.pointer)
            .unwrap_or_else(|| panic!("pointer {:?} is not in the document", f.pointer));
        assert_eq!(
            at,
            &Value::String(f.reference.as_str().to_owned()),
            "the value at {:?} is not the reference",
            f.pointer
        );
    }
}
