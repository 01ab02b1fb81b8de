//! Decoding of Argo Server streams (`/log` and `/workflow-events`): a sans-IO frame
//! decoder for NDJSON and Server-Sent Events, and the typed stream built on it.
//!
//! Each frame is a grpc-gateway stream object: `{"result": T}` or `{"error": StreamError}`.
//! Keep-alives are skipped: empty lines, SSE comments (`:...`), SSE events without data,
//! and `{}` / `{"result": null}` / `{"result": {}}` objects. A line (NDJSON) or an event's
//! data (SSE) longer than the limit fails the stream with [`ArgoError::FrameTooLarge`]
//! instead of growing a buffer without bound.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::ArgoError;
use crate::model::StreamError;

/// Default limit of one NDJSON line or one SSE event's data: 4 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// `application/json` body with one JSON object per line.
    Ndjson,
    /// `text/event-stream` body (`Accept: text/event-stream`), `data: {...}` events.
    Sse,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A frame with a non-empty `result`: the frame's JSON, checked but not yet decoded, so
    /// the result is decoded once, straight into its type ([`Frame::decode`]).
    Result(Vec<u8>),
    Error(StreamError),
}

impl Frame {
    /// The `result` of a [`Frame::Result`] as a `T`; `None` for an error frame.
    pub fn decode<T: DeserializeOwned>(&self) -> Option<Result<T, serde_json::Error>> {
        #[derive(Deserialize)]
        struct ResultOf<T> {
            result: T,
        }
        match self {
            Frame::Result(bytes) => {
                Some(serde_json::from_slice::<ResultOf<T>>(bytes).map(|r| r.result))
            }
            Frame::Error(_) => None,
        }
    }
}

/// What a frame's `result` holds, found without building it.
enum Shape {
    EmptyObject,
    Present,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                if m.next_key::<IgnoredAny>()?.is_none() {
                    return Ok(Shape::EmptyObject);
                }
                m.next_value::<IgnoredAny>()?;
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Present)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Shape, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Present)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Present)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Present)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Present)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Present)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Present)
            }
        }
        d.deserialize_any(ShapeVisitor)
    }
}

/// A frame read without building its `result` (`null` reads as `None`).
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    result: Option<Shape>,
    #[serde(default)]
    error: Option<Value>,
}

/// The largest line buffer [`FrameDecoder`] keeps between lines (a workflow event is a few
/// KiB; a rare long one is not held on to).
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// Incremental decoder: push bytes as they arrive, take complete frames out.
#[derive(Debug)]
pub struct FrameDecoder {
    format: StreamFormat,
    max: usize,
    line: Vec<u8>,
    sse_data: Vec<u8>,
    sse_has_data: bool,
}

impl FrameDecoder {
    pub fn new(format: StreamFormat, max_frame_bytes: usize) -> Self {
        Self {
            format,
            max: max_frame_bytes.max(64),
            line: Vec::new(),
            sse_data: Vec::new(),
            sse_has_data: false,
        }
    }

    /// Feed a chunk; returns the frames completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Frame>, ArgoError> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            if self.line.len() + pos > self.max {
                return Err(ArgoError::FrameTooLarge { limit: self.max });
            }
            let piece = &rest[..pos];
            rest = &rest[pos + 1..];
            if self.line.is_empty() {
                // A whole line in this chunk: read in place, not copied.
                self.on_line(piece.strip_suffix(b"\r").unwrap_or(piece), &mut out)?;
                continue;
            }
            self.line.extend_from_slice(piece);
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.on_line(&line, &mut out)?;
            // Keep the buffer for the next partial line unless one long line grew it.
            if line.capacity() <= KEEP_LINE_CAPACITY {
                line.clear();
                self.line = line;
            }
        }
        if self.line.len() + rest.len() > self.max {
            return Err(ArgoError::FrameTooLarge { limit: self.max });
        }
        self.line.extend_from_slice(rest);
        Ok(out)
    }

    /// End of body: a last line without a newline still counts (NDJSON), a pending SSE
    /// event is dispatched.
    pub fn finish(&mut self) -> Result<Vec<Frame>, ArgoError> {
        let mut out = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.on_line(&line, &mut out)?;
        }
        if self.format == StreamFormat::Sse {
            self.dispatch_sse(&mut out)?;
        }
        Ok(out)
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<Frame>) -> Result<(), ArgoError> {
        match self.format {
            StreamFormat::Ndjson => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(());
                }
                if let Some(f) = parse_frame(line)? {
                    out.push(f);
                }
            }
            StreamFormat::Sse => {
                if line.is_empty() {
                    return self.dispatch_sse(out);
                }
                if line[0] == b':' {
                    return Ok(()); // comment / keep-alive
                }
                let (field, value) = match line.iter().position(|b| *b == b':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                if field == b"data" {
                    if self.sse_data.len() + value.len() + 1 > self.max {
                        return Err(ArgoError::FrameTooLarge { limit: self.max });
                    }
                    if self.sse_has_data {
                        self.sse_data.push(b'\n');
                    }
                    self.sse_data.extend_from_slice(value);
                    self.sse_has_data = true;
                }
                // `event:`, `id:`, `retry:` are not used by Argo; ignored.
            }
        }
        Ok(())
    }

    fn dispatch_sse(&mut self, out: &mut Vec<Frame>) -> Result<(), ArgoError> {
        if !self.sse_has_data {
            return Ok(());
        }
        self.sse_has_data = false;
        let data = std::mem::take(&mut self.sse_data);
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if let Some(f) = parse_frame(&data)? {
            out.push(f);
        }
        Ok(())
    }
}

fn parse_frame(bytes: &[u8]) -> Result<Option<Frame>, ArgoError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| ArgoError::Decode {
        what: "a stream frame".into(),
        detail: format!(
            "{e} (frame starts with {:?})",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
        ),
    })?;
    if let Some(err) = probe.error {
        let se: StreamError = serde_json::from_value(err.clone()).unwrap_or(StreamError {
            message: Some(err.to_string()),
            ..StreamError::default()
        });
        return Ok(Some(Frame::Error(se)));
    }
    match probe.result {
        None | Some(Shape::EmptyObject) => Ok(None),
        Some(Shape::Present) => Ok(Some(Frame::Result(bytes.to_vec()))),
    }
}

/// A typed stream of results. Ends (`None`) at the body's EOF; yields one `Err` and
/// ends on a mid-stream `{"error":...}`, a decode failure, an oversized frame, a
/// transport error, or when nothing (not even a keep-alive) arrived for the idle timeout.
pub type ArgoStream<T> = Pin<Box<dyn Stream<Item = Result<T, ArgoError>> + Send>>;

struct State<S> {
    body: S,
    dec: FrameDecoder,
    pending: std::collections::VecDeque<Frame>,
    idle: Duration,
    done: bool,
    what: &'static str,
}

/// Build a typed stream from a body of byte chunks.
pub fn decode_stream<T, S, E>(
    body: S,
    format: StreamFormat,
    max_frame_bytes: usize,
    idle_timeout: Duration,
    what: &'static str,
) -> ArgoStream<T>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<ArgoError>,
{
    let st = State {
        body,
        dec: FrameDecoder::new(format, max_frame_bytes),
        pending: Default::default(),
        idle: idle_timeout,
        done: false,
        what,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(frame) = st.pending.pop_front() {
                match frame {
                    Frame::Result(_) => match frame.decode::<T>() {
                        Some(Ok(t)) => return Some((Ok(t), st)),
                        Some(Err(e)) => {
                            st.done = true;
                            st.pending.clear();
                            let err = ArgoError::Decode {
                                what: st.what.into(),
                                detail: e.to_string(),
                            };
                            return Some((Err(err), st));
                        }
                        None => continue,
                    },
                    Frame::Error(e) => {
                        st.done = true;
                        st.pending.clear();
                        return Some((Err(ArgoError::from_stream_error(&e)), st));
                    }
                }
            }
            if st.done {
                return None;
            }
            let next = match tokio::time::timeout(st.idle, st.body.next()).await {
                Ok(n) => n,
                Err(_) => {
                    st.done = true;
                    let err = ArgoError::Timeout {
                        what: format!("{} stream idle (no data or keep-alive)", st.what),
                        after: st.idle,
                    };
                    return Some((Err(err), st));
                }
            };
            let res = match next {
                Some(Ok(chunk)) => st.dec.push(&chunk),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e.into()), st));
                }
                None => {
                    st.done = true;
                    st.dec.finish()
                }
            };
            match res {
                Ok(frames) => st.pending.extend(frames),
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ndjson_split_across_chunks_and_keepalives() {
        let mut d = FrameDecoder::new(StreamFormat::Ndjson, 1024);
        assert!(d.push(b"{\"result\":{\"a\"").unwrap().is_empty());
        let f = d
            .push(b":1}}\n\n{}\n{\"result\":null}\r\n{\"result\":{\"a\":2}}")
            .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].decode::<Value>().unwrap().unwrap(), json!({"a":1}));
        let last = d.finish().unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].decode::<Value>().unwrap().unwrap(), json!({"a":2}));
    }

    /// Values of the `result` frames one decoder returns for `chunks`, in order.
    fn results_of(chunks: &[&[u8]]) -> Vec<Value> {
        let mut d = FrameDecoder::new(StreamFormat::Ndjson, 4096);
        let mut frames = Vec::new();
        for c in chunks {
            frames.extend(d.push(c).unwrap());
        }
        frames.extend(d.finish().unwrap());
        frames
            .iter()
            .map(|f| f.decode::<Value>().unwrap().unwrap())
            .collect()
    }

    proptest::proptest! {
        /// However a stream is cut into chunks (lines whole in one chunk, split over several,
        /// `\r\n` split from its `\n`), the frames are the ones of the uncut stream.
        #[test]
        fn ndjson_frames_do_not_depend_on_chunking(
            lines in proptest::collection::vec((0u32..1000, 0usize..300, proptest::bool::ANY), 1..12),
            cuts in proptest::collection::vec(0usize..8000, 0..16),
        ) {
            let mut text = Vec::new();
            let mut want = Vec::new();
            for (n, pad, crlf) in &lines {
                let v = json!({"n": n, "pad": "x".repeat(*pad)});
                text.extend(serde_json::to_vec(&json!({"result": v})).unwrap());
                text.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                want.push(v);
            }
            let mut at: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            at.sort_unstable();
            at.dedup();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut from = 0;
            for c in at {
                chunks.push(&text[from..c]);
                from = c;
            }
            chunks.push(&text[from..]);
            proptest::prop_assert_eq!(results_of(&[&text]), want.clone());
            proptest::prop_assert_eq!(results_of(&chunks), want);
        }
    }

    #[test]
    fn sse_multiline_comments_and_error() {
        let mut d = FrameDecoder::new(StreamFormat::Sse, 1024);
        let f = d
            .push(b": keep-alive\n\ndata: {\"result\":\ndata: {\"a\":1}}\n\nevent: x\ndata: {\"error\":{\"grpc_code\":14,\"message\":\"gone\"}}\n\n")
            .unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].decode::<Value>().unwrap().unwrap(), json!({"a":1}));
        match &f[1] {
            Frame::Error(e) => assert_eq!(
                (e.grpc_code, e.message.as_deref()),
                (Some(14), Some("gone"))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_line_is_refused() {
        let mut d = FrameDecoder::new(StreamFormat::Ndjson, 100);
        let big = vec![b'x'; 150];
        assert!(matches!(
            d.push(&big),
            Err(ArgoError::FrameTooLarge { limit: 100 })
        ));
        let mut d = FrameDecoder::new(StreamFormat::Sse, 100);
        let mut ev = b"data: ".to_vec();
        ev.extend(vec![b'x'; 60]);
        ev.push(b'\n');
        d.push(&ev).unwrap();
        assert!(matches!(d.push(&ev), Err(ArgoError::FrameTooLarge { .. })));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let mut d = FrameDecoder::new(StreamFormat::Ndjson, 100);
        assert!(matches!(d.push(b"<html>\n"), Err(ArgoError::Decode { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn typed_stream_ends_on_error_and_times_out_when_idle() {
        let chunks: Vec<Result<Bytes, ArgoError>> = vec![
            Ok(Bytes::from_static(b"{\"result\":{\"content\":\"l1\",\"podName\":\"p\"}}\n")),
            Ok(Bytes::from_static(b"{\"error\":{\"grpc_code\":13,\"message\":\"boom\"}}\n{\"result\":{\"content\":\"never\"}}\n")),
        ];
        let s = decode_stream::<crate::model::LogEntry, _, _>(
            futures_util::stream::iter(chunks),
            StreamFormat::Ndjson,
            1024,
            Duration::from_secs(5),
            "log",
        );
        let items: Vec<_> = s.collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().content, "l1");
        assert!(matches!(
            &items[1],
            Err(ArgoError::Stream {
                grpc_code: Some(13),
                ..
            })
        ));

        let pending = futures_util::stream::pending::<Result<Bytes, ArgoError>>();
        let mut s = decode_stream::<Value, _, _>(
            pending,
            StreamFormat::Sse,
            1024,
            Duration::from_secs(30),
            "watch",
        );
        let t0 = tokio::time::Instant::now();
        let first = s.next().await.unwrap();
        assert!(matches!(first, Err(ArgoError::Timeout { .. })), "{first:?}");
        assert!(t0.elapsed() >= Duration::from_secs(30));
        assert!(s.next().await.is_none());
    }
}
