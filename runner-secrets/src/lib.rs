//! `secret:` references for the Hybrid Ingestion Runner.
//!
//! - [`SecretRef`]: the reference grammar; [`find_references`] lists the references in a JSON
//!   config.
//! - [`SecretResolver`]: resolution through one [`SecretProvider`] with the rule of
//!   docs/secrets.md (whole secret, else key of the parent's JSON object), an allow-list, a cache
//!   (TTL, size bound, single-flight, stale-on-error), bounded retries and a concurrency cap.
//! - [`SecretValue`], [`ResolvedConfig`]: resolved values, whose `Debug`/`Display` print a mask.
//! - [`Masker`]: redacts resolved values (and their encoded forms) from text.
//! - [`leak::LeakScanner`]: finds values (and more encodings) in output, for leak tests.
//! - [`SecretsConfig`]: settings from the environment and construction of the provider.
//!
//! Providers: `env`, `file`, `memory` always; `aws`, `azure`, `gcp`, `kubernetes` behind the
//! cargo features of the same names.

pub mod config;
pub mod error;
pub mod leak;
pub mod mask;
pub mod provider;
pub mod providers;
pub mod reference;
pub mod resolver;
pub mod value;

pub use config::SecretsConfig;
pub use error::{ErrorKind, ProviderError, SecretError};
pub use mask::Masker;
pub use provider::{ProviderKind, SecretProvider};
pub use reference::{FoundReference, SecretRef, find_references, find_references_yaml, parse_yaml};
pub use resolver::{Resolution, ResolverOptions, ResolverStats, Rule, SecretResolver};
pub use value::{ResolvedConfig, SecretValue};
