//! Leak scanning: does a piece of output (a frame sent upstream, a log, an object put into a
//! cluster) hold one of a set of secret values, in any of the encodings a careless line of
//! code would produce?
//!
//! [`Masker`](crate::Masker) redacts values from text the runner sends; this module is its
//! auditor, used by tests: it reports every hit instead of rewriting text, and it looks for
//! more forms than the masker redacts.
//!
//! For each value of at least [`MIN_SECRET_LEN`] bytes, a hit is any of:
//!
//! | form | example for `p@ss w/rd` |
//! | --- | --- |
//! | raw bytes | `p@ss w/rd` |
//! | each line of a multi-line value (lines of at least [`MIN_SECRET_LEN`] bytes) | |
//! | JSON-escaped (as `serde_json` writes it, with `\/`, and ASCII-only `\uXXXX` as Python's `json.dumps` writes it) | `p@ss w\/rd` |
//! | URL-encoded, `%20` or `+` for spaces, upper- or lower-case hex | `p%40ss+w%2Frd` |
//! | hex, lower- or upper-case | `704073...` |
//! | base64, standard and URL-safe alphabets, with or without padding | `cEBzcyB3L3Jk` |
//! | base64 of a larger blob holding the value, at any of the three byte alignments | `Basic dXNlcjpwQHNzIHcvcmQ=` |
//! | any of the above inside a base64 run of the haystack, decoded (twice at most) | |
//!
//! The three alignments: in the base64 of `prefix ++ value ++ suffix`, the characters that
//! depend only on the value's bits are fixed by `len(prefix) mod 3`. For each alignment the
//! scanner searches for that stable core (both alphabets), so `user:password` encoded for a
//! `Basic` header is found from `password` alone.
//!
//! Base64 runs (`[A-Za-z0-9+/_-]`, at least [`MIN_BASE64_RUN`] characters; `=` ends a run) are
//! decoded at each of the four character offsets, leniently, and the decoded bytes are scanned
//! again, up to [`MAX_DECODE_DEPTH`] levels: this finds, for example, the base64 of a JSON text
//! that holds the value JSON-escaped.
//!
//! Values shorter than [`MIN_SECRET_LEN`] bytes are skipped (listed by
//! [`LeakScanner::skipped`]): ports, booleans and short user names occur in ordinary text, and
//! their encodings are short enough to occur by chance inside unrelated base64.
//!
//! Not covered: other encodings (gzip, encryption, base32, `\xNN` escapes, HTML entities), a
//! value cut into pieces, and case changes other than hex digits.

use std::fmt;
use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD, URL_SAFE_NO_PAD,
};
use base64::engine::{DecodePaddingMode, GeneralPurpose as Gp};

/// Values shorter than this (in bytes) are not scanned for.
pub const MIN_SECRET_LEN: usize = 8;

/// Shortest run of base64 characters that is decoded and scanned again (the base64 of
/// [`MIN_SECRET_LEN`] bytes is 11 characters long without padding).
pub const MIN_BASE64_RUN: usize = 11;

/// How many times nested base64 is decoded.
pub const MAX_DECODE_DEPTH: usize = 2;

/// A form of a value the scanner looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// The value's bytes.
    Raw,
    /// One line (of at least [`MIN_SECRET_LEN`] bytes) of a multi-line value.
    Line,
    /// JSON string escaping, as `serde_json` writes it.
    Json,
    /// JSON string escaping with `/` written `\/`.
    JsonSlash,
    /// JSON string escaping with every non-ASCII character written `\uXXXX`.
    JsonAscii,
    /// Percent-encoding, `%20` for spaces, upper-case hex.
    UrlPercent,
    /// Percent-encoding, `+` for spaces (forms), upper-case hex.
    UrlPlus,
    /// Percent-encoding, `%20` for spaces, lower-case hex.
    UrlPercentLower,
    /// Percent-encoding, `+` for spaces, lower-case hex.
    UrlPlusLower,
    /// Hex, lower-case.
    HexLower,
    /// Hex, upper-case.
    HexUpper,
    /// Base64, standard alphabet (padded or not: the unpadded form is a prefix of the padded).
    Base64,
    /// Base64, URL-safe alphabet (padded or not).
    Base64Url,
    /// The stable core of the value inside the standard base64 of a larger blob, the value
    /// starting at byte `offset mod 3 == alignment` of the blob.
    Base64Embedded { alignment: u8 },
    /// Same, URL-safe alphabet.
    Base64UrlEmbedded { alignment: u8 },
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Raw => f.write_str("raw"),
            Encoding::Line => f.write_str("one line of the value"),
            Encoding::Json => f.write_str("JSON-escaped"),
            Encoding::JsonSlash => f.write_str("JSON-escaped with \\/"),
            Encoding::JsonAscii => f.write_str("JSON-escaped, ASCII only (\\uXXXX)"),
            Encoding::UrlPercent => f.write_str("URL-encoded (%20, upper-case hex)"),
            Encoding::UrlPlus => f.write_str("URL-encoded (+, upper-case hex)"),
            Encoding::UrlPercentLower => f.write_str("URL-encoded (%20, lower-case hex)"),
            Encoding::UrlPlusLower => f.write_str("URL-encoded (+, lower-case hex)"),
            Encoding::HexLower => f.write_str("hex (lower-case)"),
            Encoding::HexUpper => f.write_str("hex (upper-case)"),
            Encoding::Base64 => f.write_str("base64"),
            Encoding::Base64Url => f.write_str("base64 (URL-safe)"),
            Encoding::Base64Embedded { alignment } => {
                write!(f, "base64 of a larger blob (offset mod 3 = {alignment})")
            }
            Encoding::Base64UrlEmbedded { alignment } => write!(
                f,
                "URL-safe base64 of a larger blob (offset mod 3 = {alignment})"
            ),
        }
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Index of the value (in the order given to [`LeakScanner::new`]).
    pub value: usize,
    pub encoding: Encoding,
    /// Bytes of the haystack that hold it. For a hit inside decoded base64, the base64 run.
    pub span: Range<usize>,
    /// 0 for a hit in the haystack itself; n for a hit found after decoding base64 n times.
    pub decoded: usize,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "value #{} as {} at bytes {}..{}",
            self.value, self.encoding, self.span.start, self.span.end
        )?;
        if self.decoded > 0 {
            write!(f, " (inside base64 decoded {} time(s))", self.decoded)?;
        }
        Ok(())
    }
}

/// The hits in one haystack, for a test failure message. Its `Display` shows each hit with
/// some context, the hit itself replaced by `<value #i>`: the report does not repeat the value.
#[derive(Debug, Clone)]
pub struct LeakReport {
    pub what: String,
    pub leaks: Vec<Leak>,
    contexts: Vec<String>,
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} holds a secret value ({} hit(s)):",
            self.what,
            self.leaks.len()
        )?;
        for (l, c) in self.leaks.iter().zip(&self.contexts) {
            writeln!(f, "  - {l}: ...{c}...")?;
        }
        Ok(())
    }
}

impl std::error::Error for LeakReport {}

struct Needle {
    value: usize,
    encoding: Encoding,
}

/// Scans haystacks for a set of values and their encodings. Build once, scan many.
pub struct LeakScanner {
    ac: Option<AhoCorasick>,
    needles: Vec<Needle>,
    skipped: Vec<usize>,
    scanned: usize,
}

impl fmt::Debug for LeakScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakScanner")
            .field("values", &self.scanned)
            .field("patterns", &self.needles.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn percent_encode(s: &[u8], space_plus: bool, lower: bool) -> Vec<u8> {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
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
    out.into_bytes()
}

fn hex(s: &[u8], lower: bool) -> Vec<u8> {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s {
        if lower {
            out.push_str(&format!("{b:02x}"));
        } else {
            out.push_str(&format!("{b:02X}"));
        }
    }
    out.into_bytes()
}

fn json_inner(s: &str) -> String {
    let j = serde_json::to_string(s).unwrap_or_default();
    j.get(1..j.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
}

fn json_ascii(s: &str) -> String {
    let mut out = String::new();
    for c in json_inner(s).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// The base64 characters of `prefix(alignment) ++ value` that depend on the value's bits only.
fn embedded_core(value: &[u8], alignment: usize) -> Vec<u8> {
    let mut blob = vec![0u8; alignment];
    blob.extend_from_slice(value);
    blob.extend_from_slice(&[0, 0]);
    let enc = STANDARD_NO_PAD.encode(&blob);
    let start_bit = 8 * alignment;
    let end_bit = 8 * (alignment + value.len());
    let first = start_bit.div_ceil(6);
    let last = end_bit / 6; // exclusive
    enc.as_bytes()
        .get(first..last)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn to_url_alphabet(b64: &[u8]) -> Vec<u8> {
    b64.iter()
        .map(|&c| match c {
            b'+' => b'-',
            b'/' => b'_',
            c => c,
        })
        .collect()
}

/// Every searched form of one value, most specific first.
fn forms(value: &[u8]) -> Vec<(Encoding, Vec<u8>)> {
    let mut out = vec![(Encoding::Raw, value.to_vec())];
    if let Ok(s) = std::str::from_utf8(value) {
        if s.contains(['\n', '\r']) {
            for line in s.split(['\n', '\r']) {
                if line.len() >= MIN_SECRET_LEN {
                    out.push((Encoding::Line, line.as_bytes().to_vec()));
                }
            }
        }
        let json = json_inner(s);
        out.push((Encoding::JsonSlash, json.replace('/', "\\/").into_bytes()));
        out.push((Encoding::JsonAscii, json_ascii(s).into_bytes()));
        out.push((Encoding::Json, json.into_bytes()));
    }
    out.push((Encoding::UrlPercent, percent_encode(value, false, false)));
    out.push((Encoding::UrlPlus, percent_encode(value, true, false)));
    out.push((
        Encoding::UrlPercentLower,
        percent_encode(value, false, true),
    ));
    out.push((Encoding::UrlPlusLower, percent_encode(value, true, true)));
    out.push((Encoding::HexLower, hex(value, true)));
    out.push((Encoding::HexUpper, hex(value, false)));
    out.push((Encoding::Base64, STANDARD_NO_PAD.encode(value).into_bytes()));
    out.push((
        Encoding::Base64Url,
        URL_SAFE_NO_PAD.encode(value).into_bytes(),
    ));
    for alignment in 0..3u8 {
        let core = embedded_core(value, alignment.into());
        out.push((
            Encoding::Base64UrlEmbedded { alignment },
            to_url_alphabet(&core),
        ));
        out.push((Encoding::Base64Embedded { alignment }, core));
    }
    out
}

/// Lenient decoder: standard alphabet (the haystack's URL-safe characters are mapped to it),
/// any padding, trailing bits allowed.
const LENIENT: GeneralPurpose = Gp::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Maximal runs of base64 characters (at least [`MIN_BASE64_RUN`] long).
fn base64_runs(h: &[u8]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < h.len() {
        if !is_b64_char(h[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < h.len() && is_b64_char(h[i]) {
            i += 1;
        }
        if i - start >= MIN_BASE64_RUN {
            runs.push(start..i);
        }
    }
    runs
}

/// The run decoded starting at each of its four character offsets.
fn decodings(run: &[u8]) -> Vec<Vec<u8>> {
    let norm: Vec<u8> = run
        .iter()
        .map(|&c| match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        })
        .collect();
    let mut out = Vec::new();
    for shift in 0..4 {
        let Some(part) = norm.get(shift..) else {
            break;
        };
        let mut part = part;
        if part.len() % 4 == 1 {
            part = &part[..part.len() - 1];
        }
        if part.len() < MIN_BASE64_RUN - 3 {
            break;
        }
        if let Ok(bytes) = LENIENT.decode(part) {
            out.push(bytes);
        }
    }
    out
}

impl LeakScanner {
    /// A scanner for these values. Values shorter than [`MIN_SECRET_LEN`] bytes are skipped.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> LeakScanner {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut needles = Vec::new();
        let mut skipped = Vec::new();
        let mut scanned = 0;
        for (i, v) in values.into_iter().enumerate() {
            if v.len() < MIN_SECRET_LEN {
                skipped.push(i);
                continue;
            }
            scanned += 1;
            for (encoding, p) in forms(v) {
                if p.len() < MIN_SECRET_LEN.min(v.len()) || patterns.contains(&p) {
                    continue;
                }
                patterns.push(p);
                needles.push(Needle { value: i, encoding });
            }
        }
        let ac = (!patterns.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .ok()
            })
            .flatten();
        LeakScanner {
            ac,
            needles,
            skipped,
            scanned,
        }
    }

    /// A scanner for text values.
    pub fn from_strs<'a>(values: impl IntoIterator<Item = &'a str>) -> LeakScanner {
        Self::new(values.into_iter().map(str::as_bytes))
    }

    /// A scanner for resolved values.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = &'a crate::SecretValue>,
    ) -> LeakScanner {
        Self::new(values.into_iter().map(crate::SecretValue::expose_bytes))
    }

    /// Indexes of the values skipped for being shorter than [`MIN_SECRET_LEN`].
    pub fn skipped(&self) -> &[usize] {
        &self.skipped
    }

    /// Number of values scanned for.
    pub fn value_count(&self) -> usize {
        self.scanned
    }

    /// Number of byte patterns searched.
    pub fn pattern_count(&self) -> usize {
        self.needles.len()
    }

    /// Every hit in `haystack` (overlapping hits of different forms are all reported).
    pub fn scan(&self, haystack: impl AsRef<[u8]>) -> Vec<Leak> {
        let mut out = Vec::new();
        self.scan_into(haystack.as_ref(), None, 0, &mut out);
        out.sort_by_key(|l| (l.span.start, l.span.end, l.value, l.encoding, l.decoded));
        out.dedup();
        out
    }

    fn scan_into(&self, h: &[u8], outer: Option<&Range<usize>>, depth: usize, out: &mut Vec<Leak>) {
        let Some(ac) = &self.ac else {
            return;
        };
        for m in ac.find_overlapping_iter(h) {
            let n = &self.needles[m.pattern().as_usize()];
            out.push(Leak {
                value: n.value,
                encoding: n.encoding,
                span: outer.cloned().unwrap_or(m.start()..m.end()),
                decoded: depth,
            });
        }
        if depth >= MAX_DECODE_DEPTH {
            return;
        }
        for run in base64_runs(h) {
            let span = outer.cloned().unwrap_or(run.clone());
            for decoded in decodings(&h[run.clone()]) {
                self.scan_into(&decoded, Some(&span), depth + 1, out);
            }
        }
    }

    /// `Ok` when `haystack` holds no value; otherwise a report naming `what`.
    pub fn check(&self, what: &str, haystack: impl AsRef<[u8]>) -> Result<(), LeakReport> {
        let h = haystack.as_ref();
        let leaks = self.scan(h);
        if leaks.is_empty() {
            return Ok(());
        }
        let contexts = leaks
            .iter()
            .map(|l| {
                let before = &h[l.span.start.saturating_sub(40)..l.span.start];
                let after = &h[l.span.end..(l.span.end + 40).min(h.len())];
                format!(
                    "{}<value #{}>{}",
                    String::from_utf8_lossy(before),
                    l.value,
                    String::from_utf8_lossy(after)
                )
            })
            .collect();
        Err(LeakReport {
            what: what.to_owned(),
            leaks,
            contexts,
        })
    }

    /// Panics with the report when `haystack` holds a value (for tests).
    #[track_caller]
    pub fn assert_clean(&self, what: &str, haystack: impl AsRef<[u8]>) {
        if let Err(r) = self.check(what, haystack) {
            panic!("{r}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use proptest::prelude::*;

    const PW: &str = "p@ss w/rd\"é-Xq9";

    fn encodings_of(s: &LeakScanner, h: &[u8]) -> Vec<Encoding> {
        s.scan(h).into_iter().map(|l| l.encoding).collect()
    }

    #[test]
    fn finds_each_direct_form() {
        let s = LeakScanner::from_strs([PW]);
        let j = serde_json::to_string(PW).unwrap();
        let cases: Vec<(Vec<u8>, Encoding)> = vec![
            (format!("x {PW} y").into_bytes(), Encoding::Raw),
            (format!("{{\"pw\":{j}}}").into_bytes(), Encoding::Json),
            (j.replace('/', "\\/").into_bytes(), Encoding::JsonSlash),
            (br#""p@ss w/rd\"\u00e9-Xq9""#.to_vec(), Encoding::JsonAscii),
            (
                b"?pw=p%40ss%20w%2Frd%22%C3%A9-Xq9&".to_vec(),
                Encoding::UrlPercent,
            ),
            (b"pw=p%40ss+w%2Frd%22%C3%A9-Xq9".to_vec(), Encoding::UrlPlus),
            (
                b"pw=p%40ss%20w%2frd%22%c3%a9-Xq9".to_vec(),
                Encoding::UrlPercentLower,
            ),
            (
                b"pw=p%40ss+w%2frd%22%c3%a9-Xq9".to_vec(),
                Encoding::UrlPlusLower,
            ),
            (hex(PW.as_bytes(), true), Encoding::HexLower),
            (hex(PW.as_bytes(), false), Encoding::HexUpper),
            (STANDARD.encode(PW).into_bytes(), Encoding::Base64),
            (URL_SAFE.encode(PW).into_bytes(), Encoding::Base64Url),
        ];
        for (h, mut want) in cases {
            if want == Encoding::Base64Url && URL_SAFE.encode(PW) == STANDARD.encode(PW) {
                // Same text in both alphabets: reported once, as standard base64.
                want = Encoding::Base64;
            }
            let got = encodings_of(&s, &h);
            assert!(
                got.contains(&want),
                "{want} not found in {:?}: {got:?}",
                String::from_utf8_lossy(&h)
            );
        }
        assert!(s.scan(b"nothing to see here").is_empty());
        assert!(s.skipped().is_empty());
    }

    #[test]
    fn finds_the_value_inside_a_larger_base64_blob_at_every_alignment() {
        let s = LeakScanner::from_strs(["hunter2-hunter2"]);
        for prefix in ["", "u", "us", "user:", "alice:", "bob:"] {
            let blob = format!("{prefix}hunter2-hunter2@host");
            for enc in [STANDARD.encode(&blob), URL_SAFE_NO_PAD.encode(&blob)] {
                let line = format!("Authorization: Basic {enc}");
                // Found by the stable core itself, not only by decoding the run.
                assert!(
                    s.scan(line.as_bytes()).iter().any(|l| l.decoded == 0
                        && matches!(
                            l.encoding,
                            Encoding::Base64Embedded { .. }
                                | Encoding::Base64UrlEmbedded { .. }
                                | Encoding::Base64
                                | Encoding::Base64Url
                        )),
                    "{prefix:?}: not found in {line}"
                );
            }
        }
    }

    #[test]
    fn decodes_base64_runs_and_rescans_them() {
        let s = LeakScanner::from_strs(["Tr0ub4dor&3xyz"]);
        // The base64 of a JSON text holding the value escaped, then that base64 again.
        let inner = serde_json::json!({"k": "Tr0ub4dor&3xyz"}).to_string();
        let once = STANDARD.encode(format!(
            "{{\"config\":{}}}",
            serde_json::to_string(&inner).unwrap()
        ));
        let leaks = s.scan(format!("data: {once};").as_bytes());
        assert!(
            leaks.iter().any(|l| l.decoded == 0 || l.decoded == 1),
            "{leaks:?}"
        );
        let twice = STANDARD.encode(&once);
        let leaks = s.scan(format!("blob={twice}").as_bytes());
        assert!(!leaks.is_empty(), "double base64 not found");
        // A decoded hit points at the run in the haystack.
        let l = leaks.iter().find(|l| l.decoded > 0).expect("a decoded hit");
        assert_eq!(l.span.start, 5);
    }

    #[test]
    fn multi_line_values_are_found_line_by_line() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----";
        let s = LeakScanner::from_strs([key]);
        let got = encodings_of(&s, b"log: MIIEvQIBADANBgkq");
        assert!(got.contains(&Encoding::Line), "{got:?}");
    }

    #[test]
    fn short_values_are_skipped_and_listed() {
        let s = LeakScanner::from_strs(["5432", "true", "long-enough-value"]);
        assert_eq!(s.skipped(), &[0, 1]);
        assert_eq!(s.value_count(), 1);
        assert!(s.scan(b"port 5432 true").is_empty());
        assert_eq!(s.scan(b"long-enough-value")[0].value, 2);
    }

    #[test]
    fn binary_values_are_found_in_their_encodings() {
        let v: Vec<u8> = (0u8..16).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        let s = LeakScanner::new([v.as_slice()]);
        assert!(!s.scan(STANDARD.encode(&v)).is_empty());
        assert!(!s.scan(hex(&v, true)).is_empty());
    }

    #[test]
    fn the_report_names_the_hit_without_repeating_the_value() {
        let s = LeakScanner::from_strs(["S3cr3t-P@ss-9Xq!"]);
        let r = s
            .check("frame 3", "{\"password\":\"S3cr3t-P@ss-9Xq!\"}")
            .unwrap_err();
        let text = r.to_string();
        assert!(
            text.contains("frame 3") && text.contains("value #0 as raw"),
            "{text}"
        );
        assert!(text.contains("<value #0>"), "{text}");
        assert!(!text.contains("S3cr3t"), "{text}");
        assert!(s.check("clean", "{\"password\":\"***\"}").is_ok());
    }

    /// The forms of a value a test embeds.
    fn embed(v: &str, form: usize, pre: &[u8], post: &[u8]) -> (Vec<u8>, &'static str) {
        let b = v.as_bytes();
        let mut blob = pre.to_vec();
        blob.extend_from_slice(b);
        blob.extend_from_slice(post);
        match form {
            0 => (b.to_vec(), "raw"),
            1 => (json_inner(v).into_bytes(), "json"),
            2 => (json_inner(v).replace('/', "\\/").into_bytes(), "json slash"),
            3 => (json_ascii(v).into_bytes(), "json ascii"),
            4 => (percent_encode(b, false, false), "url %20"),
            5 => (percent_encode(b, true, true), "url + lower"),
            6 => (hex(b, true), "hex"),
            7 => (hex(b, false), "HEX"),
            8 => (STANDARD.encode(b).into_bytes(), "base64"),
            9 => (STANDARD_NO_PAD.encode(b).into_bytes(), "base64 no pad"),
            10 => (URL_SAFE.encode(b).into_bytes(), "base64url"),
            11 => (URL_SAFE_NO_PAD.encode(b).into_bytes(), "base64url no pad"),
            12 => (STANDARD.encode(&blob).into_bytes(), "inside base64 blob"),
            13 => (
                URL_SAFE_NO_PAD.encode(&blob).into_bytes(),
                "inside base64url blob",
            ),
            14 => (
                STANDARD
                    .encode(format!("{{\"v\":{}}}", serde_json::to_string(v).unwrap()))
                    .into_bytes(),
                "base64 of JSON",
            ),
            _ => (
                STANDARD.encode(STANDARD.encode(&blob)).into_bytes(),
                "double base64",
            ),
        }
    }

    const FORMS: usize = 16;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every form of a random value, embedded in random text, is found.
        #[test]
        fn every_encoding_of_a_value_in_random_text_is_found(
            value in "[ -~\u{e9}\u{4e2d}\u{1f600}\n]{8,24}",
            pre_text in "\\PC{0,40}",
            post_text in "\\PC{0,40}",
            blob_pre in proptest::collection::vec(any::<u8>(), 0..7),
            blob_post in proptest::collection::vec(any::<u8>(), 0..7),
            form in 0..FORMS,
        ) {
            prop_assume!(value.len() >= MIN_SECRET_LEN);
            let s = LeakScanner::from_strs([value.as_str()]);
            let (enc, name) = embed(&value, form, &blob_pre, &blob_post);
            let mut h = pre_text.into_bytes();
            h.extend_from_slice(&enc);
            h.extend_from_slice(post_text.as_bytes());
            let leaks = s.scan(&h);
            prop_assert!(
                leaks.iter().any(|l| l.value == 0),
                "{} of {:?} not found in {:?}", name, value, String::from_utf8_lossy(&h)
            );
        }

        /// Text holding every form of another random value yields no hit.
        #[test]
        fn unrelated_text_yields_no_hit(
            value in "[ -~]{8,24}",
            other in "[ -~]{8,24}",
            text in proptest::collection::vec(("\\PC{0,20}", 0..FORMS), 0..6),
            blob_pre in proptest::collection::vec(any::<u8>(), 0..7),
        ) {
            prop_assume!(value != other && !other.contains(&value));
            let s = LeakScanner::from_strs([value.as_str()]);
            let mut h = Vec::new();
            for (junk, form) in &text {
                h.extend_from_slice(junk.as_bytes());
                h.extend_from_slice(&embed(&other, *form, &blob_pre, &[]).0);
            }
            let leaks = s.scan(&h);
            prop_assert!(leaks.is_empty(), "hits for {:?} in {:?}: {:?}", value, String::from_utf8_lossy(&h), leaks);
        }
    }
}
