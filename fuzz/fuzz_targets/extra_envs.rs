#![no_main]
//! `cargo +nightly fuzz run extra_envs`: the checks are in `src/extra_envs.rs` (shared with the stable
//! regression test that replays `fuzz/seeds/extra_envs` and `fuzz/regressions/extra_envs`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| runner_fuzz::extra_envs::check(data));
