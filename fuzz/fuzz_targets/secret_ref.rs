#![no_main]
//! `cargo +nightly fuzz run secret_ref`: the checks are in `src/secret_ref.rs` (shared with the stable
//! regression test that replays `fuzz/seeds/secret_ref` and `fuzz/regressions/secret_ref`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| runner_fuzz::secret_ref::check(data));
