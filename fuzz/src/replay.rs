//! Replays committed inputs through a check: `fuzz/seeds/<target>/*` (hand-written starting
//! inputs) and `fuzz/regressions/<target>/*` (every crash `cargo xtask fuzz` found, kept forever).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `check` on every seed and regression of `target` under `fuzz_dir`, then panics naming
/// each input that failed. Returns how many inputs were replayed. There must be seeds: a replay of
/// nothing would pass without testing anything.
pub fn replay(fuzz_dir: &Path, target: &str, check: fn(&[u8])) -> usize {
    let mut inputs = files(&fuzz_dir.join("seeds").join(target));
    assert!(
        !inputs.is_empty(),
        "no seeds in {}/seeds/{target}: the replay would test nothing",
        fuzz_dir.display()
    );
    inputs.extend(files(&fuzz_dir.join("regressions").join(target)));
    let mut failed = Vec::new();
    for path in &inputs {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!(
                "{} ({:?}): {msg}",
                path.display(),
                String::from_utf8_lossy(&data)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of fuzz target `{target}` fail their property:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
    inputs.len()
}

/// Regular files of `dir`, sorted; none when it does not exist (no regression yet).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    out.sort();
    out
}
