use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (parent of xtask/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// The shared target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Builds the runner binary (debug unless `release`) and returns its path.
pub fn build_runner(release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--quiet", "-p", "runner-bin"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p runner-bin failed");
    }
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("ingestion-runner");
    if !bin.exists() {
        bail!("built, but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

pub fn sigterm(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// Runs `cmd`, printing its standard output as it comes and appending it to `file`.
pub fn run_tee(mut cmd: Command, file: &Path) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the command")?;
    let mut out = std::fs::OpenOptions::new().append(true).open(file)?;
    let stdout = child.stdout.take().context("its standard output")?;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        writeln!(out, "{line}")?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("failed ({status})");
    }
    Ok(())
}
