//! The error table of docs/protocol.md ("Bad input"), row by row, on both session halves.

use std::time::Duration;

use runner_protocol::*;
use serde_json::{Value, json};

fn hello() -> Hello {
    Hello {
        agent_id: "agent-1".into(),
        instance_id: "inst-1".into(),
        runner_version: "0.1.0".into(),
        protocol_versions: vec![1],
        capabilities: vec![],
        executor: "local".into(),
        namespace: "local".into(),
        last_event_seq: 0,
    }
}

fn accept_opts(acked: Option<u64>) -> AcceptOptions {
    AcceptOptions {
        session_id: "s-1".into(),
        heartbeat_interval: Duration::from_secs(15),
        acked_through: acked,
        server_version: None,
    }
}

/// A runner and a control plane with the handshake done.
fn established() -> (RunnerSession, ControlSession) {
    let mut runner = RunnerSession::new(hello(), Limits::DEFAULT);
    let mut cp = ControlSession::new(Limits::DEFAULT);
    let h = runner.hello_frame();
    assert!(matches!(cp.receive(h.as_bytes()), ControlInput::Hello(_)));
    let w = cp.accept(accept_opts(None)).expect("versions match");
    assert!(matches!(
        runner.receive(w.as_bytes()),
        RunnerInput::Accepted(_)
    ));
    assert_eq!(runner.state(), SessionState::Established { version: 1 });
    (runner, cp)
}

fn reply_of(input: RunnerInput) -> Value {
    match input {
        RunnerInput::Reply(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn handshake_negotiates_heartbeat_interval() {
    let (runner, cp) = established();
    assert_eq!(runner.heartbeat_interval(), Some(Duration::from_secs(15)));
    assert_eq!(cp.hello().unwrap().agent_id, "agent-1");
}

#[test]
fn no_common_version_is_rejected_with_reason() {
    let mut runner = RunnerSession::new(hello(), Limits::DEFAULT);
    let mut cp = ControlSession::new(Limits::DEFAULT).with_versions(vec![7]);
    cp.receive(runner.hello_frame().as_bytes());
    let reject = cp.accept(accept_opts(None)).expect_err("no common version");
    match runner.receive(reject.as_bytes()) {
        RunnerInput::Rejected(r) => {
            assert_eq!(r.code, RejectCode::UnsupportedVersion);
            assert!(r.reason.contains("upgrade"), "{}", r.reason);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runner.state(), SessionState::Closed);
}

#[test]
fn malformed_json_gets_error_and_session_goes_on() {
    let (mut runner, mut cp) = established();
    let reply = reply_of(runner.receive(b"{not json"));
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["body"]["code"], "malformed");
    // Still usable.
    let (_, req) = cp.request(Request::Ping {}).unwrap();
    assert!(matches!(
        runner.receive(req.as_bytes()),
        RunnerInput::Request { .. }
    ));
}

#[test]
fn oversized_frame_is_refused() {
    let (mut runner, _) = established();
    let big = format!(
        r#"{{"v":1,"id":"x","type":"heartbeat","body":{{"pad":"{}"}}}}"#,
        "a".repeat(Limits::DEFAULT.max_frame_bytes)
    );
    let reply = reply_of(runner.receive(big.as_bytes()));
    assert_eq!(reply["body"]["code"], "frame_too_large");
}

#[test]
fn deep_nesting_is_refused() {
    let (mut runner, _) = established();
    let deep = format!(
        r#"{{"v":1,"id":"x","type":"heartbeat","body":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(
        reply_of(runner.receive(deep.as_bytes()))["body"]["code"],
        "too_deep"
    );
}

#[test]
fn invalid_utf8_is_malformed() {
    let (mut runner, _) = established();
    assert_eq!(
        reply_of(runner.receive(&[0x7b, 0xff, 0xfe, 0x7d]))["body"]["code"],
        "malformed"
    );
}

#[test]
fn unknown_type_names_the_type_and_keeps_the_id() {
    let (mut runner, _) = established();
    let reply = reply_of(runner.receive(br#"{"v":1,"id":"c-9","type":"hearbeat","body":{}}"#));
    assert_eq!(reply["re"], "c-9");
    assert_eq!(reply["body"]["code"], "unknown_type");
    assert!(
        reply["body"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `heartbeat`")
    );
}

#[test]
fn unknown_operation_is_a_response_error() {
    let (mut runner, _) = established();
    let reply =
        reply_of(runner.receive(br#"{"v":1,"id":"c-9","type":"request","body":{"op":"runPipe"}}"#));
    assert_eq!(reply["type"], "response");
    assert_eq!(reply["re"], "c-9");
    assert_eq!(reply["body"]["error"]["code"], "unknown_operation");
}

#[test]
fn invalid_request_body_names_the_field() {
    let (mut runner, _) = established();
    let reply = reply_of(runner.receive(br#"{"v":1,"id":"c-3","type":"request","body":{"op":"killIngestionRun","pipeline":{"name":"p","pipelineType":"metadata"}}}"#));
    assert_eq!(reply["body"]["error"]["code"], "invalid_request");
    assert!(
        reply["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runId")
    );
}

#[test]
fn wrong_version_is_refused() {
    let (mut runner, _) = established();
    let reply = reply_of(runner.receive(br#"{"v":9,"id":"c-3","type":"heartbeat","body":{}}"#));
    assert_eq!(reply["body"]["code"], "unsupported_version");
    assert_eq!(reply["re"], "c-3");
}

#[test]
fn request_before_welcome_is_unexpected() {
    let mut runner = RunnerSession::new(hello(), Limits::DEFAULT);
    runner.hello_frame();
    let reply =
        reply_of(runner.receive(br#"{"v":1,"id":"c-1","type":"request","body":{"op":"ping"}}"#));
    assert_eq!(reply["body"]["error"]["code"], "unexpected_message");
}

#[test]
fn response_to_unknown_id_is_dropped() {
    let (mut runner, mut cp) = established();
    let stray = runner.respond(
        &MessageId::new("c-404", 64).unwrap(),
        Response::Result(OpResult::Pong {}),
    );
    assert!(matches!(
        cp.receive(stray.as_bytes()),
        ControlInput::Ignored(_)
    ));
    // A real request is matched once, then its id is forgotten.
    let (id, req) = cp.request(Request::Ping {}).unwrap();
    let RunnerInput::Request { id: rid, .. } = runner.receive(req.as_bytes()) else {
        panic!()
    };
    let resp = runner.respond(&rid, Response::Result(OpResult::Pong {}));
    assert!(
        matches!(cp.receive(resp.as_bytes()), ControlInput::Response { ref re, op: "ping", .. } if *re == id)
    );
    assert!(matches!(
        cp.receive(resp.as_bytes()),
        ControlInput::Ignored(_)
    ));
}

#[test]
fn events_are_acked_cumulatively_and_replays_are_duplicates() {
    let (mut runner, mut cp) = established();
    let ev = |seq| EventFrame {
        seq,
        event: RunnerEvent::RunStatus {
            pipeline_fqn: "svc.p".into(),
            pipeline_type: PipelineType::Metadata,
            status: PipelineStatus {
                run_id: "r".into(),
                pipeline_state: PipelineState::Running,
                start_date: None,
                timestamp: None,
                end_date: None,
                status: None,
                metadata: None,
            },
        },
    };
    let ControlInput::Event { ack, .. } = cp.receive(runner.event(ev(1)).as_bytes()) else {
        panic!()
    };
    assert_eq!(runner.receive(ack.as_bytes()), RunnerInput::Acked(1));
    let ControlInput::Event { ack, .. } = cp.receive(runner.event(ev(3)).as_bytes()) else {
        panic!()
    };
    assert_eq!(runner.receive(ack.as_bytes()), RunnerInput::Acked(3));
    match cp.receive(runner.event(ev(3)).as_bytes()) {
        ControlInput::DuplicateEvent { seq: 3, ack } => {
            assert_eq!(runner.receive(ack.as_bytes()), RunnerInput::Acked(3))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn welcome_with_acked_through_makes_older_events_duplicates() {
    let mut runner = RunnerSession::new(hello(), Limits::DEFAULT);
    let mut cp = ControlSession::new(Limits::DEFAULT);
    cp.receive(runner.hello_frame().as_bytes());
    let w = cp.accept(accept_opts(Some(5))).unwrap();
    let RunnerInput::Accepted(welcome) = runner.receive(w.as_bytes()) else {
        panic!()
    };
    assert_eq!(welcome.acked_through, Some(5));
    let frame = runner.event(EventFrame {
        seq: 5,
        event: RunnerEvent::RunStatus {
            pipeline_fqn: "a".into(),
            pipeline_type: PipelineType::Dbt,
            status: serde_json::from_value(json!({"runId": "r", "pipelineState": "success"}))
                .unwrap(),
        },
    });
    assert!(matches!(
        cp.receive(frame.as_bytes()),
        ControlInput::DuplicateEvent { seq: 5, .. }
    ));
}

#[test]
fn control_plane_bounds_pending_requests() {
    let limits = Limits {
        max_pending_requests: 2,
        ..Limits::DEFAULT
    };
    let mut runner = RunnerSession::new(hello(), limits);
    let mut cp = ControlSession::new(limits);
    cp.receive(runner.hello_frame().as_bytes());
    runner.receive(cp.accept(accept_opts(None)).unwrap().as_bytes());
    cp.request(Request::Ping {}).unwrap();
    cp.request(Request::Ping {}).unwrap();
    assert_eq!(
        cp.request(Request::Ping {}).unwrap_err().code,
        ErrorCode::Busy
    );
}

#[test]
fn oversized_response_is_replaced_by_an_error() {
    let limits = Limits {
        max_frame_bytes: 512,
        ..Limits::DEFAULT
    };
    let mut runner = RunnerSession::new(hello(), limits);
    let id = MessageId::new("c-1", 64).unwrap();
    let text = runner.respond(
        &id,
        Response::Result(OpResult::HostIp {
            ip: "x".repeat(1000),
        }),
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["body"]["error"]["code"], "internal");
    assert!(text.len() < 512);
}

#[test]
fn a_json_array_is_not_a_frame() {
    let (mut runner, _) = established();
    let reply = reply_of(runner.receive(br#"[1,"c31",null,"heartbeat",{}]"#));
    assert_eq!(reply["body"]["code"], "malformed");
}

#[test]
fn generated_ids_differ_between_sessions() {
    let (_, mut a) = established();
    let (_, mut b) = established();
    let (ia, _) = a.request(Request::Ping {}).unwrap();
    let (ib, _) = b.request(Request::Ping {}).unwrap();
    assert_ne!(
        ia, ib,
        "a restarted control plane must not reuse request ids"
    );
}
