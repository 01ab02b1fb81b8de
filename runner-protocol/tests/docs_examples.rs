//! Every example in `docs/protocol.md` is checked against the codec:
//!
//! - ```` ```json ```` blocks are frames: each must decode with [`decode`] and [`Limits::DEFAULT`],
//!   and encoding the decoded frame must give the block back (whitespace outside strings aside),
//!   so the examples show exactly what the encoder writes;
//! - ```` ```json-invalid ```` blocks are bad input: each must FAIL to decode;
//! - ```` ```json-fragment ```` blocks are not frames (an OpenMetadata log map, a
//!   PipelineServiceClientResponse...): each must parse as JSON.
//!
//! The test also checks that the document shows every message type, every request `op`, every
//! result kind and the error response shape, and that its ErrorCode table matches
//! [`ErrorCode::http_status`] and [`ErrorCode::is_retryable`].

use std::collections::BTreeSet;

use runner_protocol::{
    ErrorCode, Frame, Limits, Message, OpResult, Request, Response, decode, encode,
};
use serde_json::Value;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");

/// One fenced block of the document.
struct Block {
    info: String,
    /// 1-based line of the opening fence.
    line: usize,
    text: String,
}

fn read_doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// The fenced code blocks of a Markdown text. Panics on a fence that is never closed.
fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_owned(),
                        line: n + 1,
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed.trim_end() == "```" {
                    out.extend(open.take());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    if let Some(block) = open {
        panic!(
            "docs/protocol.md:{}: fenced block is never closed",
            block.line
        );
    }
    out
}

/// Removes whitespace outside JSON strings.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// What the frame examples of the document cover.
#[derive(Default)]
struct Coverage {
    frames: usize,
    invalid: usize,
    fragments: usize,
    types: BTreeSet<&'static str>,
    ops: BTreeSet<&'static str>,
    result_kinds: BTreeSet<&'static str>,
    error_responses: usize,
}

impl Coverage {
    fn record(&mut self, frame: &Frame) {
        self.frames += 1;
        self.types.insert(frame.message.type_name());
        match &frame.message {
            Message::Request(request) => {
                self.ops.insert(request.op());
            }
            Message::Response(Response::Result(result)) => {
                self.result_kinds.insert(match result {
                    OpResult::PipelineResponse(_) => "pipelineResponse",
                    OpResult::Statuses { .. } => "statuses",
                    OpResult::Logs(_) => "logs",
                    OpResult::HostIp { .. } => "hostIp",
                    OpResult::Pong {} => "pong",
                });
            }
            Message::Response(Response::Error(_)) => self.error_responses += 1,
            _ => {}
        }
    }
}

fn check_blocks(doc: &str) -> Coverage {
    let mut coverage = Coverage::default();
    let mut failures = Vec::new();
    for block in blocks(doc) {
        let at = format!("docs/protocol.md:{}", block.line);
        match block.info.as_str() {
            "json" => match decode(block.text.as_bytes(), &Limits::DEFAULT) {
                Ok(frame) => {
                    let encoded = encode(&frame);
                    if encoded != minify(&block.text) {
                        failures.push(format!(
                            "{at}: the example is not what the encoder writes for it;\n  encoder: {encoded}\n  example: {}",
                            minify(&block.text)
                        ));
                    }
                    coverage.record(&frame);
                }
                Err(e) => failures.push(format!("{at}: frame example does not decode: {e}")),
            },
            "json-invalid" => match decode(block.text.as_bytes(), &Limits::DEFAULT) {
                Ok(frame) => failures.push(format!(
                    "{at}: `json-invalid` example decodes, as a `{}` frame; fence it as `json` or make it invalid",
                    frame.message.type_name()
                )),
                Err(_) => coverage.invalid += 1,
            },
            "json-fragment" => match serde_json::from_str::<Value>(&block.text) {
                Ok(_) => coverage.fragments += 1,
                Err(e) => failures.push(format!("{at}: `json-fragment` is not JSON: {e}")),
            },
            other if other.starts_with("json") => failures.push(format!(
                "{at}: unknown fence `{other}`; use json, json-invalid or json-fragment"
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    coverage
}

#[test]
fn every_example_in_the_protocol_doc_is_exact() {
    let doc = read_doc();
    let c = check_blocks(&doc);
    assert!(
        c.frames >= 20,
        "only {} frame examples found in {DOC_PATH}; is the doc there and fenced with ```json?",
        c.frames
    );
    assert!(c.invalid >= 5, "only {} json-invalid examples", c.invalid);
    assert!(c.fragments >= 1, "no json-fragment example");

    let missing_types: Vec<_> = Message::TYPE_NAMES
        .iter()
        .filter(|t| !c.types.contains(**t))
        .collect();
    assert!(
        missing_types.is_empty(),
        "no example frame of type {missing_types:?}"
    );
    let missing_ops: Vec<_> = Request::OPS
        .iter()
        .filter(|op| !c.ops.contains(**op))
        .collect();
    assert!(
        missing_ops.is_empty(),
        "no example request of op {missing_ops:?}"
    );
    let kinds = ["pipelineResponse", "statuses", "logs", "hostIp", "pong"];
    let missing_kinds: Vec<_> = kinds
        .iter()
        .filter(|k| !c.result_kinds.contains(**k))
        .collect();
    assert!(
        missing_kinds.is_empty(),
        "no example response of result kind {missing_kinds:?}"
    );
    assert!(c.error_responses > 0, "no example of an error response");
}

/// Every ErrorCode. The exhaustive match makes this fail to compile when a code is added, so the
/// table in the doc cannot silently fall behind.
fn all_error_codes() -> Vec<ErrorCode> {
    use ErrorCode::*;
    let codes = vec![
        Malformed,
        FrameTooLarge,
        TooDeep,
        UnsupportedVersion,
        UnknownType,
        UnknownOperation,
        InvalidRequest,
        UnexpectedMessage,
        Forbidden,
        NotFound,
        Conflict,
        Busy,
        SecretUnresolved,
        ExecutorUnavailable,
        ExecutorError,
        Timeout,
        ShuttingDown,
        Internal,
        Unknown,
    ];
    for code in &codes {
        match code {
            Malformed | FrameTooLarge | TooDeep | UnsupportedVersion | UnknownType
            | UnknownOperation | InvalidRequest | UnexpectedMessage | Forbidden | NotFound
            | Conflict | Busy | SecretUnresolved | ExecutorUnavailable | ExecutorError
            | Timeout | ShuttingDown | Internal | Unknown => {}
        }
    }
    codes
}

/// The text of the `## ` section whose heading contains `title`.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .find(|&i| doc[i..].lines().next().is_some_and(|h| h.contains(title)))
        .unwrap_or_else(|| panic!("docs/protocol.md has no `## ...{title}...` section"));
    let end = doc[start + 3..]
        .find("\n## ")
        .map_or(doc.len(), |i| start + 3 + i);
    &doc[start..end]
}

#[test]
fn error_code_table_matches_the_code() {
    let doc = read_doc();
    let section = section(&doc, "Error codes");
    for code in all_error_codes() {
        let name = serde_json::to_value(code).unwrap();
        let name = name.as_str().unwrap();
        let prefix = format!("| `{name}` |");
        let row = section
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| {
                panic!("section \"Error codes\" of docs/protocol.md has no table row for `{name}`")
            });
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | `code` | HTTP | retryable | meaning |
        assert_eq!(
            cells.get(2).copied(),
            Some(code.http_status().to_string().as_str()),
            "HTTP status of `{name}` in the doc: {row}"
        );
        let retryable = if code.is_retryable() { "yes" } else { "no" };
        assert_eq!(
            cells.get(3).copied(),
            Some(retryable),
            "retryable of `{name}` in the doc: {row}"
        );
    }
}

#[test]
fn the_checker_can_fail() {
    // A wrong example, a valid "invalid" one and a non-canonical one are all caught.
    let bad = [
        "```json\n{\"v\":1,\"id\":\"c1\",\"type\":\"hearbeat\",\"body\":{}}\n```\n",
        "```json-invalid\n{\"v\":1,\"id\":\"c1\",\"type\":\"heartbeat\",\"body\":{}}\n```\n",
        "```json\n{\"v\":1,\"type\":\"ack\",\"id\":\"c1\",\"body\":{\"through\":1}}\n```\n",
        "```json-fragment\n{\"total\":\n```\n",
        "```jsonc\n{}\n```\n",
    ];
    for doc in bad {
        let caught = std::panic::catch_unwind(|| check_blocks(doc)).is_err();
        assert!(caught, "not caught: {doc}");
    }
    let good = "text\n```json\n{\"v\":1,\"id\":\"c1\",\"type\":\"ack\",\"body\":{\n  \"through\": 1\n}}\n```\n";
    assert_eq!(check_blocks(good).frames, 1);
    assert_eq!(minify("{ \"a b\" : [1, 2] }"), "{\"a b\":[1,2]}");
}
