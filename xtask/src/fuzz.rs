//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs every cargo-fuzz target of `fuzz/` (or the
//! ones named) for a fixed budget each, with the nightly toolchain, and prints a table of execs,
//! corpus size and crashes. A crashing input is copied to `fuzz/regressions/<target>/`, where the
//! stable `fuzz_regressions` test of the owning crate replays it in every `cargo test`; the task
//! then fails. See docs/fuzzing.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::util::root;

const DEFAULT_SECONDS: u64 = 60;

/// The crate whose `fuzz_regressions` test replays a target's inputs.
const OWNERS: &[(&str, &str)] = &[
    ("decode", "runner-protocol"),
    ("secret_ref", "runner-secrets"),
    ("extra_envs", "runner-argo"),
    ("schedule", "runner-core"),
];

struct Outcome {
    target: String,
    seconds: u64,
    execs: Option<u64>,
    execs_per_sec: Option<u64>,
    corpus: usize,
    new_units: Option<u64>,
    crash: Option<PathBuf>,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut wanted = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().context("--seconds needs a value")?;
                seconds = v
                    .parse()
                    .with_context(|| format!("--seconds {v:?} is not a number of seconds"))?;
            }
            "-h" | "--help" => {
                println!(
                    "cargo xtask fuzz [--seconds N] [TARGET...]\n  runs each fuzz target (all by \
                     default) for N seconds (default {DEFAULT_SECONDS}) with cargo +nightly fuzz"
                );
                return Ok(());
            }
            t if t.starts_with('-') => bail!("unknown option {t}; try `cargo xtask fuzz --help`"),
            t => wanted.push(t.to_owned()),
        }
    }
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }

    let root = root();
    let fuzz_dir = root.join("fuzz");
    require_nightly()?;
    ensure_cargo_fuzz()?;

    let all = list_targets(&root)?;
    let targets = if wanted.is_empty() {
        all
    } else {
        if let Some(t) = wanted.iter().find(|t| !all.contains(t)) {
            bail!("no fuzz target `{t}`; the targets are: {}", all.join(", "));
        }
        wanted
    };

    println!("building fuzz targets (nightly, address sanitizer, debug assertions)...");
    let status = cargo_fuzz(&root)
        .arg("build")
        .status()
        .context("cannot run cargo +nightly fuzz build")?;
    if !status.success() {
        bail!("cargo +nightly fuzz build failed ({status})");
    }

    let mut outcomes = Vec::new();
    for t in &targets {
        println!("fuzzing {t} for {seconds} s...");
        outcomes.push(run_target(&root, &fuzz_dir, t, seconds)?);
    }

    print_table(&outcomes);
    let crashed: Vec<&Outcome> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if crashed.is_empty() {
        return Ok(());
    }
    for o in &crashed {
        let owner = OWNERS
            .iter()
            .find(|(t, _)| *t == o.target)
            .map_or("<owning crate>", |(_, c)| c);
        if let Some(p) = &o.crash {
            eprintln!(
                "{}: crash input saved as {}; replay it with `cargo test -p {owner} --test \
                 fuzz_regressions`, fix the code, commit the input with the fix",
                o.target,
                p.strip_prefix(&root).unwrap_or(p).display()
            );
        }
    }
    bail!(
        "{} of {} fuzz targets crashed",
        crashed.len(),
        outcomes.len()
    )
}

/// `cargo +nightly fuzz` at the root, with the fuzz crate's own target directory and none of the
/// variables `cargo run` set for this task: build scripts (ring's) watch `CARGO_*` variables, and
/// inheriting `CARGO_MANIFEST_DIR=.../xtask` would rebuild half the dependency tree each time.
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k == "OUT_DIR" {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.current_dir(root)
        .args(["+nightly", "fuzz"])
        .env("CARGO_TARGET_DIR", root.join("fuzz").join("target"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO");
    cmd
}

fn require_nightly() -> anyhow::Result<()> {
    let out = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context(
            "cargo-fuzz needs a nightly Rust toolchain, installed through rustup, and rustup is \
             not on PATH; fix: install rustup (https://rustup.rs), then `rustup toolchain install \
             nightly`",
        )?;
    let list = String::from_utf8_lossy(&out.stdout);
    if !list.lines().any(|l| l.starts_with("nightly")) {
        bail!(
            "cargo-fuzz needs the nightly toolchain (libFuzzer instrumentation and sanitizers are \
             unstable), and rustup has none; fix: `rustup toolchain install nightly`"
        );
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    println!("cargo-fuzz is not installed; installing it (cargo install cargo-fuzz --locked)...");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!(
            "cargo install cargo-fuzz --locked failed ({status}); install it by hand and run again"
        );
    }
    Ok(())
}

fn list_targets(root: &Path) -> anyhow::Result<Vec<String>> {
    let out = cargo_fuzz(root)
        .arg("list")
        .output()
        .context("cannot run cargo +nightly fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo +nightly fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("cargo fuzz list found no target in fuzz/");
    }
    Ok(targets)
}

fn run_target(root: &Path, fuzz_dir: &Path, t: &str, seconds: u64) -> anyhow::Result<Outcome> {
    // The working corpus is not committed; the seeds and regressions are, and start every run.
    let corpus = fuzz_dir.join("corpus").join(t);
    let artifacts = fuzz_dir.join("artifacts").join(t);
    fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    fs::create_dir_all(&artifacts).with_context(|| format!("creating {}", artifacts.display()))?;
    let log_path = fuzz_dir.join("artifacts").join(format!("{t}.log"));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    let mut cmd = cargo_fuzz(root);
    cmd.args(["run", t]).arg(&corpus);
    for extra in ["seeds", "regressions"] {
        let d = fuzz_dir.join(extra).join(t);
        if d.is_dir() {
            cmd.arg(d);
        }
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=10"])
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let status = cmd.status().context("cannot run cargo +nightly fuzz run")?;
    let elapsed = started.elapsed().as_secs();
    let text = fs::read_to_string(&log_path).unwrap_or_default();

    let stat = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
    };
    let artifact = text
        .lines()
        .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim()))
        .map(PathBuf::from);

    let crash = match (status.success(), artifact) {
        (true, _) => None,
        (false, Some(found)) => {
            let found = if found.is_absolute() {
                found
            } else {
                root.join(found)
            };
            let dir = fuzz_dir.join("regressions").join(t);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let name = found
                .file_name()
                .context("libFuzzer's artifact path has no file name")?;
            let dest = dir.join(name);
            fs::copy(&found, &dest)
                .with_context(|| format!("copying {} to {}", found.display(), dest.display()))?;
            Some(dest)
        }
        (false, None) => bail!(
            "fuzzing {t} failed ({status}) without a crash input; see {}",
            log_path.display()
        ),
    };
    Ok(Outcome {
        target: t.to_owned(),
        seconds: elapsed,
        execs: stat("number_of_executed_units"),
        execs_per_sec: stat("average_exec_per_sec"),
        corpus: fs::read_dir(&corpus).map_or(0, |d| d.count()),
        new_units: stat("new_units_added"),
        crash,
    })
}

fn print_table(outcomes: &[Outcome]) {
    let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    println!();
    println!(
        "| {:<12} | {:>7} | {:>12} | {:>8} | {:>6} | {:>9} | {:>7} |",
        "target", "seconds", "execs", "execs/s", "corpus", "new units", "crashes"
    );
    println!(
        "| {:-<12} | {:->7} | {:->12} | {:->8} | {:->6} | {:->9} | {:->7} |",
        "", "", "", "", "", "", ""
    );
    for o in outcomes {
        println!(
            "| {:<12} | {:>7} | {:>12} | {:>8} | {:>6} | {:>9} | {:>7} |",
            o.target,
            o.seconds,
            n(o.execs),
            n(o.execs_per_sec),
            o.corpus,
            n(o.new_units),
            usize::from(o.crash.is_some())
        );
    }
    let total: u64 = outcomes.iter().filter_map(|o| o.execs).sum();
    println!("total execs: {total}");
}
