#![no_main]
//! `cargo +nightly fuzz run schedule`: the checks are in `src/schedule.rs` (shared with the stable
//! regression test that replays `fuzz/seeds/schedule` and `fuzz/regressions/schedule`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| runner_fuzz::schedule::check(data));
