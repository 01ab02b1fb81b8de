//! Development tasks, run as `cargo xtask <task>`:
//!
//! - `demo`: the whole loop on one machine (mock control plane, runner, local executor).
//! - `test`: installs and starts what the tests need (moto's server), runs every test.
//! - `bench`: idle RSS, no-op request overhead vs a bare WebSocket echo, binary size, then
//!   `bench-argo` (run submission, status tracking, footprint); writes target/bench-report.md.
//! - `bench-ops`: start to `/readyz`, `/metrics` scrape cost, binary size.
//! - `chaos`: the fault harness (lost / doubled / stuck runs under faults).
//! - `fuzz`: cargo-fuzz targets for a fixed budget (nightly).
//! - `control-plane`: a mock control plane to point a runner at, printing what it receives.

mod bench;
mod bench_argo;
mod bench_ops;
mod chaos;
mod demo;
mod floor;
mod fuzz;
mod test;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "demo" => demo::main(rest),
        "test" => test::main(rest),
        "bench" => bench::main(rest),
        "bench-argo" => bench_argo::main(rest),
        "bench-ops" => bench_ops::main(rest),
        "chaos" => chaos::main(rest),
        "fuzz" => fuzz::main(rest),
        "control-plane" => demo::control_plane(rest),
        "echo-client" => bench::echo_client(rest),
        "floor-runner" => floor::main(rest),
        "help" | "--help" | "-h" => {
            println!("cargo xtask <demo|test|bench|bench-argo|bench-ops|chaos|fuzz|control-plane>");
            println!("  demo           run the whole loop on this machine and exit 0 on success");
            println!(
                "  test [ARGS]    install/start test services (moto), run all tests; ARGS go to cargo test"
            );
            println!(
                "  bench          idle RSS, no-op request overhead vs bare echo, binary size; then bench-argo;"
            );
            println!("                 every table also in target/bench-report.md");
            println!(
                "  bench-argo     1,000 and 10,000 run requests through the runner vs straight to a fake"
            );
            println!(
                "                 Argo; Argo requests/min, RSS and CPU while tracking 10 .. 10,000 runs"
            );
            println!(
                "                 --burst-only: the 1,000-burst rounds alone, both placements (under a minute once built)"
            );
            println!(
                "                 --trace: also each round's first and slowest requests and when the fake stored them"
            );
            println!(
                "                 --own-core-only: only the rounds with the runner on a core of its own; --rounds N: N rounds"
            );
            println!(
                "                 per placement (5); --aa: the noise floor (the straight path against itself)"
            );
            println!(
                "                 --floor: the least any runner could do (xtask floor-runner) in the runner's place"
            );
            println!(
                "                 --callgrind (with --own-core-only): the runner's instructions, to compare two builds"
            );
            println!("  bench-ops      start to /readyz, /metrics scrape cost, binary size");
            println!("  fuzz [--seconds N] [TARGET...]  run the cargo-fuzz targets (nightly)");
            println!(
                "  chaos [--runs M] [--seed S] [SCENARIO...]  fault harness: no lost / doubled / stuck runs"
            );
            println!(
                "  control-plane [--addr A] [--token T]  serve a mock control plane and print events"
            );
            Ok(())
        }
        other => Err(anyhow::anyhow!(
            "unknown task `{other}`; try `cargo xtask help`"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
