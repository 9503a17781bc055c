//! The client's connection from start to end: timeouts, PING, stream ids, connection
//! loss and shutdown. (The Greengrass lifecycle service is tested with the emulator's
//! areas, not here.)

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::emulator::{Emulator, Reply};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::rpc::{MessageType, RpcMessage};
use ggipc::{CallOptions, Client, CloseReason, Error, StreamHandler, TimeoutKind};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn request_timeout_frees_its_entry_and_the_late_reply_is_discarded() {
    let emu = Emulator::start().unwrap();
    emu.replies().set("GetConfiguration", |req| {
        // The first call answers late; later ones at once, echoing their key.
        let key = req.body["keyPath"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if key == "slow" {
            std::thread::sleep(Duration::from_millis(400));
        }
        Reply::Response {
            model_type: "aws.greengrass#GetConfigurationResponse".into(),
            body: json!({ "value": { "key": key } }),
        }
    });
    let client = emu.connect().unwrap();
    let slow = returns_within(Duration::from_secs(2), "a timed-out call", || {
        client.call_json(
            "GetConfiguration",
            &json!({"keyPath": ["slow"]}),
            CallOptions::timeout(Duration::from_millis(100)),
        )
    });
    assert!(
        matches!(slow, Err(Error::Timeout(TimeoutKind::Response))),
        "{slow:?}"
    );
    // The late reply to the first call must not be taken for the answer to this one.
    let fast = client
        .call_json(
            "GetConfiguration",
            &json!({"keyPath": ["fast"]}),
            CallOptions::default(),
        )
        .unwrap();
    assert_eq!(fast["value"]["key"], "fast");
    assert!(client.is_connected());
}

#[test]
fn server_ping_gets_a_ping_response_and_nothing_breaks() {
    let peer = ScriptedPeer::start("ping", |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        let mut ping = RpcMessage::new(MessageType::Ping, 0, 0);
        ping.extra_headers.push(ggipc::codec::Header::new(
            "x-custom",
            ggipc::codec::HeaderValue::String("abc".into()),
        ));
        ping.payload = bytes::Bytes::from_static(b"pingdata");
        write_message(&mut socket, &ping);
        // The PING_RESPONSE and the client's first request may come in either order.
        let mut seen_pong = false;
        let mut seen_request = false;
        while !(seen_pong && seen_request) {
            let m = read_message(&mut socket, &mut decoder).expect("PING_RESPONSE and request");
            match m.message_type {
                MessageType::PingResponse => {
                    assert_eq!(&m.payload[..], b"pingdata");
                    assert_eq!(m.extra_headers, ping.extra_headers);
                    seen_pong = true;
                }
                MessageType::ApplicationMessage => {
                    assert_eq!(m.stream_id, 1);
                    assert_eq!(
                        m.operation.as_deref(),
                        Some("aws.greengrass#PublishToTopic")
                    );
                    let reply = RpcMessage::json(
                        MessageType::ApplicationMessage,
                        ggipc::rpc::FLAG_TERMINATE_STREAM,
                        1,
                        Some("aws.greengrass#PublishToTopicResponse"),
                        &b"{}"[..],
                    );
                    write_message(&mut socket, &reply);
                    seen_request = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The client never sends a PING of its own.
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(read_message(&mut socket, &mut decoder).is_none());
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap();
    peer.join();
}

#[test]
fn stream_ids_start_at_one_and_increase_by_one() {
    let peer = ScriptedPeer::start("ids", |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        for expected in 1..=20 {
            let request = read_message(&mut socket, &mut decoder).expect("request");
            assert_eq!(request.stream_id, expected);
            let reply = RpcMessage::json(
                MessageType::ApplicationMessage,
                0, // nucleus lite: no TERMINATE on the response; it is final anyway
                expected,
                Some("aws.greengrass#PublishToTopicResponse"),
                &b"{}"[..],
            );
            write_message(&mut socket, &reply);
        }
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    c.publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    peer.join();
}

struct Events(crossbeam_channel::Sender<String>);
impl StreamHandler<SubscriptionResponseMessage> for Events {
    fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {
        let _ = self.0.send("event".into());
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self
            .0
            .send(format!("error: {}", matches!(error, Error::Closed(_))));
        ggipc::StreamControl::Close
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send("closed".into());
    }
}

#[test]
fn server_disappearing_fails_the_pending_call_and_tells_subscriptions() {
    let emu = Emulator::start().unwrap();
    let (arrived_tx, arrived) = unbounded();
    emu.replies().set("GetConfiguration", move |_| {
        let _ = arrived_tx.send(());
        // A slow server: the call is still pending when the server goes away.
        std::thread::sleep(Duration::from_secs(3));
        Reply::Response {
            model_type: "aws.greengrass#GetConfigurationResponse".into(),
            body: json!({}),
        }
    });
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("x"), Events(tx))
        .unwrap();
    let caller = {
        let c = client.clone();
        std::thread::spawn(move || {
            c.call_json(
                "GetConfiguration",
                &json!({"keyPath": []}),
                CallOptions::default(),
            )
        })
    };
    expect_within(&arrived, WAIT, "the call reaching the server");
    emu.disconnect_all();
    let result = returns_within(Duration::from_secs(2), "the pending call failing", || {
        caller.join().unwrap()
    });
    match result {
        Err(Error::Closed(reason)) => assert_ne!(reason, CloseReason::ByUser),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(expect_within(&rx, WAIT, "error callback"), "error: true");
    assert_eq!(expect_within(&rx, WAIT, "closed callback"), "closed");
    assert!(!client.is_connected());
    let again = client.publish_to_topic(PublishToTopicRequest::json("x", json!(1)));
    assert!(matches!(again, Err(Error::Closed(_))), "{again:?}");
}

#[test]
fn client_drop_returns_promptly_with_subscriptions_open() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("keep"), Events(tx))
        .unwrap();
    returns_within(Duration::from_secs(2), "dropping the client", || {
        drop(client)
    });
    assert_eq!(expect_within(&rx, WAIT, "closed callback"), "closed");
    // The orphaned handle can still be dropped safely.
    drop(sub);
    wait_until(WAIT, "server saw the disconnect", || {
        emu.connection_count() == 0
    });
}

#[test]
fn close_from_inside_a_handler_returns() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let inner = client.clone();
    let _sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("stop"),
            move |_e: SubscriptionResponseMessage| {
                let start = std::time::Instant::now();
                inner.close();
                tx.send(start.elapsed()).unwrap();
            },
        )
        .unwrap();
    // The event can reach the handler, which closes the client, before this publish's own
    // reply is read; the call then fails with Closed(ByUser), as documented for pending
    // calls (seen under qemu-user). Either outcome is right here.
    match client.publish_to_topic(PublishToTopicRequest::json("stop", json!(1))) {
        Ok(_) | Err(ggipc::Error::Closed(CloseReason::ByUser)) => {}
        Err(e) => panic!("publish: {e}"),
    }
    let took = expect_within(&rx, WAIT, "close inside the handler");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!client.is_connected());
    assert_eq!(client.close_reason(), Some(CloseReason::ByUser));
}

#[test]
fn calls_after_close_fail_with_closed_by_user() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client.close();
    client.close();
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap_err();
    assert!(matches!(err, Error::Closed(CloseReason::ByUser)), "{err:?}");
}

#[test]
fn service_errors_are_typed_and_keep_unmodeled_text() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    // A wildcard publish topic is an InvalidArgumentsError.
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("a/+", json!(1)))
        .unwrap_err();
    let service = err.as_service_error().expect("service error");
    assert_eq!(
        service.model_type(),
        Some("aws.greengrass#InvalidArgumentsError")
    );
    // An operation the server does not know: no model type, text kept.
    let err = client
        .call_json("NoSuchOperation", &json!({}), CallOptions::default())
        .unwrap_err();
    let service = err.as_service_error().expect("service error");
    assert_eq!(service.model_type(), None);
    assert!(err.to_string().contains("unsupported operation"), "{err}");
    assert!(client.is_connected());
}

#[test]
fn an_oversized_request_is_refused_locally_and_burns_no_stream_id() {
    let emu = Emulator::builder()
        .flavor(ggipc::emulator::Flavor::Lite)
        .start()
        .unwrap();
    let client = emu
        .client_builder()
        .max_frame_size(10_000)
        .connect()
        .unwrap();
    let big = vec![b'x'; 20_000];
    let err = client
        .publish_to_topic(PublishToTopicRequest::binary("t", big))
        .unwrap_err();
    assert!(
        matches!(err, Error::RequestTooLarge { max: 10_000, .. }),
        "{err:?}"
    );
    // The next stream id is still the next one: the server (which checks) accepts the call.
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap();
    assert!(client.is_connected());
}

#[test]
fn duration_max_timeouts_mean_no_practical_deadline_and_never_panic() {
    // No deadline anywhere: a client that never gets its replies would wait forever, so
    // the whole test runs under an outer bound.
    finishes_within(Duration::from_secs(20), "the whole test", || {
        let emu = Emulator::start().unwrap();
        let client = emu
            .client_builder()
            .connect_timeout(Duration::MAX)
            .request_timeout(Duration::MAX)
            .shutdown_timeout(Duration::MAX)
            .connect()
            .unwrap();
        client
            .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
            .unwrap();
        client
            .publish_to_topic_with(
                PublishToTopicRequest::json("t", json!(2)),
                CallOptions::timeout(Duration::MAX),
            )
            .unwrap();
        let (tx, _rx) = unbounded();
        let sub = client
            .subscribe_to_topic(SubscribeToTopicRequest::new("t"), Events(tx))
            .unwrap();
        sub.close().unwrap();
        returns_within(Duration::from_secs(5), "close", || client.close());
    });
}

#[test]
fn a_refused_subscribe_the_server_did_not_terminate_is_terminated_by_the_client() {
    // A first reply that is an error without TERMINATE leaves the stream open on the
    // server: the client must close it (spec §9), exactly once, before anything else.
    let (seen_tx, seen) = unbounded();
    let peer = ScriptedPeer::start("refused-open", move |mut socket| {
        socket.set_read_timeout(Some(Duration::from_secs(3))).ok();
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        let request = read_message(&mut socket, &mut decoder).expect("subscribe");
        let error = RpcMessage::json(
            MessageType::ApplicationError,
            0,
            request.stream_id,
            Some("aws.greengrass#UnauthorizedError"),
            &br#"{"message":"no"}"#[..],
        );
        write_message(&mut socket, &error);
        while let Some(m) = read_message(&mut socket, &mut decoder) {
            seen_tx
                .send((m.stream_id, m.is_terminate(), m.operation.clone()))
                .unwrap();
            if m.operation.is_some() {
                let reply = RpcMessage::json(
                    MessageType::ApplicationMessage,
                    0,
                    m.stream_id,
                    Some("aws.greengrass#PublishToTopicResponse"),
                    &b"{}"[..],
                );
                write_message(&mut socket, &reply);
            }
        }
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .unwrap();
    let (tx, _rx) = unbounded();
    let err = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("x"), Events(tx))
        .unwrap_err();
    assert!(err.as_service_error().is_some(), "{err:?}");
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap();
    let first = expect_within(&seen, WAIT, "the next message from the client");
    assert_eq!(first, (1, true, None), "TERMINATE on stream 1 first");
    let second = expect_within(&seen, WAIT, "the publish");
    assert_eq!(second.0, 2);
    assert!(second.2.is_some());
    client.close();
    peer.join();
    assert!(seen.try_recv().is_err(), "nothing more was sent");
}

#[test]
fn a_call_on_a_client_closed_by_the_user_is_not_retryable() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client.close();
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap_err();
    assert!(matches!(err, Error::Closed(CloseReason::ByUser)), "{err:?}");
    assert!(
        !err.is_retryable(),
        "retrying after close() can never succeed"
    );
}

#[test]
fn call_json_refuses_a_streaming_operation_instead_of_leaving_its_stream_open() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let result = client.call_json(
        "SubscribeToTopic",
        &json!({"topic": "leak"}),
        CallOptions::default(),
    );
    assert!(
        matches!(result, Err(Error::InvalidArgument(_))),
        "{result:?}"
    );
    // Nothing was opened on the server: a round trip on the same connection has been
    // served after anything sent before it.
    client
        .publish_to_topic(PublishToTopicRequest::json("sync", json!(1)))
        .unwrap();
    assert_eq!(emu.subscription_count(), 0);
    assert!(client.is_connected());
}

#[test]
fn a_failed_subscribe_never_calls_its_handler_even_when_the_server_ended_the_stream() {
    // An "accepted and ended at once" reply that does not decode: subscribe fails, so
    // the handler must be dropped without any callback (not even on_stream_closed).
    for round in 0..20 {
        let peer = ScriptedPeer::start("ended-bad", |mut socket| {
            let mut decoder = FrameDecoder::new(Limits::default());
            accept_handshake(&mut socket, &mut decoder);
            let request = read_message(&mut socket, &mut decoder).expect("subscribe");
            let reply = RpcMessage::json(
                MessageType::ApplicationMessage,
                ggipc::rpc::FLAG_TERMINATE_STREAM,
                request.stream_id,
                Some("aws.greengrass#NotTheResponse"),
                &b"{}"[..],
            );
            write_message(&mut socket, &reply);
            let _ = read_message(&mut socket, &mut decoder);
        });
        let client = Client::builder()
            .socket_path(&peer.path)
            .auth_token("t")
            .connect()
            .unwrap();
        let (tx, rx) = unbounded();
        let result = client.subscribe_to_topic(SubscribeToTopicRequest::new("x"), Events(tx));
        assert!(
            matches!(result, Err(Error::Protocol(_))),
            "round {round}: {result:?}"
        );
        client.close();
        let calls: Vec<String> = rx.try_iter().collect();
        assert!(calls.is_empty(), "round {round}: handler called: {calls:?}");
        peer.join();
    }
}
