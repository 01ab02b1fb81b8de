//! Cost of a cached resolution, of resolving a 1,000-reference config from cache, and of masking.
//!
//! `cargo bench -p runner-secrets --bench resolve --profile dev` (this project's machines build
//! no release profile; numbers from an optimized build are lower).

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use runner_secrets::providers::memory::MemoryProvider;
use runner_secrets::{Masker, ResolverOptions, SecretRef, SecretResolver};
use serde_json::{Value, json};

fn config_1000_refs_10_secrets() -> Value {
    let refs: Vec<Value> = (0..1000)
        .map(|i| {
            let s = i % 10;
            let key = if i % 2 == 0 { "username" } else { "password" };
            json!({"id": i, "v": format!("secret:/bench/db{s}/{key}")})
        })
        .collect();
    json!({"connections": refs})
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = Arc::new(MemoryProvider::new());
    for s in 0..10 {
        p.insert(
            &format!("bench/db{s}"),
            format!(r#"{{"username":"user{s}","password":"pw-{s}-xyz"}}"#),
        );
    }
    let r = SecretResolver::new(p.clone(), ResolverOptions::default());
    let whole = SecretRef::parse("secret:bench/db3").unwrap();
    let keyed = SecretRef::parse("secret:/bench/db3/password").unwrap();
    rt.block_on(async {
        r.resolve(&whole).await.unwrap();
        r.resolve(&keyed).await.unwrap();
    });

    c.bench_function("cached_resolve_whole_secret", |b| {
        b.iter(|| rt.block_on(r.resolve(&whole)).unwrap())
    });
    c.bench_function("cached_resolve_json_key_with_leading_slash", |b| {
        b.iter(|| rt.block_on(r.resolve(&keyed)).unwrap())
    });

    let cfg = config_1000_refs_10_secrets();
    rt.block_on(r.resolve_config(&cfg)).unwrap();
    c.bench_function("cached_resolve_config_1000_refs_10_secrets", |b| {
        b.iter(|| rt.block_on(r.resolve_config(&cfg)).unwrap())
    });

    let resolved = rt.block_on(r.resolve_config(&cfg)).unwrap();
    let masker: Masker = resolved.masker().clone();
    let clean =
        "2026-11-29T10:00:00Z INFO ingestion: processed table sales.orders rows=1234 ".repeat(50);
    let dirty = format!("{clean} password=pw-7-xyz user=user3 {clean}");
    c.bench_function("mask_4k_line_no_secret", |b| {
        b.iter(|| masker.mask(&clean).len())
    });
    c.bench_function("mask_8k_line_two_secrets", |b| {
        b.iter(|| masker.mask(&dirty).len())
    });
    c.bench_function("build_masker_20_values", |b| {
        b.iter(|| Masker::new(resolved.values()).pattern_count())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
