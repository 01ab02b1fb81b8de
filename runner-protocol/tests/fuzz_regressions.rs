//! Replays the `decode` fuzz target's seeds and every input it ever crashed on
//! (`fuzz/seeds/decode`, `fuzz/regressions/decode`) through the same property checks the
//! fuzzer runs, on stable, in every `cargo test`. See docs/fuzzing.md.

#[path = "../../fuzz/src/decode.rs"]
mod decode;
#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn decode_seeds_and_regressions_hold() {
    replay::replay(&fuzz_dir(), "decode", decode::check);
}

#[test]
fn a_failing_input_fails_the_replay() {
    let failed = std::panic::catch_unwind(|| {
        replay::replay(&fuzz_dir(), "decode", |_| panic!("property broken"))
    });
    let msg = failed.expect_err("a panicking check must fail the replay");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("fuzz/seeds/decode/"), "{msg}");
}
