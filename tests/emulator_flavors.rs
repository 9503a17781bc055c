//! The same end-to-end checks against both flavours (the Java nucleus and nucleus lite),
//! then what only lite does: unsupported operations, PING and oversized frames close.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::emulator::{Emulator, Flavor, RecipeFormat, LITE_OPERATIONS};
use ggipc::model::{
    ConfigurationUpdateEvents, GetConfigurationRequest, IoTCoreMessage, IpcError, LifecycleState,
    PublishToIoTCoreRequest, PublishToTopicRequest, Qos, ReportedLifecycleState,
    SubscribeToConfigurationUpdateRequest, SubscribeToIoTCoreRequest, SubscribeToTopicRequest,
    SubscriptionResponseMessage, Timestamp, UpdateConfigurationRequest, UpdateStateRequest,
};
use ggipc::rpc::{MessageType, RpcMessage};
use ggipc::{CallOptions, Client};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

const RECIPE: &str = r#"{
  "ComponentName": "com.example.Flavored",
  "ComponentVersion": "1.0.0",
  "ComponentConfiguration": { "DefaultConfiguration": {
    "threshold": 5, "nested": { "a": 1 },
    "accessControl": {
      "aws.greengrass.ipc.pubsub": { "p": { "operations": ["*"], "resources": ["flavor/*"] } },
      "aws.greengrass.ipc.mqttproxy": { "m": { "operations": ["*"], "resources": ["dt/#"] } }
    } } }
}"#;

fn start(flavor: Flavor, name: &str) -> (Emulator, Client) {
    let emu = Emulator::builder()
        .socket_path(unique_socket_path(name))
        .flavor(flavor)
        .recipe_str(RECIPE, RecipeFormat::Json)
        .start()
        .unwrap();
    let mut builder = emu.client_builder();
    if flavor == Flavor::Lite {
        builder = builder.max_frame_size(10_000);
    }
    let client = builder.connect().unwrap();
    (emu, client)
}

fn same_checks(flavor: Flavor) {
    let (emu, client) = start(flavor, &format!("flavor-{flavor:?}"));

    // Local pub/sub with a wildcard filter, own messages included.
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("flavor/+")
                .with_receive_mode(ggipc::model::ReceiveMode::ReceiveAllMessages),
            move |e: SubscriptionResponseMessage| {
                tx.send(e).unwrap();
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("flavor/x", json!({"v": 1})))
        .unwrap();
    let event = expect_within(&rx, WAIT, "pub/sub event");
    assert_eq!(event.json(), Some(&json!({"v": 1})));

    // A denied call is a typed UnauthorizedError with its message (message or _message).
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("elsewhere", json!(1)))
        .unwrap_err();
    match err.as_service_error() {
        Some(IpcError::Unauthorized(e)) => {
            assert!(e
                .message
                .as_deref()
                .unwrap_or("")
                .contains("com.example.Flavored"))
        }
        other => panic!("{flavor:?}: {other:?}"),
    }

    // Configuration read, update, and the update event.
    let value = client
        .get_configuration(GetConfigurationRequest::new(["threshold"]))
        .unwrap();
    assert_eq!(value.value, Some(json!({"threshold": 5})));
    let (ctx, crx) = unbounded();
    let _cfg = client
        .subscribe_to_configuration_update(
            SubscribeToConfigurationUpdateRequest::new(["nested"]),
            move |e: ConfigurationUpdateEvents| {
                ctx.send(e).unwrap();
            },
        )
        .unwrap();
    client
        .update_configuration(
            UpdateConfigurationRequest::new(Timestamp::now(), json!({"b": 2}))
                .with_key_path(["nested"]),
        )
        .unwrap();
    let ConfigurationUpdateEvents::ConfigurationUpdateEvent(update) =
        expect_within(&crx, WAIT, "configuration event")
    else {
        panic!("unexpected event")
    };
    assert_eq!(update.key_path, vec!["nested", "b"]);

    // Lifecycle state.
    client
        .update_state(UpdateStateRequest::new(ReportedLifecycleState::Running))
        .unwrap();
    assert_eq!(
        emu.device().component_state("com.example.Flavored"),
        Some(LifecycleState::Running)
    );

    // IoT Core through the cloud stand-in, both directions.
    let (itx, irx) = unbounded();
    let _iot = client
        .subscribe_to_iot_core(
            SubscribeToIoTCoreRequest::new("dt/+/cmd", Qos::AtLeastOnce),
            move |m: IoTCoreMessage| {
                itx.send(m).unwrap();
            },
        )
        .unwrap();
    assert_eq!(emu.cloud().inject_message("dt/dev1/cmd", b"go".to_vec()), 1);
    let m = expect_within(&irx, WAIT, "cloud message");
    assert_eq!((m.topic(), m.payload()), ("dt/dev1/cmd", &b"go"[..]));
    client
        .publish_to_iot_core(
            PublishToIoTCoreRequest::new("dt/dev1/telemetry", Qos::AtLeastOnce)
                .with_payload(b"42".to_vec()),
        )
        .unwrap();
    let published = emu.cloud().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].payload, b"42");
    assert_eq!(published[0].qos, Qos::AtLeastOnce);

    // A big (but allowed) message still passes below the lite frame limit.
    let big = "x".repeat(8_000);
    client
        .publish_to_topic(PublishToTopicRequest::json("flavor/big", json!(big)))
        .unwrap();
    let event = expect_within(&rx, WAIT, "big event");
    assert_eq!(event.json(), Some(&json!(big)));
    assert!(client.is_connected());
}

#[test]
fn nucleus_passes_the_end_to_end_checks() {
    same_checks(Flavor::Nucleus);
}

#[test]
fn lite_passes_the_end_to_end_checks() {
    same_checks(Flavor::Lite);
}

#[test]
fn lite_refuses_operations_it_does_not_serve_with_service_error() {
    let (_emu, client) = start(Flavor::Lite, "lite-unsupported");
    assert!(!LITE_OPERATIONS.contains(&"GetSecretValue"));
    let err = client
        .call_json(
            "GetSecretValue",
            &json!({"secretId": "x"}),
            CallOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(IpcError::Service(_))),
        "{err:?}"
    );
    assert!(client.is_connected());
    // The nucleus serves it (and says ResourceNotFound for an unknown secret).
    let (_emu, client) = start(Flavor::Nucleus, "nucleus-secret");
    let err = client
        .call_json(
            "GetSecretValue",
            &json!({"secretId": "x"}),
            CallOptions::default(),
        )
        .unwrap_err();
    // An unknown secret name is ResourceNotFoundError, checked before authorization.
    assert!(
        matches!(err.as_service_error(), Some(IpcError::ResourceNotFound(_))),
        "{err:?}"
    );
}

fn raw_connect(emu: &Emulator) -> (std::os::unix::net::UnixStream, FrameDecoder) {
    let mut socket = std::os::unix::net::UnixStream::connect(emu.socket_path()).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut decoder = FrameDecoder::new(Limits::default());
    let mut connect = RpcMessage::new(MessageType::Connect, 0, 0);
    connect.version = Some("0.1.0".into());
    connect.payload = json!({"authToken": emu.auth_token()})
        .to_string()
        .into_bytes()
        .into();
    write_message(&mut socket, &connect);
    let ack = read_message(&mut socket, &mut decoder).expect("CONNECT_ACK");
    assert_eq!(ack.message_type, MessageType::ConnectAck);
    (socket, decoder)
}

#[test]
fn lite_closes_the_connection_on_ping_and_nucleus_answers_it() {
    let lite = Emulator::builder()
        .socket_path(unique_socket_path("lite-ping"))
        .flavor(Flavor::Lite)
        .start()
        .unwrap();
    let (mut socket, mut decoder) = raw_connect(&lite);
    write_message(&mut socket, &RpcMessage::new(MessageType::Ping, 0, 0));
    assert!(
        read_message(&mut socket, &mut decoder).is_none(),
        "lite must close"
    );

    let nucleus = Emulator::builder()
        .socket_path(unique_socket_path("nucleus-ping"))
        .start()
        .unwrap();
    let (mut socket, mut decoder) = raw_connect(&nucleus);
    write_message(&mut socket, &RpcMessage::new(MessageType::Ping, 0, 0));
    let pong = read_message(&mut socket, &mut decoder).expect("PING_RESPONSE");
    assert_eq!(pong.message_type, MessageType::PingResponse);
}

#[test]
fn lite_closes_the_connection_on_an_oversized_frame() {
    let lite = Emulator::builder()
        .socket_path(unique_socket_path("lite-big"))
        .flavor(Flavor::Lite)
        .start()
        .unwrap();
    let (mut socket, mut decoder) = raw_connect(&lite);
    let mut m = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        1,
        Some("aws.greengrass#PublishToTopicRequest"),
        json!({"topic": "t", "publishMessage": {"jsonMessage": {"message": "x".repeat(20_000)}}})
            .to_string()
            .into_bytes(),
    );
    m.operation = Some("aws.greengrass#PublishToTopic".into());
    write_message(&mut socket, &m);
    assert!(
        read_message(&mut socket, &mut decoder).is_none(),
        "lite must close"
    );
}

#[test]
fn lite_responses_carry_no_terminate_flag_and_errors_only_underscore_members() {
    let lite = Emulator::builder()
        .socket_path(unique_socket_path("lite-flags"))
        .flavor(Flavor::Lite)
        .start()
        .unwrap();
    let (mut socket, mut decoder) = raw_connect(&lite);
    let mut m = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        1,
        Some("aws.greengrass#UpdateStateRequest"),
        json!({"state": "RUNNING"}).to_string().into_bytes(),
    );
    m.operation = Some("aws.greengrass#UpdateState".into());
    write_message(&mut socket, &m);
    let reply = read_message(&mut socket, &mut decoder).unwrap();
    assert_eq!(reply.flags, 0);
    let mut m = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        2,
        Some("aws.greengrass#PauseComponentRequest"),
        json!({"componentName": "x"}).to_string().into_bytes(),
    );
    m.operation = Some("aws.greengrass#PauseComponent".into());
    write_message(&mut socket, &m);
    let reply = read_message(&mut socket, &mut decoder).unwrap();
    assert_eq!(reply.message_type, MessageType::ApplicationError);
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(
        body.get("message").is_none() && body.get("_message").is_some(),
        "{body}"
    );
}

#[test]
fn a_refused_connect_closes_without_an_ack_on_lite() {
    let lite = Emulator::builder()
        .socket_path(unique_socket_path("lite-refuse"))
        .flavor(Flavor::Lite)
        .start()
        .unwrap();
    let err = Client::builder()
        .socket_path(lite.socket_path())
        .auth_token("wrong")
        .max_frame_size(10_000)
        .connect()
        .unwrap_err();
    assert!(!err.to_string().is_empty());
}

// ===== Nucleus lite 2.6.0 against the Java nucleus (issue 10, items 5-9) =================

/// A PublishToTopic frame of exactly `total` bytes on stream `stream`.
fn publish_frame_of(total: usize, stream: i32) -> Vec<u8> {
    let frame_with = |pad: usize| {
        let mut m = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            stream,
            Some("aws.greengrass#PublishToTopicRequest"),
            json!({"topic": "flavor/big", "publishMessage": {"jsonMessage": {"message": "x".repeat(pad)}}})
                .to_string()
                .into_bytes(),
        );
        m.operation = Some("aws.greengrass#PublishToTopic".into());
        m.to_frame().to_bytes(&Limits::default()).unwrap()
    };
    let base = frame_with(0).len();
    let bytes = frame_with(total - base);
    assert_eq!(bytes.len(), total);
    bytes.to_vec()
}

fn lite_with_recipe(name: &str) -> Emulator {
    Emulator::builder()
        .socket_path(unique_socket_path(name))
        .flavor(Flavor::Lite)
        .recipe_str(RECIPE, RecipeFormat::Json)
        .start()
        .unwrap()
}

#[test]
fn lite_accepts_a_whole_frame_of_10012_bytes_and_closes_at_10013() {
    use std::io::Write as _;
    let lite = lite_with_recipe("lite-frame-limit");
    let (mut socket, mut decoder) = raw_connect(&lite);
    socket.write_all(&publish_frame_of(10_012, 1)).unwrap();
    let reply = read_message(&mut socket, &mut decoder).expect("answered, not closed");
    assert_eq!(
        reply.message_type,
        MessageType::ApplicationMessage,
        "{reply:?}"
    );
    socket.write_all(&publish_frame_of(10_013, 2)).unwrap();
    assert!(
        read_message(&mut socket, &mut decoder).is_none(),
        "lite must close past 10,000 bytes after the prelude"
    );
}

#[test]
fn lite_ignores_receive_mode_and_the_nucleus_honours_it() {
    for flavor in [Flavor::Lite, Flavor::Nucleus] {
        let (emu, client) = start(flavor, &format!("receive-mode-{flavor:?}"));
        let (tx, rx) = unbounded();
        let _sub = client
            .subscribe_to_topic(
                SubscribeToTopicRequest::new("flavor/own")
                    .with_receive_mode(ggipc::model::ReceiveMode::ReceiveMessagesFromOthers),
                move |e: SubscriptionResponseMessage| {
                    tx.send(e.json().cloned()).unwrap();
                },
            )
            .unwrap();
        client
            .publish_to_topic(PublishToTopicRequest::json("flavor/own", json!("mine")))
            .unwrap();
        emu.publish(
            "someone.Else",
            "flavor/own",
            &ggipc::model::PublishMessage::json(json!("theirs")),
        );
        let first = expect_within(&rx, WAIT, "first message");
        let expected = if flavor == Flavor::Lite {
            "mine"
        } else {
            "theirs"
        };
        assert_eq!(first, Some(json!(expected)), "{flavor:?}");
    }
}

#[test]
fn a_stale_update_configuration_succeeds_on_lite_and_keeps_the_value() {
    for flavor in [Flavor::Lite, Flavor::Nucleus] {
        let (emu, client) = start(flavor, &format!("stale-{flavor:?}"));
        let now = Timestamp::now();
        client
            .update_configuration(UpdateConfigurationRequest::new(
                now,
                json!({"threshold": 7}),
            ))
            .unwrap();
        let stale = Timestamp::from_millis(now.as_millis() - 60_000);
        let result = client.update_configuration(UpdateConfigurationRequest::new(
            stale,
            json!({"threshold": 9}),
        ));
        let value =
            emu.device().configuration("com.example.Flavored").unwrap()["threshold"].clone();
        assert_eq!(
            value,
            json!(7),
            "{flavor:?}: the stale value must not be written"
        );
        match flavor {
            Flavor::Lite => assert!(result.is_ok(), "{result:?}"),
            _ => {
                let err = result.unwrap_err();
                assert!(
                    matches!(
                        err.as_service_error(),
                        Some(IpcError::FailedUpdateConditionCheck(_))
                    ),
                    "{err:?}"
                );
            }
        }
    }
}

#[test]
fn lite_accepts_wildcards_in_a_publish_topic_and_the_nucleus_refuses_them() {
    for flavor in [Flavor::Lite, Flavor::Nucleus] {
        let (_emu, client) = start(flavor, &format!("publish-wildcard-{flavor:?}"));
        for topic in ["flavor/+", "flavor/#"] {
            let result =
                client.publish_to_topic(PublishToTopicRequest::json(topic, json!({"n": 1})));
            match flavor {
                Flavor::Lite => assert!(result.is_ok(), "{topic}: {result:?}"),
                _ => {
                    let err = result.unwrap_err();
                    let e = err.as_service_error().expect("service error");
                    assert!(matches!(e, IpcError::InvalidArguments(_)), "{e:?}");
                    assert!(
                        e.message()
                            .starts_with("Publish topic must not contain a wildcard."),
                        "{}",
                        e.message()
                    );
                }
            }
        }
    }
}

#[test]
fn lite_svcuids_are_16_base64_characters_and_the_nucleus_keeps_32_hex() {
    let lite = lite_with_recipe("lite-svcuid");
    let token = lite.auth_token();
    assert_eq!(token.len(), 16, "{token}");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap()
            .len(),
        12
    );
    let client = lite
        .client_builder()
        .max_frame_size(10_000)
        .connect()
        .unwrap();
    assert!(client.is_connected());
    let (nucleus, _client) = start(Flavor::Nucleus, "nucleus-svcuid");
    let token = nucleus.auth_token();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
}

#[test]
fn lite_configuration_keys_are_case_sensitive_and_its_texts_are_its_own() {
    // Observed on a running nucleus lite 2.6.0 (tests/tools/lite_probe.py) and read in its
    // sources: keys COLLATE BINARY, no `_` hiding, "Key not found.", singular "field".
    let (emu, client) = start(Flavor::Lite, "lite-config-case");
    let call =
        |op: &str, body: serde_json::Value| client.call_json(op, &body, CallOptions::default());
    call(
        "UpdateConfiguration",
        json!({"keyPath": ["Probe"], "valueToMerge": {"A": 1, "_h": 2}, "timestamp": 2e9}),
    )
    .unwrap();
    let err = call("GetConfiguration", json!({"keyPath": ["probe", "a"]})).unwrap_err();
    let e = err.as_service_error().expect("service error");
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
    assert!(e.message().starts_with("Key not found."), "{}", e.message());
    let v = call("GetConfiguration", json!({"keyPath": ["Probe"]})).unwrap();
    assert_eq!(v["value"], json!({"A": 1, "_h": 2}));
    let err = call(
        "UpdateConfiguration",
        json!({"keyPath": ["accessControl"], "valueToMerge": {"x": 1}, "timestamp": 1.0}),
    )
    .unwrap_err();
    assert_eq!(
        err.as_service_error().unwrap().message(),
        "Config update is not allowed for following field [accessControl]"
    );
    assert_eq!(
        emu.device().configuration("com.example.Flavored").unwrap()["Probe"]["A"],
        1
    );
}

#[test]
fn lite_token_validation_uses_its_texts() {
    let lite = Emulator::builder()
        .socket_path(unique_socket_path("lite-token-texts"))
        .flavor(Flavor::Lite)
        .permissive_component("com.example.Other", "AAAAAAAAAAAAAAAA")
        .permissive_component("aws.greengrass.StreamManager", "BBBBBBBBBBBBBBBB")
        .start()
        .unwrap();
    let other = lite.connect_as("com.example.Other").unwrap();
    let err = other
        .call_json(
            "ValidateAuthorizationToken",
            &json!({"token": "x"}),
            CallOptions::default(),
        )
        .unwrap_err();
    let e = err.as_service_error().unwrap();
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    assert_eq!(
        e.message(),
        "Component does not have access to token verification IPC command."
    );
    let sm = lite.connect_as("aws.greengrass.StreamManager").unwrap();
    let err = sm
        .call_json(
            "ValidateAuthorizationToken",
            &json!({"token": "CCCCCCCCCCCCCCCC"}),
            CallOptions::default(),
        )
        .unwrap_err();
    let e = err.as_service_error().unwrap();
    assert!(matches!(e, IpcError::InvalidToken(_)), "{e:?}");
    assert!(e
        .message()
        .starts_with("Invalid token used by stream manager when trying to authorize."));
}

#[test]
fn an_empty_topic_passes_authorization_on_lite_only() {
    // The Java nucleus refuses an empty resource before any policy lookup, so not even a
    // `*` policy grants it; a running nucleus lite 2.6.0 accepted a PublishToTopic on ""
    // under a `*` policy (tests/tools/lite_probe.py).
    for flavor in [Flavor::Lite, Flavor::Nucleus] {
        let emu = Emulator::builder()
            .socket_path(unique_socket_path(&format!("empty-topic-{flavor:?}")))
            .flavor(flavor)
            .start()
            .unwrap();
        let client = emu
            .client_builder()
            .max_frame_size(10_000)
            .connect()
            .unwrap();
        let result = client.publish_to_topic(PublishToTopicRequest::json("", json!({"n": 1})));
        match flavor {
            Flavor::Lite => assert!(result.is_ok(), "{result:?}"),
            _ => {
                let err = result.unwrap_err();
                let e = err.as_service_error().expect("service error");
                assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
            }
        }
    }
}

/// A request body that is not JSON is answered as the nucleus does (an APPLICATION_ERROR
/// `InternalServerError`, text/plain), whichever path would serve the operation: a typed
/// decoding, a handler that reads the raw members, one that reads nothing, a test's
/// scripted reply (which never sees the request), or no handler at all.
#[test]
fn a_body_that_is_not_json_is_unparsable_whatever_serves_the_operation() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let emu = Emulator::builder()
        .socket_path(unique_socket_path("not-json"))
        .start()
        .unwrap();
    let scripted = Arc::new(AtomicUsize::new(0));
    let seen = scripted.clone();
    emu.replies().set("GetSecretValue", move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        ggipc::emulator::Reply::Error(ggipc::model::IpcError::Unmodeled(Default::default()))
    });
    let (mut socket, mut decoder) = raw_connect(&emu);
    let operations = [
        "PublishToTopic",
        "RestartComponent",
        "ListComponents",
        "GetSecretValue",
        "NoSuchOperation",
    ];
    let bodies: [&[u8]; 3] = [b"{not json", b"\"\xff\"", b"{} {}"];
    let mut stream_id = 0;
    for operation in operations {
        for body in bodies {
            stream_id += 1;
            let mut m = RpcMessage::new(MessageType::ApplicationMessage, 0, stream_id);
            m.operation = Some(format!("aws.greengrass#{operation}").into());
            m.content_type = Some("application/json".into());
            m.payload = body.to_vec().into();
            write_message(&mut socket, &m);
            let reply = read_message(&mut socket, &mut decoder).expect("a reply");
            assert_eq!(reply.stream_id, stream_id, "{operation}");
            assert_eq!(
                reply.message_type,
                MessageType::ApplicationError,
                "{operation} {body:?}"
            );
            assert_eq!(
                String::from_utf8_lossy(&reply.payload),
                "InternalServerError",
                "{operation} {body:?}"
            );
            assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
        }
    }
    assert_eq!(
        scripted.load(Ordering::SeqCst),
        0,
        "the script saw a non-JSON request"
    );
}
