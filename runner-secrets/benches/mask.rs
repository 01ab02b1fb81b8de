//! The masker over log lines: no secret, one, ten; the encoded forms it also redacts (base64,
//! JSON-escaped, URL-encoded); a 1,000-line log chunk; and building a masker.
//!
//! `cargo bench -p runner-secrets --bench mask` (add `-- --quick` for a short run). Figures and
//! the machine they were measured on: docs/fuzzing.md.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runner_secrets::{Masker, SecretValue};
use std::hint::black_box;

/// Ten values of the shapes a workflow config resolves to: passwords, keys, a token, a JSON blob.
fn values() -> Vec<SecretValue> {
    [
        "hunter2-Pr0d!",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbmdlc3Rpb24tYm90In0.c2lnbmF0dXJl",
        "p@ss word&more=1",
        "mysql-ro-user-7",
        "s3cr3t/with/slashes",
        r#"{"client_id":"abc","client_secret":"xyz-123"}"#,
        "xoxb-0000000000-0000000000000-ABCDEFGHIJKLMNOPQRSTUVWX",
        "Tr0ub4dor&3-correct-horse",
    ]
    .into_iter()
    .map(SecretValue::new)
    .collect()
}

/// A typical ingestion log line, about 160 bytes, with `inserts` spliced in the middle.
fn line(inserts: &[&str]) -> String {
    let mut s = String::from(
        "[2026-11-29 10:00:00,123] INFO {metadata.ingestion.source.database.mysql:212} - \
         Processing table sales_schema_1.orders_2026 columns=42 rows=1234567",
    );
    for i in inserts {
        s.push_str(" value=");
        s.push_str(i);
    }
    s.push_str(" status=ok");
    s
}

fn bench(c: &mut Criterion) {
    let vals = values();
    let masker = Masker::new(&vals);
    let plain: Vec<&str> = vals.iter().filter_map(SecretValue::expose_str).collect();

    let mut g = c.benchmark_group("mask/line");
    for (name, text) in [
        ("0_secrets", line(&[])),
        ("1_secret", line(&plain[..1])),
        ("10_secrets", line(&plain)),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| masker.mask(black_box(&text)).len()));
    }
    g.finish();

    let b64 = STANDARD.encode(plain[2]);
    let json = serde_json::to_string(plain[7]).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let url = "p%40ss%20word%26more%3D1".to_owned();
    let mut g = c.benchmark_group("mask/encoding");
    for (name, text) in [
        ("base64", line(&[&b64])),
        ("json_escaped", line(&[&json])),
        ("url_encoded", line(&[&url])),
    ] {
        assert!(masker.mask(&text).contains("***"), "{name} form not masked");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| masker.mask(black_box(&text)).len()));
    }
    g.finish();

    // 1,000 lines, one in a hundred with a secret: a page of run logs.
    let chunk: Vec<String> = (0..1000)
        .map(|i| {
            if i % 100 == 7 {
                line(&plain[i % 10..i % 10 + 1])
            } else {
                line(&[])
            }
        })
        .collect();
    let bytes: usize = chunk.iter().map(String::len).sum();
    let mut g = c.benchmark_group("mask/log");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("1000_lines_10_with_secrets", |b| {
        b.iter(|| chunk.iter().map(|l| masker.mask(l).len()).sum::<usize>())
    });
    g.finish();

    c.bench_function("mask/build_10_values", |b| {
        b.iter(|| Masker::new(black_box(&vals)).pattern_count())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
