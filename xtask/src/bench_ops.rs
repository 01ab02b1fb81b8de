//! `cargo xtask bench-ops`: being written (see the open issue); fails until it exists.

pub fn main(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
