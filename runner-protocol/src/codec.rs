//! Frames: the envelope around every message, and the decoder that enforces the limits.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::limits::Limits;
use crate::messages::{ErrorCode, Message, MessageId, Request};

/// One protocol frame: `{"v":1,"id":"...","re":"...","type":"...","body":{...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Protocol version of this frame.
    pub v: u16,
    /// The sender's id for this message.
    pub id: MessageId,
    /// The id of the message this one answers (responses, errors, acks of hello...).
    pub re: Option<MessageId>,
    pub message: Message,
}

/// Why a frame could not be decoded. Each maps to an [`ErrorCode`] for the reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "frame of {size} bytes exceeds the limit of {limit} bytes; split the payload or lower its size"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("frame is not valid UTF-8 text")]
    NotUtf8,
    #[error("frame nests JSON deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("frame is not valid JSON: {reason}")]
    Json { reason: String },
    #[error("frame is not a protocol envelope: {reason}")]
    Envelope {
        reason: String,
        id: Option<MessageId>,
    },
    #[error("protocol version {v} is not supported; this runner speaks {supported:?}")]
    Version {
        v: u64,
        supported: &'static [u16],
        id: Option<MessageId>,
    },
    #[error("unknown message type `{ty}`{hint}")]
    UnknownType {
        ty: String,
        hint: String,
        id: Option<MessageId>,
    },
    #[error("unknown operation `{op}`{hint}")]
    UnknownOperation {
        op: String,
        hint: String,
        id: Option<MessageId>,
    },
    #[error("invalid `{what}` body: {reason}")]
    Body {
        what: String,
        reason: String,
        id: Option<MessageId>,
        /// Set when the frame was a request: the reply is then a `response` with an error.
        is_request: bool,
    },
}

impl DecodeError {
    /// The code of the error reply for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::NotUtf8 | DecodeError::Json { .. } | DecodeError::Envelope { .. } => {
                ErrorCode::Malformed
            }
            DecodeError::TooDeep { .. } => ErrorCode::TooDeep,
            DecodeError::Version { .. } => ErrorCode::UnsupportedVersion,
            DecodeError::UnknownType { .. } => ErrorCode::UnknownType,
            DecodeError::UnknownOperation { .. } => ErrorCode::UnknownOperation,
            DecodeError::Body { is_request, .. } => {
                if *is_request {
                    ErrorCode::InvalidRequest
                } else {
                    ErrorCode::Malformed
                }
            }
        }
    }

    /// The offending frame's id, when it could be read.
    pub fn id(&self) -> Option<&MessageId> {
        match self {
            DecodeError::TooLarge { .. }
            | DecodeError::NotUtf8
            | DecodeError::TooDeep { .. }
            | DecodeError::Json { .. } => None,
            DecodeError::Envelope { id, .. }
            | DecodeError::Version { id, .. }
            | DecodeError::UnknownType { id, .. }
            | DecodeError::UnknownOperation { id, .. }
            | DecodeError::Body { id, .. } => id.as_ref(),
        }
    }

    /// Whether the frame was a request (its failure is answered with a `response`).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            DecodeError::UnknownOperation { .. }
                | DecodeError::Body {
                    is_request: true,
                    ..
                }
        )
    }
}

/// The envelope, its body left as text: the body is then decoded once, straight into the
/// type its `type` (and, for requests, its `op`) names, without an intermediate JSON tree.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(default)]
    v: Option<u64>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    re: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct OutEnvelope<'a, T: Serialize> {
    v: u16,
    id: &'a MessageId,
    #[serde(skip_serializing_if = "Option::is_none")]
    re: Option<&'a MessageId>,
    #[serde(rename = "type")]
    ty: &'static str,
    body: &'a T,
}

/// Encodes a frame as JSON text.
pub fn encode(frame: &Frame) -> String {
    fn out<T: Serialize>(frame: &Frame, body: &T) -> String {
        let env = OutEnvelope {
            v: frame.v,
            id: &frame.id,
            re: frame.re.as_ref(),
            ty: frame.message.type_name(),
            body,
        };
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(&env).unwrap_or_else(|e| {
            format!(r#"{{"v":{},"id":"{}","type":"error","body":{{"code":"internal","message":"encoding failed: {e}","retryable":false}}}}"#, frame.v, frame.id)
        })
    }
    match &frame.message {
        Message::Hello(b) => out(frame, b),
        Message::Welcome(b) => out(frame, b),
        Message::Reject(b) => out(frame, b),
        Message::Heartbeat(b) => out(frame, b),
        Message::Request(b) => out(frame, b),
        Message::Response(b) => out(frame, b),
        Message::Event(b) => out(frame, b),
        Message::Ack(b) => out(frame, b),
        Message::Error(b) => out(frame, b),
        Message::Goodbye(b) => out(frame, b),
    }
}

/// Decodes one frame, enforcing `limits`. The version is checked against the versions this build
/// speaks; a session additionally checks it against the negotiated one.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Frame, DecodeError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_frame_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?;
    if nesting_depth_exceeds(text, limits.max_depth) {
        return Err(DecodeError::TooDeep {
            limit: limits.max_depth,
        });
    }
    if !text.trim_start().starts_with('{') {
        return Err(DecodeError::Json {
            reason: "a frame must be a JSON object".into(),
        });
    }
    let raw: RawEnvelope = serde_json::from_str(text).map_err(|e| DecodeError::Json {
        reason: e.to_string(),
    })?;
    let id_result = match raw.id {
        Some(id) => MessageId::new(id.into_owned(), limits.max_id_bytes).map_err(str::to_owned),
        None => Err("field `id` is missing".to_owned()),
    };
    let id = match id_result {
        Ok(id) => id,
        Err(reason) => return Err(DecodeError::Envelope { reason, id: None }),
    };
    let envelope_err = |reason: String| DecodeError::Envelope {
        reason,
        id: Some(id.clone()),
    };
    let v = raw
        .v
        .ok_or_else(|| envelope_err("field `v` (protocol version) is missing".into()))?;
    if !u16::try_from(v).is_ok_and(|v| crate::SUPPORTED_VERSIONS.contains(&v)) {
        return Err(DecodeError::Version {
            v,
            supported: crate::SUPPORTED_VERSIONS,
            id: Some(id),
        });
    }
    let re = match raw.re {
        Some(re) => Some(
            MessageId::new(re.into_owned(), limits.max_id_bytes)
                .map_err(|e| envelope_err(format!("field `re`: {e}")))?,
        ),
        None => None,
    };
    let ty = raw
        .ty
        .ok_or_else(|| envelope_err("field `type` is missing".into()))?;
    let body = raw.body.map_or("null", RawValue::get);
    let message = decode_body(&ty, body, &id)?;
    Ok(Frame {
        v: v as u16,
        id,
        re,
        message,
    })
}

/// Decodes a body (JSON text) as the message `ty` names.
fn decode_body(ty: &str, body: &str, id: &MessageId) -> Result<Message, DecodeError> {
    fn body_of<'a, T: Deserialize<'a>>(
        what: &str,
        body: &'a str,
        id: &MessageId,
    ) -> Result<T, DecodeError> {
        serde_json::from_str(body).map_err(|e| DecodeError::Body {
            what: what.to_owned(),
            reason: e.to_string(),
            id: Some(id.clone()),
            is_request: false,
        })
    }
    Ok(match ty {
        "hello" => Message::Hello(body_of(ty, body, id)?),
        "welcome" => Message::Welcome(body_of(ty, body, id)?),
        "reject" => Message::Reject(body_of(ty, body, id)?),
        "heartbeat" => Message::Heartbeat(if body == "null" {
            Default::default()
        } else {
            body_of(ty, body, id)?
        }),
        "request" => Message::Request(decode_request(body, id)?),
        "response" => Message::Response(body_of(ty, body, id)?),
        "event" => Message::Event(body_of(ty, body, id)?),
        "ack" => Message::Ack(body_of(ty, body, id)?),
        "error" => Message::Error(body_of(ty, body, id)?),
        "goodbye" => Message::Goodbye(body_of(ty, body, id)?),
        other => {
            return Err(DecodeError::UnknownType {
                ty: truncate(other, 64),
                hint: did_you_mean(other, Message::TYPE_NAMES),
                id: Some(id.clone()),
            });
        }
    })
}

/// The `op` of a request body: the last `op` key's string, `None` when there is none, it is
/// not a string, or the body is not a JSON object. Other keys are skipped, not built.
fn request_op(body: &str) -> Option<Cow<'_, str>> {
    struct OpOf;
    impl<'de> serde::de::Visitor<'de> for OpOf {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a request object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut op = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "op" {
                    op = match map.next_value::<Value>()? {
                        Value::String(s) => Some(Cow::Owned(s)),
                        _ => None,
                    };
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(op)
        }
    }
    struct Op<'a>(Option<Cow<'a, str>>);
    impl<'de> Deserialize<'de> for Op<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(OpOf).map(Op)
        }
    }
    serde_json::from_str::<Op>(body).ok().and_then(|o| o.0)
}

/// The `runPipeline` body, decoded straight from the frame's text (the hot path: one per
/// run). Same fields and defaults as [`Request::RunPipeline`]; `op` is skipped.
#[derive(Deserialize)]
struct RunPipelineBody {
    pipeline: Box<crate::IngestionPipeline>,
    #[serde(default)]
    service: Option<Value>,
    #[serde(default)]
    options: crate::RunOptions,
}

fn decode_request(body: &str, id: &MessageId) -> Result<Request, DecodeError> {
    let Some(op) = request_op(body) else {
        return Err(DecodeError::Body {
            what: "request".into(),
            reason: "field `op` (the operation) is missing or not a string".into(),
            id: Some(id.clone()),
            is_request: true,
        });
    };
    if !Request::OPS.contains(&op.as_ref()) {
        return Err(DecodeError::UnknownOperation {
            hint: did_you_mean(&op, Request::OPS),
            op: truncate(&op, 64),
            id: Some(id.clone()),
        });
    }
    let decoded = match op.as_ref() {
        "runPipeline" => serde_json::from_str::<RunPipelineBody>(body)
            .map(|b| Request::RunPipeline {
                pipeline: b.pipeline,
                service: b.service,
                options: b.options,
            })
            .ok(),
        _ => serde_json::from_str::<Request>(body).ok(),
    };
    if let Some(request) = decoded {
        return Ok(request);
    }
    // Not decoded straight from the text (a malformed body, or a duplicate key, which a JSON
    // tree collapses): the general way, through a JSON tree, which also words the error.
    serde_json::from_str::<Value>(body)
        .and_then(serde_json::from_value::<Request>)
        .map_err(|e| DecodeError::Body {
            what: op.into_owned(),
            reason: e.to_string(),
            id: Some(id.clone()),
            is_request: true,
        })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `"; did you mean `x`?"` when one known name is close, else `"; expected one of ..."`.
fn did_you_mean(got: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| {
            (
                edit_distance(&got.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                k,
            )
        })
        .min();
    match best {
        Some((d, k)) if d <= 3 => format!("; did you mean `{k}`?"),
        _ => format!("; expected one of {}", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether `text` nests arrays/objects deeper than `max` (strings are skipped).
fn nesting_depth_exceeds(text: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        assert!(!nesting_depth_exceeds(r#"{"a":"[[[[[[[[["}"#, 2));
        assert!(nesting_depth_exceeds(r#"{"a":[[{}]]}"#, 3));
        assert!(!nesting_depth_exceeds(r#"{"a":[[{}]]}"#, 4));
        assert!(!nesting_depth_exceeds(r#"{"a":"\"[[[["}"#, 1));
    }

    /// The direct decode of request bodies gives what the general path (a JSON tree, then
    /// the enum) gives, on bodies shaped unlike our encoder's output.
    #[test]
    fn direct_request_decode_agrees_with_the_general_path() {
        let p = r#"{"name":"p","fullyQualifiedName":"s.p","pipelineType":"metadata","x-extra":[1,{"a":null}]}"#;
        let bodies = [
            format!(r#"{{"op":"runPipeline","pipeline":{p}}}"#),
            format!(r#"{{"pipeline":{p},"service":null,"op":"runPipeline"}}"#),
            format!(r#"{{"op":"run\u0050ipeline","pipeline":{p},"options":{{"runId":"r-1"}}}}"#),
            format!(
                r#"{{"op":"runPipeline","pipeline":{p},"service":{{"a":1}},"options":{{"configOverride":{{"k":"v"}}}},"unknown":true}}"#
            ),
            format!(r#"{{"op":"runPipeline","pipeline":{p},"pipeline":{p}}}"#),
            format!(r#"{{"op":"deployPipeline","op":"runPipeline","pipeline":{p}}}"#),
            format!(r#"{{"op":"deployPipeline","pipeline":{p},"service":{{"b":2}}}}"#),
            format!(r#"{{"op":"killIngestionRun","pipeline":{p},"runId":"r"}}"#),
            r#"{"op":"ping"}"#.to_owned(),
            r#"{"op":"getServiceStatus","extra":1}"#.to_owned(),
        ];
        let id = MessageId::new("m".to_owned(), 64).unwrap();
        for body in &bodies {
            let general = serde_json::from_str::<Value>(body)
                .and_then(serde_json::from_value::<Request>)
                .unwrap();
            assert_eq!(decode_request(body, &id).unwrap(), general, "{body}");
        }
        let bad = [
            r#"{"op":"runPipeline"}"#,
            r#"{"op":"runPipeline","pipeline":{"name":1}}"#,
            r#"{"op":"killIngestionRun","pipeline":{"name":"p","pipelineType":"metadata"}}"#,
        ];
        for body in bad {
            let general = serde_json::from_str::<Value>(body)
                .and_then(serde_json::from_value::<Request>)
                .unwrap_err()
                .to_string();
            match decode_request(body, &id).unwrap_err() {
                DecodeError::Body { reason, .. } => assert_eq!(reason, general, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        for body in [
            "[\"runPipeline\"]",
            "null",
            r#"{"op":7}"#,
            r#"{"ops":"ping"}"#,
        ] {
            assert!(
                matches!(
                    decode_request(body, &id),
                    Err(DecodeError::Body { ref reason, .. }) if reason.contains("`op`")
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("runPipelin", Request::OPS),
            "; did you mean `runPipeline`?"
        );
        assert!(did_you_mean("zzzzzzzzzzzz", Request::OPS).starts_with("; expected one of"));
    }
}
