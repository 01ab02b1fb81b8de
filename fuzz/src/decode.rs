//! Target `decode`: arbitrary bytes as a frame from the network.
//!
//! - the decoder and the control plane's session never panic;
//! - a frame that decodes re-encodes to text that decodes to the same frame;
//! - a refused frame's error maps to a code and keeps the id it read, if any, within the id limit.

use runner_protocol::{ControlSession, Limits, decode, encode};

pub fn check(data: &[u8]) {
    let limits = Limits::DEFAULT;
    match decode(data, &limits) {
        Ok(frame) => {
            assert!(
                frame.id.as_str().len() <= limits.max_id_bytes,
                "id over the limit"
            );
            let text = encode(&frame);
            let again = decode(text.as_bytes(), &limits)
                .unwrap_or_else(|e| panic!("re-encoded frame {text} does not decode: {e}"));
            assert_eq!(again, frame, "re-encoded frame decodes to another frame");
        }
        Err(e) => {
            let _ = e.code();
            let _ = e.to_string();
            if let Some(id) = e.id() {
                let n = id.as_str().len();
                assert!(
                    n > 0 && n <= limits.max_id_bytes,
                    "error carries an id of {n} bytes"
                );
            }
        }
    }
    let mut cp = ControlSession::new(limits);
    let _ = cp.receive(data);
}
