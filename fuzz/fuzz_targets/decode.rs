#![no_main]
//! `cargo +nightly fuzz run decode`: the checks are in `src/decode.rs` (shared with the stable
//! regression test that replays `fuzz/seeds/decode` and `fuzz/regressions/decode`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| runner_fuzz::decode::check(data));
