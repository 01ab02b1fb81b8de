//! 1,000 references over 10 distinct secrets, resolved against moto through this crate (dedupe +
//! cache + single-flight) and with the bare AWS SDK (one GetSecretValue per reference, no cache).
//!
//! ```text
//! moto_server -H 127.0.0.1 -p 5055 &
//! RUNNER_TEST_MOTO_ENDPOINT=http://127.0.0.1:5055 \
//!   cargo run -p runner-secrets --features aws --example aws_vs_sdk
//! ```

use std::sync::Arc;
use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::config::Credentials;
use runner_secrets::config::AwsSettings;
use runner_secrets::providers::aws::AwsProvider;
use runner_secrets::{ResolverOptions, SecretResolver, find_references};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let Ok(endpoint) = std::env::var("RUNNER_TEST_MOTO_ENDPOINT") else {
        println!(
            "skipped: RUNNER_TEST_MOTO_ENDPOINT not set (run `cargo xtask test` or start moto_server)"
        );
        return;
    };
    let loader = || {
        aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
    };
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.clone()),
    };
    let opts = ResolverOptions::default();
    let provider = AwsProvider::from_settings_and_loader(&settings, &opts, loader())
        .await
        .expect("provider");
    let sdk = provider.client().clone();
    let run = std::process::id();

    for s in 0..10 {
        let name = format!("bench{run}/db{s}");
        let _ = sdk
            .create_secret()
            .name(&name)
            .secret_string(format!(r#"{{"username":"user{s}","password":"pw-{s}"}}"#))
            .send()
            .await
            .expect("create secret");
    }

    for (label, keyed) in [
        ("whole-secret references", false),
        ("JSON-key references (/path/key)", true),
    ] {
        let refs: Vec<Value> = (0..1000)
            .map(|i| {
                let s = i % 10;
                if keyed {
                    let key = if i % 2 == 0 { "username" } else { "password" };
                    json!(format!("secret:bench{run}/db{s}/{key}"))
                } else {
                    json!(format!("secret:bench{run}/db{s}"))
                }
            })
            .collect();
        let cfg = json!({ "refs": refs });

        // This crate, cold cache.
        let r = SecretResolver::new(
            Arc::new(AwsProvider::from_client(sdk.clone())),
            opts.clone(),
        );
        let t = Instant::now();
        let resolved = r.resolve_config(&cfg).await.expect("resolve");
        let crate_cold = t.elapsed();
        let cold_calls = r.stats().provider_calls;
        let t = Instant::now();
        r.resolve_config(&cfg).await.expect("resolve");
        let crate_warm = t.elapsed();
        assert_eq!(resolved.references().len(), 1000);

        // Bare SDK, no cache: one call per reference (for keyed references, the parent secret,
        // then a JSON parse: what a naive implementation does).
        let found = find_references(&cfg).expect("refs");
        let t = Instant::now();
        let mut calls = 0u64;
        for f in &found {
            let id = f.reference.id();
            let (name, key) = if keyed {
                let (p, k) = id.rsplit_once('/').unwrap();
                (p, Some(k))
            } else {
                (id, None)
            };
            let out = sdk
                .get_secret_value()
                .secret_id(name)
                .send()
                .await
                .expect("sdk");
            calls += 1;
            if let Some(k) = key {
                let v: Value = serde_json::from_str(out.secret_string().unwrap()).unwrap();
                assert!(v.get(k).is_some());
            }
        }
        let sdk_time = t.elapsed();
        println!("{label}: 1000 references over 10 secrets against moto");
        println!(
            "  runner-secrets, cold cache: {cold_calls} provider calls, {:.1} ms",
            crate_cold.as_secs_f64() * 1e3
        );
        println!(
            "  runner-secrets, warm cache: 0 provider calls, {:.2} ms",
            crate_warm.as_secs_f64() * 1e3
        );
        println!(
            "  bare AWS SDK, no cache:     {calls} calls, {:.1} ms  (ratio cold {:.0}x, warm {:.0}x)",
            sdk_time.as_secs_f64() * 1e3,
            sdk_time.as_secs_f64() / crate_cold.as_secs_f64(),
            sdk_time.as_secs_f64() / crate_warm.as_secs_f64()
        );
    }
}
