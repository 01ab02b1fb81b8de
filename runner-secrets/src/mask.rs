//! Redaction of resolved values from text (log lines, error messages going upstream).
//!
//! For each value the masker redacts: the value itself; for multi-line values each line of at least
//! [`MIN_LINE_LEN`] characters; its JSON-escaped form; its base64 forms (standard with and without
//! padding, URL-safe without padding); its URL-encoded forms (`+` or `%20` for spaces, upper- and
//! lower-case hex). Overlapping and adjacent matches merge into one mask, and masking repeats until
//! no form of any value is left in the text, so a value cannot reappear across the boundary of a
//! mask.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::value::SecretValue;

/// Lines of a multi-line value shorter than this (in bytes) are not masked on their own (the whole
/// value still is): masking every `}` or `-----` line would destroy logs.
pub const MIN_LINE_LEN: usize = 4;

const TOKENS: [&str; 2] = ["***", "[MASKED]"];

/// The mask token: `***` unless a pattern occurs inside it, then `[MASKED]`, else three copies of
/// a character that no pattern contains. No pattern can then match inside a token, which is what
/// makes the masking loop terminate.
fn choose_token(patterns: &[String]) -> Cow<'static, str> {
    if let Some(t) = TOKENS
        .into_iter()
        .find(|t| !patterns.iter().any(|p| t.contains(p.as_str())))
    {
        return Cow::Borrowed(t);
    }
    let c = ['#', '~', '\u{2588}']
        .into_iter()
        .chain((0xE000u32..0xF900).filter_map(char::from_u32))
        .find(|c| !patterns.iter().any(|p| p.contains(*c)))
        .unwrap_or('\u{2588}');
    Cow::Owned(c.to_string().repeat(3))
}

/// Redacts a set of values (and their encoded forms) from text. Cheap to clone.
///
/// The matcher is built on first use, not at construction: a run whose output is never masked
/// (an Argo run reports no log lines through its masker) does not pay for it.
#[derive(Clone)]
pub struct Masker {
    matcher: Option<Arc<Matcher>>,
    token: Cow<'static, str>,
    patterns: usize,
}

/// The value forms, and the automaton over them once built (shared by clones).
struct Matcher {
    patterns: Vec<String>,
    ac: OnceLock<Option<AhoCorasick>>,
}

impl Matcher {
    fn get(&self) -> Option<&AhoCorasick> {
        self.ac
            .get_or_init(|| {
                // A contiguous NFA: build cost linear in the patterns (a DFA over long values
                // costs tens of milliseconds per run), search still fast.
                AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .build(&self.patterns)
                    .ok()
            })
            .as_ref()
    }
}

impl Default for Masker {
    fn default() -> Self {
        Self {
            matcher: None,
            token: Cow::Borrowed(TOKENS[0]),
            patterns: 0,
        }
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.patterns)
            .finish()
    }
}

fn percent_encode(s: &str, space_plus: bool, lower: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// All the forms of one value that are masked.
fn forms(value: &[u8], out: &mut Vec<String>) {
    if value.is_empty() {
        return;
    }
    out.push(STANDARD.encode(value));
    out.push(STANDARD_NO_PAD.encode(value));
    out.push(URL_SAFE_NO_PAD.encode(value));
    let Ok(s) = std::str::from_utf8(value) else {
        return;
    };
    out.push(s.to_owned());
    if s.contains('\n') || s.contains('\r') {
        for line in s.split(['\n', '\r']) {
            if line.len() >= MIN_LINE_LEN {
                out.push(line.to_owned());
            }
        }
    }
    if let Ok(json) = serde_json::to_string(s) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    // serde_json does not escape '/', but other encoders do.
    if s.contains('/')
        && let Ok(json) = serde_json::to_string(s)
    {
        out.push(json[1..json.len() - 1].replace('/', "\\/"));
    }
    for (plus, lower) in [(false, false), (true, false), (false, true), (true, true)] {
        out.push(percent_encode(s, plus, lower));
    }
}

impl Masker {
    /// A masker for these values.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretValue>) -> Self {
        Self::from_bytes(values.into_iter().map(SecretValue::expose_bytes))
    }

    /// A masker for raw values (bytes or text).
    pub fn from_bytes<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut patterns = Vec::new();
        for v in values {
            forms(v, &mut patterns);
        }
        patterns.retain(|p| !p.is_empty());
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Self::default();
        }
        let token = choose_token(&patterns);
        Self {
            patterns: patterns.len(),
            matcher: Some(Arc::new(Matcher {
                patterns,
                ac: OnceLock::new(),
            })),
            token,
        }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// The number of patterns (value forms) masked.
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Redact every masked form from `text`.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Some(ac) = self.matcher.as_deref().and_then(Matcher::get) else {
            return Cow::Borrowed(text);
        };
        if !ac.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut current = text.to_owned();
        // Bytes of `current` that belong to a mask token.
        let mut masked = vec![false; current.len()];
        // Each pass that finds a match masks at least one original byte (no pattern fits inside
        // a token), so this bound is never reached; it is a guard, not a rule.
        let mut passes_left = text.len() + 2;
        loop {
            if passes_left == 0 {
                return Cow::Owned(self.token.to_string());
            }
            passes_left -= 1;
            let mut any = false;
            for m in ac.find_overlapping_iter(&current) {
                any = true;
                for b in &mut masked[m.start()..m.end()] {
                    *b = true;
                }
            }
            if !any {
                return Cow::Owned(current);
            }
            // Rebuild: each run of masked bytes becomes one token.
            let mut next = String::with_capacity(current.len());
            let mut next_masked = Vec::with_capacity(current.len());
            let mut i = 0;
            let bytes = current.as_bytes();
            while i < bytes.len() {
                if masked[i] {
                    while i < bytes.len() && masked[i] {
                        i += 1;
                    }
                    next.push_str(&self.token);
                    next_masked.extend(std::iter::repeat_n(true, self.token.len()));
                } else {
                    let start = i;
                    while i < bytes.len() && !masked[i] {
                        i += 1;
                    }
                    // Runs start and end on char boundaries (matches and tokens do).
                    next.push_str(&current[start..i]);
                    next_masked.extend(std::iter::repeat_n(false, i - start));
                }
            }
            current = next;
            masked = next_masked;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker(values: &[&str]) -> Masker {
        Masker::from_bytes(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn masks_value_and_encoded_forms() {
        let m = masker(&["p@ss w/rd\"x"]);
        assert_eq!(m.mask("pw=p@ss w/rd\"x;"), "pw=***;");
        assert_eq!(m.mask(r#"{"pw":"p@ss w/rd\"x"}"#), r#"{"pw":"***"}"#);
        assert_eq!(m.mask("pw=p%40ss%20w%2Frd%22x&"), "pw=***&");
        assert_eq!(m.mask("pw=p%40ss+w%2Frd%22x&"), "pw=***&");
        let b64 = STANDARD.encode("p@ss w/rd\"x");
        assert_eq!(m.mask(&format!("Basic {b64}")), "Basic ***");
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn masks_multiline_line_by_line() {
        let key = "-----BEGIN KEY-----\nAAAABBBBCCCC\r\nDDDDEEEE\n}\n-----END KEY-----";
        let m = masker(&[key]);
        assert_eq!(m.mask("line: DDDDEEEE end"), "line: *** end");
        assert_eq!(m.mask("x AAAABBBBCCCC"), "x ***");
        // Short lines alone are not masked.
        assert_eq!(m.mask("{ }"), "{ }");
    }

    #[test]
    fn overlapping_values_merge_and_no_value_reappears() {
        let m = masker(&["zz", "**b"]);
        let out = m.mask("azzb");
        assert!(!out.contains("zz") && !out.contains("**b"), "{out}");
        let m = masker(&["*"]);
        let out = m.mask("a*b");
        assert!(!out.contains('*'), "{out}");
        assert_eq!(out, "a[MASKED]b");
    }

    #[test]
    fn token_falls_back_when_values_hit_both_tokens() {
        // `*` is inside `***` and `M` inside `[MASKED]`: masking must still terminate and redact.
        let m = masker(&["*", "M"]);
        let out = m.mask("a*bMc");
        assert!(!out.contains('*') && !out.contains('M'), "{out}");
        assert_eq!(out, "a###b###c");
        let m = masker(&["*", "M", "#", "~"]);
        let out = m.mask("*M#~ ok");
        assert!(!out.contains(['*', 'M', '#', '~']), "{out}");
        assert!(out.ends_with(" ok"), "{out}");
    }

    #[test]
    fn empty_masker_is_identity() {
        let m = Masker::default();
        assert!(m.is_empty());
        assert_eq!(m.mask("abc"), "abc");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// Values and text over a tiny alphabet that includes the mask tokens' characters:
        /// overlaps, values inside tokens, values across mask boundaries.
        #[test]
        fn masker_terminates_and_redacts_over_token_alphabet(
            values in proptest::collection::vec("[*MASKED#~ab\\[\\]]{1,4}", 1..5),
            text in "[*MASKED#~ab\\[\\] ]{0,40}",
        ) {
            let m = Masker::from_bytes(values.iter().map(|v| v.as_bytes()));
            let out = m.mask(&text);
            for v in &values {
                prop_assert!(!out.contains(v.as_str()), "value {:?} in {:?} (from {:?})", v, out, text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn masker_never_lets_a_value_through(
            values in proptest::collection::vec("\\PC{1,12}", 1..4),
            pieces in proptest::collection::vec(("\\PC{0,8}", 0usize..4, 0usize..5), 0..6),
        ) {
            let m = Masker::from_bytes(values.iter().map(|v| v.as_bytes()));
            let mut text = String::new();
            for (junk, which, form) in &pieces {
                text.push_str(junk);
                let v = &values[which % values.len()];
                match form {
                    0 => text.push_str(v),
                    1 => text.push_str(&STANDARD.encode(v)),
                    2 => { let j = serde_json::to_string(v).unwrap(); text.push_str(&j[1..j.len()-1]); }
                    3 => text.push_str(&percent_encode(v, false, false)),
                    _ => text.push_str(&percent_encode(v, true, true)),
                }
            }
            let out = m.mask(&text);
            for v in &values {
                prop_assert!(!out.contains(v.as_str()), "value {:?} in {:?}", v, out);
                let b64 = STANDARD.encode(v);
                prop_assert!(!out.contains(&b64), "b64 of {:?} in {:?}", v, out);
                let j = serde_json::to_string(v).unwrap();
                prop_assert!(!out.contains(&j[1..j.len()-1]), "json of {:?} in {:?}", v, out);
                prop_assert!(!out.contains(&percent_encode(v, false, false)));
                for line in v.split(['\n', '\r']).filter(|l| l.len() >= MIN_LINE_LEN) {
                    prop_assert!(!out.contains(line), "line {:?} in {:?}", line, out);
                }
            }
        }
    }
}
