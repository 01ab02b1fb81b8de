//! Replays the `schedule` fuzz target's seeds and every input it ever crashed on
//! (`fuzz/seeds/schedule`, `fuzz/regressions/schedule`) through the same property checks the
//! fuzzer runs, on stable, in every `cargo test`. See docs/fuzzing.md.

#[path = "../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../fuzz/src/schedule.rs"]
mod schedule;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn schedule_seeds_and_regressions_hold() {
    replay::replay(&fuzz_dir(), "schedule", schedule::check);
}
