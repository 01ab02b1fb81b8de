//! Property tests: every message survives encode -> decode unchanged, and the decoder never panics.

use proptest::prelude::*;
use runner_protocol::*;
use serde_json::{Map, Value, json};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,24}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
    ]
}

fn id() -> impl Strategy<Value = MessageId> {
    "[!-~]{1,40}".prop_map(|s| MessageId::new(s, 128).unwrap())
}

fn pipeline_type() -> impl Strategy<Value = PipelineType> {
    prop_oneof![
        Just(PipelineType::Metadata),
        Just(PipelineType::Profiler),
        Just(PipelineType::TestSuite),
        Just(PipelineType::AutoClassification),
        "[a-z]{3,10}X".prop_map(PipelineType::Other),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn pipeline() -> impl Strategy<Value = IngestionPipeline> {
    (
        text(),
        pipeline_type(),
        json_value(),
        proptest::option::of("[0-9*/ ]{1,20}"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(name, pipeline_type, source, schedule, enabled)| {
            let mut extra = Map::new();
            extra.insert("displayName".into(), json!("shown"));
            IngestionPipeline {
                id: Some("3f1c".into()),
                fully_qualified_name: Some(format!("svc.{name}")),
                name,
                pipeline_type,
                source_config: json!({ "config": source }),
                airflow_config: AirflowConfig {
                    schedule_interval: schedule,
                    ..Default::default()
                },
                service: None,
                logger_level: None,
                enabled,
                open_metadata_server_connection: None,
                extra,
            }
        })
}

fn state() -> impl Strategy<Value = PipelineState> {
    prop_oneof![
        Just(PipelineState::Queued),
        Just(PipelineState::Running),
        Just(PipelineState::Success),
        Just(PipelineState::Failed),
        Just(PipelineState::PartialSuccess),
        Just(PipelineState::Stopped),
    ]
}

fn status() -> impl Strategy<Value = PipelineStatus> {
    (text(), state(), proptest::option::of(0i64..i64::MAX)).prop_map(|(run_id, s, t)| {
        PipelineStatus {
            run_id,
            pipeline_state: s,
            start_date: t,
            timestamp: t,
            end_date: None,
            status: None,
            metadata: None,
        }
    })
}

fn request() -> impl Strategy<Value = Request> {
    let p = || pipeline().prop_map(Box::new);
    prop_oneof![
        (p(), proptest::option::of(json_value()))
            .prop_map(|(pipeline, service)| Request::DeployPipeline { pipeline, service }),
        (p(), proptest::option::of(text())).prop_map(|(pipeline, run_id)| Request::RunPipeline {
            pipeline,
            service: None,
            options: RunOptions {
                run_id,
                config_override: None
            }
        }),
        p().prop_map(|pipeline| Request::KillIngestion { pipeline }),
        (p(), text()).prop_map(|(pipeline, run_id)| Request::KillIngestionRun { pipeline, run_id }),
        p().prop_map(|pipeline| Request::DeletePipeline { pipeline }),
        (p(), proptest::option::of(any::<bool>()))
            .prop_map(|(pipeline, enabled)| Request::ToggleIngestion { pipeline, enabled }),
        p().prop_map(|pipeline| Request::GetQueuedPipelineStatus { pipeline }),
        (p(), proptest::option::of(text()))
            .prop_map(|(pipeline, after)| Request::GetLastIngestionLogs { pipeline, after }),
        (p(), text(), proptest::option::of(text())).prop_map(|(pipeline, run_id, after)| {
            Request::GetIngestionLogs {
                pipeline,
                run_id,
                after,
            }
        }),
        Just(Request::GetServiceStatus {}),
        Just(Request::GetHostIp {}),
        json_value().prop_map(|workflow| Request::RunAutomationsWorkflow { workflow }),
        json_value().prop_map(|application| Request::RunApplicationFlow { application }),
        json_value().prop_map(|application| Request::ValidateAppRegistration { application }),
        Just(Request::Ping {}),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Malformed),
        Just(ErrorCode::InvalidRequest),
        Just(ErrorCode::Busy),
        Just(ErrorCode::SecretUnresolved),
        Just(ErrorCode::Forbidden),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (text(), text(), 0u64..1000).prop_map(|(agent_id, ns, seq)| Message::Hello(Hello {
            agent_id,
            instance_id: "i-1".into(),
            runner_version: "0.1.0".into(),
            protocol_versions: vec![1],
            capabilities: vec!["events".into()],
            executor: "local".into(),
            namespace: ns,
            last_event_seq: seq,
        })),
        (1000u64..100_000, proptest::option::of(0u64..100)).prop_map(|(ms, acked)| {
            Message::Welcome(Welcome {
                protocol_version: 1,
                heartbeat_interval_ms: ms,
                session_id: "s".into(),
                acked_through: acked,
                server_version: None,
            })
        }),
        text().prop_map(|reason| Message::Reject(Reject {
            code: RejectCode::Unauthorized,
            reason,
            retry_after_ms: Some(5),
            protocol_versions: vec![],
        })),
        (0u32..100, any::<bool>()).prop_map(|(n, ok)| Message::Heartbeat(Heartbeat {
            readiness: Some(Readiness {
                executor: ComponentHealth { ok, detail: None },
                secrets: ComponentHealth {
                    ok: !ok,
                    detail: Some("x".into())
                },
            }),
            load: Some(Load {
                runs_in_flight: n,
                run_capacity: 100,
                ..Default::default()
            }),
        })),
        request().prop_map(Message::Request),
        (any::<u16>(), proptest::option::of(text())).prop_map(|(code, run_id)| {
            Message::Response(Response::Result(OpResult::PipelineResponse(
                PipelineServiceClientResponse {
                    code,
                    platform: "runner".into(),
                    reason: None,
                    version: Some("1".into()),
                    run_id,
                },
            )))
        }),
        prop::collection::vec(status(), 0..3).prop_map(|statuses| Message::Response(
            Response::Result(OpResult::Statuses { statuses })
        )),
        (error_code(), text())
            .prop_map(|(c, m)| Message::Response(Response::Error(ErrorBody::new(c, m)))),
        (any::<u64>(), status(), pipeline_type()).prop_map(|(seq, status, pipeline_type)| {
            Message::Event(EventFrame {
                seq,
                event: RunnerEvent::RunStatus {
                    pipeline_fqn: "a.b".into(),
                    pipeline_type,
                    status,
                },
            })
        }),
        any::<u64>().prop_map(|through| Message::Ack(Ack { through })),
        (error_code(), text()).prop_map(|(c, m)| Message::Error(ErrorBody::new(c, m))),
        (text(), any::<bool>())
            .prop_map(|(reason, reconnect)| Message::Goodbye(Goodbye { reason, reconnect })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(id in id(), re in proptest::option::of(id()), message in message()) {
        let frame = Frame { v: 1, id, re, message };
        let text = encode(&frame);
        let back = decode(text.as_bytes(), &Limits::DEFAULT).expect("own frames decode");
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn decoder_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, &Limits::DEFAULT);
    }

    #[test]
    fn decoder_never_panics_on_mutated_frames(message in message(), cut in 0usize..400, byte in any::<u8>()) {
        let text = encode(&Frame { v: 1, id: MessageId::new("x", 8).unwrap(), re: None, message });
        let mut bytes = text.into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        let _ = decode(&bytes, &Limits::DEFAULT);
        bytes.truncate(at);
        // A frame cut short is never valid: its outer object is not closed.
        prop_assert!(decode(&bytes, &Limits::DEFAULT).is_err());
    }
}

#[test]
fn pipeline_keeps_unknown_fields() {
    let raw = json!({
        "name": "ingest", "pipelineType": "metadata", "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "airflowConfig": {"scheduleInterval": "0 * * * *", "workflowDefaultView": "tree"},
        "owners": [{"id": "u1"}], "deployed": true
    });
    let p: IngestionPipeline = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(p.extra.get("deployed"), Some(&json!(true)));
    assert_eq!(
        p.airflow_config.schedule_interval.as_deref(),
        Some("0 * * * *")
    );
    assert_eq!(serde_json::to_value(&p).unwrap(), raw);
}
