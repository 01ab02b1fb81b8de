//! Replays the `secret_ref` fuzz target's seeds and every input it ever crashed on
//! (`fuzz/seeds/secret_ref`, `fuzz/regressions/secret_ref`) through the same property checks the
//! fuzzer runs, on stable, in every `cargo test`. See docs/fuzzing.md.

#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/secret_ref.rs"]
mod secret_ref;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn secret_ref_seeds_and_regressions_hold() {
    replay::replay(&fuzz_dir(), "secret_ref", secret_ref::check);
}
