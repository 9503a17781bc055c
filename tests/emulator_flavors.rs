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
    PublishToIoTCoreRequest, PublishToTopicRequest, ReportedLifecycleState,
    SubscribeToConfigurationUpdateRequest, SubscribeToIoTCoreRequest, SubscribeToTopicRequest,
    SubscriptionResponseMessage, Timestamp, UpdateConfigurationRequest, UpdateStateRequest, QOS,
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
        emu.component_state("com.example.Flavored"),
        Some(LifecycleState::Running)
    );

    // IoT Core through the cloud stand-in, both directions.
    let (itx, irx) = unbounded();
    let _iot = client
        .subscribe_to_iot_core(
            SubscribeToIoTCoreRequest::new("dt/+/cmd", QOS::AtLeastOnce),
            move |m: IoTCoreMessage| {
                itx.send(m).unwrap();
            },
        )
        .unwrap();
    assert_eq!(emu.inject_cloud_message("dt/dev1/cmd", b"go".to_vec()), 1);
    let m = expect_within(&irx, WAIT, "cloud message");
    assert_eq!((m.topic(), m.payload()), ("dt/dev1/cmd", &b"go"[..]));
    client
        .publish_to_iot_core(
            PublishToIoTCoreRequest::new("dt/dev1/telemetry", QOS::AtLeastOnce)
                .with_payload(b"42".to_vec()),
        )
        .unwrap();
    let published = emu.cloud_published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].payload, b"42");
    assert_eq!(published[0].qos, QOS::AtLeastOnce);

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
    assert!(
        matches!(err.as_service_error(), Some(IpcError::Unauthorized(_))),
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
