//! Provider implementations. `env`, `file` and `memory` are always compiled; the cloud providers
//! are behind cargo features.

pub mod env;
pub mod file;
pub mod memory;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;

/// Names for providers whose names may or may not start with `/`: as written, then without.
pub(crate) fn slash_variants(id: &str) -> Vec<String> {
    let stripped = crate::provider::strip_slash(id);
    if stripped.len() == id.len() {
        vec![id.to_owned()]
    } else {
        vec![id.to_owned(), stripped.to_owned()]
    }
}
