//! Resolution rule, allow-list, cache, single-flight, stale-on-error, retries and concurrency,
//! against the in-memory provider (time-dependent tests run on paused tokio time).

use std::sync::Arc;
use std::time::Duration;

use runner_secrets::providers::env::EnvProvider;
use runner_secrets::providers::file::FileProvider;
use runner_secrets::providers::memory::MemoryProvider;
use runner_secrets::{
    ErrorKind, ProviderError, ResolverOptions, Rule, SecretError, SecretRef, SecretResolver,
};
use serde_json::json;

fn setup(opts: ResolverOptions) -> (Arc<MemoryProvider>, SecretResolver) {
    let p = Arc::new(MemoryProvider::new());
    p.insert("my/database/credentials", r#"{"username":"admin","password":"s3cr3t!","port":5432,"tls":true,"nested":{"a":1},"none":null}"#);
    p.insert("plain", "just-text");
    p.insert("/slashed", "with-slash");
    p.insert("a/b", "whole-a-b");
    p.insert("a", r#"{"b":"key-b-of-a"}"#);
    p.insert("notjson", "not { json");
    p.insert("binary", vec![0xff, 0x00, 0xfe]);
    p.insert_version("plain", "AWSPREVIOUS", "old-text");
    let r = SecretResolver::new(p.clone(), opts);
    (p, r)
}

fn fast() -> ResolverOptions {
    ResolverOptions {
        backoff_base: Duration::from_millis(100),
        ..ResolverOptions::default()
    }
}

async fn ok(r: &SecretResolver, s: &str) -> (String, Rule) {
    let res = r
        .resolve_str(s)
        .await
        .unwrap_or_else(|e| panic!("{s}: {e}"));
    (res.value.expose_str().unwrap().to_owned(), res.rule)
}

#[tokio::test]
async fn whole_secret_then_json_key_rule() {
    let (_, r) = setup(fast());
    assert_eq!(ok(&r, "secret:plain").await.0, "just-text");
    let (v, rule) = ok(&r, "secret:/my/database/credentials/username").await;
    assert_eq!(v, "admin");
    assert_eq!(
        rule,
        Rule::JsonKey {
            secret: "my/database/credentials".into(),
            key: "username".into()
        }
    );
    // The whole id wins over the key rule when both exist.
    let (v, rule) = ok(&r, "secret:a/b").await;
    assert_eq!(v, "whole-a-b");
    assert_eq!(rule, Rule::WholeSecret { name: "a/b".into() });
    // Leading slash: as written first.
    assert_eq!(ok(&r, "secret:/slashed").await.0, "with-slash");
    assert_eq!(ok(&r, "secret:/plain").await.0, "just-text");
    // Non-string JSON values are their JSON text; nested objects are compact JSON.
    assert_eq!(
        ok(&r, "secret:my/database/credentials/port").await.0,
        "5432"
    );
    assert_eq!(ok(&r, "secret:my/database/credentials/tls").await.0, "true");
    assert_eq!(
        ok(&r, "secret:my/database/credentials/nested").await.0,
        r#"{"a":1}"#
    );
    // Version selection.
    assert_eq!(
        ok(&r, "secret:plain?version=AWSPREVIOUS").await.0,
        "old-text"
    );
}

#[tokio::test]
async fn errors_name_reference_rule_cause_and_fix() {
    let (_, r) = setup(fast());
    let check = |e: SecretError, kind: ErrorKind, needles: &[&str]| {
        assert_eq!(e.kind(), kind, "{e}");
        let s = e.to_string();
        for n in needles {
            assert!(s.contains(n), "`{n}` not in: {s}");
        }
        for secret in ["admin", "s3cr3t!", "just-text", "not { json"] {
            assert!(!s.contains(secret), "value leaked: {s}");
            assert!(!format!("{e:?}").contains(secret), "value leaked in Debug");
        }
    };
    let e = r.resolve_str("secret:/nope/x").await.unwrap_err();
    check(
        e,
        ErrorKind::NotFound,
        &[
            "secret:/nope/x",
            "memory",
            "secret `/nope/x`",
            "key `x` of JSON secret `nope`",
            "fix: verify the path",
        ],
    );
    let e = r
        .resolve_str("secret:my/database/credentials/user")
        .await
        .unwrap_err();
    check(e, ErrorKind::KeyMissing, &["without key `user`", "fix:"]);
    let e = r
        .resolve_str("secret:my/database/credentials/none")
        .await
        .unwrap_err();
    check(e, ErrorKind::KeyMissing, &["null"]);
    let e = r.resolve_str("secret:notjson/k").await.unwrap_err();
    check(e, ErrorKind::Malformed, &["not valid JSON"]);
    let e = r.resolve_str("secret:binary/k").await.unwrap_err();
    check(e, ErrorKind::Malformed, &["binary"]);
    // Nested keys are not walked by more path segments.
    let e = r
        .resolve_str("secret:my/database/credentials/nested/a")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn binary_whole_secret_resolves_but_cannot_go_into_a_text_config() {
    let (_, r) = setup(fast());
    let res = r.resolve_str("secret:binary").await.unwrap();
    assert_eq!(res.value.expose_bytes(), &[0xff, 0x00, 0xfe]);
    assert!(res.summary().starts_with("ok memory 3 bytes sha256:"));
    let e = r
        .resolve_config(&json!({"k": "secret:binary"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(e.to_string().contains("/k"), "{e}");
}

#[tokio::test]
async fn allow_list_refuses_before_any_call() {
    let (p, r) = setup(ResolverOptions {
        allowed_prefixes: vec!["/my/database/".into(), "plain".into()],
        ..fast()
    });
    assert_eq!(
        ok(&r, "secret:my/database/credentials/username").await.0,
        "admin"
    );
    assert_eq!(ok(&r, "secret:plain").await.0, "just-text");
    let before = p.calls();
    let e = r.resolve_str("secret:a/b").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAllowed);
    assert!(e.to_string().contains("SECRETS_ALLOWED_PREFIXES"), "{e}");
    assert_eq!(p.calls(), before);
}

#[tokio::test]
async fn config_resolution_dedupes_and_masks() {
    let (p, r) = setup(fast());
    let mut refs = Vec::new();
    for _ in 0..50 {
        refs.push(json!({"u": "secret:my/database/credentials/username", "p": "secret:my/database/credentials/password", "x": "secret:plain"}));
    }
    let cfg = json!({"list": refs, "host": "db:5432", "note": "a secret: here"});
    let resolved = r.resolve_config(&cfg).await.unwrap();
    // whole-name misses for the two key references (1 each) + the parent + plain.
    assert_eq!(p.calls(), 4, "{:?}", r.stats());
    assert_eq!(resolved.references().len(), 150);
    assert_eq!(resolved.values().len(), 3);
    assert_eq!(resolved.expose()["list"][7]["p"], "s3cr3t!");
    assert_eq!(resolved.expose()["note"], "a secret: here");
    let dbg = format!("{resolved:?}");
    assert!(!dbg.contains("s3cr3t!") && !dbg.contains("admin"), "{dbg}");
    assert!(dbg.contains("secret:plain"));
    assert_eq!(
        resolved
            .masker()
            .mask("login admin with s3cr3t! (just-text)"),
        "login *** with *** (***)"
    );
    // Second time: all from cache.
    r.resolve_config(&cfg).await.unwrap();
    assert_eq!(p.calls(), 4);
    assert!(r.stats().cache_hits >= 4);
}

#[tokio::test]
async fn yaml_config_and_resolution_debug_are_masked() {
    let (_, r) = setup(fast());
    let text = "workflowConfig:\n  user: secret:my/database/credentials/username\n  pw: secret:my/database/credentials/password\n";
    let resolved = r.resolve_yaml(text).await.unwrap();
    let y = resolved.expose_yaml();
    assert!(y.contains("user: admin") && y.contains("s3cr3t!"), "{y}");
    let res = r
        .resolve_str("secret:my/database/credentials/password")
        .await
        .unwrap();
    let dbg = format!("{res:?}");
    assert!(!dbg.contains("s3cr3t!"), "{dbg}");
    assert!(dbg.contains("***"), "{dbg}");
}

#[tokio::test]
async fn cli_lines() {
    let (_, r) = setup(fast());
    let (ok_, line) = r.cli_line("secret:plain", false).await;
    assert!(ok_);
    // sha256("just-text") starts with 8 hex digits; the value is not printed.
    assert!(
        line.starts_with("secret:plain ok memory 9 bytes sha256:"),
        "{line}"
    );
    assert_eq!(
        line.len(),
        "secret:plain ok memory 9 bytes sha256:".len() + 8
    );
    assert!(!line.contains("just-text"));
    let (_, line) = r.cli_line("secret:plain", true).await;
    assert!(line.ends_with(" value=just-text"), "{line}");
    let (_, line) = r.cli_line("secret:binary", true).await;
    assert!(line.ends_with(" value=base64:/wD+"), "{line}");
    let (ok_, line) = r.cli_line("secret:nope", false).await;
    assert!(!ok_);
    assert!(
        line.starts_with("secret:nope error secret reference `secret:nope` not resolved"),
        "{line}"
    );
    assert!(line.contains("fix:"), "{line}");
    let (ok_, line) = r.cli_line("nope", false).await;
    assert!(
        !ok_ && line.contains("does not start with `secret:`"),
        "{line}"
    );
}

#[tokio::test(start_paused = true)]
async fn cache_ttl_expires() {
    let (p, r) = setup(ResolverOptions {
        cache_ttl: Duration::from_secs(60),
        ..fast()
    });
    ok(&r, "secret:plain").await;
    ok(&r, "secret:plain").await;
    assert_eq!(p.calls(), 1);
    tokio::time::advance(Duration::from_secs(59)).await;
    ok(&r, "secret:plain").await;
    assert_eq!(p.calls(), 1);
    p.insert("plain", "rotated");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(ok(&r, "secret:plain").await.0, "rotated");
    assert_eq!(p.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn negative_answers_are_cached_briefly() {
    let (p, r) = setup(fast());
    assert!(r.resolve_str("secret:missing").await.is_err());
    assert!(r.resolve_str("secret:missing").await.is_err());
    assert_eq!(p.calls(), 1);
    p.insert("missing", "now-here");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(ok(&r, "secret:missing").await.0, "now-here");
}

#[tokio::test(start_paused = true)]
async fn cache_is_size_bounded_lru() {
    let (p, r) = setup(ResolverOptions {
        cache_max_entries: 2,
        ..fast()
    });
    for i in 0..5 {
        p.insert(&format!("s{i}"), format!("v{i}"));
    }
    ok(&r, "secret:s0").await;
    ok(&r, "secret:s1").await;
    tokio::time::advance(Duration::from_millis(1)).await;
    ok(&r, "secret:s0").await; // s0 is now more recent than s1
    tokio::time::advance(Duration::from_millis(1)).await;
    ok(&r, "secret:s2").await; // evicts s1
    assert_eq!(r.stats().cache_entries, 2);
    let calls = p.calls();
    ok(&r, "secret:s0").await;
    assert_eq!(p.calls(), calls, "s0 should still be cached");
    ok(&r, "secret:s1").await;
    assert_eq!(p.calls(), calls + 1, "s1 should have been evicted");
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_call() {
    let (p, r) = setup(fast());
    p.set_delay(Some(Duration::from_millis(500)));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let r = r.clone();
        tasks.push(tokio::spawn(
            async move { r.resolve_str("secret:plain").await },
        ));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().value.expose_str(),
            Some("just-text")
        );
    }
    assert_eq!(p.calls(), 1);
}

fn throttled(after: Option<Duration>) -> ProviderError {
    ProviderError::new(ErrorKind::Throttled, "ThrottlingException").with_retry_after(after)
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_honouring_retry_after() {
    let (p, r) = setup(fast());
    p.fail_next(
        "plain",
        [throttled(Some(Duration::from_secs(3))), throttled(None)],
    );
    let start = tokio::time::Instant::now();
    assert_eq!(ok(&r, "secret:plain").await.0, "just-text");
    let took = start.elapsed();
    assert_eq!(p.calls(), 3);
    // 3 s Retry-After, then a backoff of 100-200 ms for attempt 2.
    assert!(took >= Duration::from_millis(3100), "{took:?}");
    assert!(took <= Duration::from_millis(3200), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_never_block_a_minute() {
    let (p, r) = setup(fast());
    p.fail_next(
        "plain",
        (0..10).map(|_| throttled(Some(Duration::from_secs(60)))),
    );
    let start = tokio::time::Instant::now();
    let e = r.resolve_str("secret:plain").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert!(
        e.to_string()
            .contains("fix: the secrets manager is throttling"),
        "{e}"
    );
    assert!(
        start.elapsed() <= Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(p.calls() <= 4);
    // A non-transient error is not retried.
    let (p, r) = setup(fast());
    p.fail_next(
        "/plain",
        [ProviderError::new(ErrorKind::AccessDenied, "denied")],
    );
    let res = r.resolve_str("secret:/plain").await;
    // access denied on `/plain` falls through to `plain`.
    assert_eq!(res.unwrap().value.expose_str(), Some("just-text"));
    assert_eq!(p.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_applies() {
    let (p, r) = setup(ResolverOptions {
        attempt_timeout: Duration::from_secs(1),
        max_attempts: 2,
        ..fast()
    });
    p.set_delay(Some(Duration::from_secs(30)));
    let start = tokio::time::Instant::now();
    let e = r.resolve_str("secret:plain").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(p.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_value_served_for_a_bounded_time_on_transient_error() {
    let (p, r) = setup(ResolverOptions {
        cache_ttl: Duration::from_secs(10),
        stale_grace: Duration::from_secs(100),
        max_attempts: 1,
        ..fast()
    });
    ok(&r, "secret:plain").await;
    tokio::time::advance(Duration::from_secs(11)).await;
    p.fail_next("plain", [ProviderError::new(ErrorKind::Unavailable, "503")]);
    let res = r.resolve_str("secret:plain").await.unwrap();
    assert!(res.stale);
    assert_eq!(res.value.expose_str(), Some("just-text"));
    assert_eq!(r.stats().stale_served, 1);
    // Past ttl + grace: the error comes through.
    tokio::time::advance(Duration::from_secs(100)).await;
    p.fail_next("plain", [ProviderError::new(ErrorKind::Unavailable, "503")]);
    let e = r.resolve_str("secret:plain").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    // A non-transient error never serves stale.
    ok(&r, "secret:plain").await;
    tokio::time::advance(Duration::from_secs(11)).await;
    p.fail_next(
        "plain",
        [ProviderError::new(ErrorKind::AccessDenied, "revoked")],
    );
    p.fail_next(
        "plain",
        [ProviderError::new(ErrorKind::AccessDenied, "revoked")],
    );
    assert_eq!(
        r.resolve_str("secret:plain").await.unwrap_err().kind(),
        ErrorKind::AccessDenied
    );
}

#[tokio::test(start_paused = true)]
async fn transient_error_on_whole_name_does_not_fall_back_to_key_rule() {
    let (p, r) = setup(ResolverOptions {
        max_attempts: 1,
        ..fast()
    });
    p.fail_next("a/b", [ProviderError::new(ErrorKind::Unavailable, "503")]);
    let e = r.resolve_str("secret:a/b").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(!e.to_string().contains("key `b`"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_is_respected() {
    let p = Arc::new(MemoryProvider::new());
    for i in 0..10 {
        p.insert(&format!("s{i}"), "v");
    }
    p.set_delay(Some(Duration::from_secs(1)));
    let r = SecretResolver::new(
        p.clone(),
        ResolverOptions {
            max_concurrency: 2,
            ..fast()
        },
    );
    let refs: Vec<SecretRef> = (0..10)
        .map(|i| SecretRef::parse(&format!("secret:s{i}")).unwrap())
        .collect();
    let start = tokio::time::Instant::now();
    let res = r.resolve_all(&refs).await;
    assert!(res.iter().all(Result::is_ok));
    // 10 calls of 1 s, 2 at a time.
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn health_maps_not_found_to_ok() {
    let (p, r) = setup(fast());
    r.health().await.unwrap();
    p.fail_next(
        "ingestion-runner-health-probe",
        [ProviderError::new(ErrorKind::Unauthenticated, "bad token")],
    );
    let e = r.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.to_string().contains("credentials"), "{e}");
}

#[tokio::test]
async fn env_provider() {
    let p = EnvProvider::with_lookup("RUNNER_SECRET_", |k| match k {
        "RUNNER_SECRET_DB_CREDS" => Some(r#"{"user":"u1"}"#.into()),
        "RUNNER_SECRET_TOKEN" => Some("t0k".into()),
        _ => None,
    });
    let r = SecretResolver::new(Arc::new(p), fast());
    assert_eq!(ok(&r, "secret:/token").await.0, "t0k");
    assert_eq!(ok(&r, "secret:db-creds/user").await.0, "u1");
    let e = r.resolve_str("secret:db-creds/pw").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyMissing);
    assert!(e.to_string().contains("RUNNER_SECRET_DB_CREDS_PW"), "{e}");
}

#[tokio::test]
async fn file_provider() {
    let dir = std::env::temp_dir().join(format!("runner-secrets-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secrets.json");
    std::fs::write(
        &path,
        r#"{"db/creds": {"user": "u2", "port": 1}, "token": "abc"}"#,
    )
    .unwrap();
    let r = SecretResolver::new(Arc::new(FileProvider::new(&path)), fast());
    r.health().await.unwrap();
    assert_eq!(ok(&r, "secret:/db/creds/user").await.0, "u2");
    assert_eq!(ok(&r, "secret:token").await.0, "abc");
    assert_eq!(ok(&r, "secret:db/creds/port").await.0, "1");
    let e = r.resolve_str("secret:token?version=2").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    std::fs::write(&path, "not json").unwrap();
    r.clear_cache();
    let e = r.resolve_str("secret:zzz").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    assert!(!e.to_string().contains("not json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The resolved config is built on demand; every way of taking it out gives the same tree, and
/// taking only the original never puts a value in it.
#[tokio::test]
async fn resolved_config_is_built_on_demand_and_the_same_every_way() {
    let (_p, r) = setup(fast());
    let cfg = json!({
        "a": "secret:plain",
        "b": ["secret:my/database/credentials/password", {"c": "secret:plain"}],
        "d": 1
    });
    let want = json!({"a": "just-text", "b": ["s3cr3t!", {"c": "just-text"}], "d": 1});
    let resolved = r.resolve_config(&cfg).await.unwrap();
    assert_eq!(
        resolved.values().len(),
        2,
        "a value used twice is kept once"
    );
    assert_eq!(resolved.expose(), &want);
    assert_eq!(
        resolved.expose_yaml(),
        serde_yaml_ng::to_string(&want).unwrap()
    );
    assert_eq!(resolved.clone().into_exposed(), want);
    let (original, built) = resolved.clone().into_configs();
    assert_eq!((&original, &built), (&cfg, &want));
    // Not exposed before: built by the consuming calls themselves.
    let fresh = r.resolve_config(&cfg).await.unwrap();
    assert_eq!(fresh.clone().into_exposed(), want);
    assert_eq!(fresh.clone().into_configs().1, want);
    assert_eq!(fresh.into_original(), cfg);

    let plain = runner_secrets::ResolvedConfig::without_references(json!({"x": "y"}));
    assert_eq!(plain.expose(), &json!({"x": "y"}));
    assert_eq!(plain.into_configs(), (json!({"x": "y"}), json!({"x": "y"})));
}
