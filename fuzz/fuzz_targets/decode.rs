#![no_main]
//! Feeds arbitrary bytes to the decoder and to both session halves. Any panic is a bug; a frame
//! that decodes must re-encode to a frame that decodes to the same value.

use libfuzzer_sys::fuzz_target;
use runner_protocol::{ControlSession, Limits, decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(data, &Limits::DEFAULT) {
        let again = decode(encode(&frame).as_bytes(), &Limits::DEFAULT).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
    let mut cp = ControlSession::new(Limits::DEFAULT);
    let _ = cp.receive(data);
});
