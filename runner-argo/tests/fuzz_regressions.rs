//! Replays the `extra_envs` fuzz target's seeds and every input it ever crashed on
//! (`fuzz/seeds/extra_envs`, `fuzz/regressions/extra_envs`) through the same property checks the
//! fuzzer runs, on stable, in every `cargo test`. See docs/fuzzing.md.

#[path = "../../fuzz/src/extra_envs.rs"]
mod extra_envs;
#[path = "../../fuzz/src/replay.rs"]
mod replay;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn extra_envs_seeds_and_regressions_hold() {
    replay::replay(&fuzz_dir(), "extra_envs", extra_envs::check);
}
