//! Property checks for the fuzz targets, one module per target. Each `check` takes arbitrary bytes
//! and panics when a property does not hold. The workspace's stable tests include the same files
//! with `#[path]` (see `replay.rs`) to replay the committed seeds and regressions.

pub mod decode;
pub mod extra_envs;
pub mod replay;
pub mod schedule;
pub mod secret_ref;
