//! Every fault the emulator can inject, one test each: the client ends in a precise typed
//! error (or decodes correctly), nothing panics and nothing hangs.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::codec::CodecError;
use ggipc::emulator::{Emulator, Fault};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::rpc::ProtocolError;
use ggipc::{CallOptions, Client, CloseReason, Error, StreamHandler, TimeoutKind};
use serde_json::json;

/// A generous hang bound: none of these waits should come close.
const BOUND: Duration = Duration::from_secs(5);

fn publish(client: &Client) -> ggipc::Result<()> {
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!({"n": 1})))
        .map(|_| ())
}

/// Injects `fault`, makes one call, and returns its error and the connection's close
/// reason (waiting, bounded, for the connection to close).
fn hostile(fault: Fault) -> (Error, CloseReason) {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    publish(&client).unwrap();
    emu.faults().inject(fault);
    let err = returns_within(BOUND, "the hostile call", || publish(&client)).unwrap_err();
    wait_until(BOUND, "the connection closes", || !client.is_connected());
    let reason = client.close_reason().unwrap();
    // The connection is closed for good: later calls fail at once with the same reason.
    let again = returns_within(BOUND, "a call after the close", || publish(&client));
    assert!(
        matches!(&again, Err(Error::Closed(r)) if *r == reason),
        "{again:?}"
    );
    drop(client);
    (err, reason)
}

fn closed_with(err: &Error, reason: &CloseReason) {
    assert!(
        matches!(err, Error::Closed(r) if r == reason),
        "call error {err:?} should carry the close reason {reason:?}"
    );
}

#[test]
fn bad_prelude_crc_closes_with_a_prelude_checksum_error() {
    let (err, reason) = hostile(Fault::BadPreludeCrc);
    assert!(
        matches!(
            reason,
            CloseReason::Codec(CodecError::PreludeChecksumMismatch { .. })
        ),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn bad_message_crc_closes_with_a_message_checksum_error() {
    let (err, reason) = hostile(Fault::BadMessageCrc);
    assert!(
        matches!(
            reason,
            CloseReason::Codec(CodecError::MessageChecksumMismatch { .. })
        ),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn four_gib_total_length_is_refused_before_any_allocation() {
    let (err, reason) = hostile(Fault::HugeTotalLength);
    assert!(
        matches!(
            reason,
            CloseReason::Codec(CodecError::FrameTooLarge {
                total_length: 0xFFFF_FFFF,
                ..
            })
        ),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn headers_length_beyond_the_frame_is_out_of_range() {
    let (err, reason) = hostile(Fault::HeadersLengthBeyondFrame);
    assert!(
        matches!(
            reason,
            CloseReason::Codec(CodecError::HeadersLengthOutOfRange { .. })
        ),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn unknown_header_type_is_rejected() {
    let (err, reason) = hostile(Fault::UnknownHeaderType);
    assert_eq!(
        reason,
        CloseReason::Codec(CodecError::UnknownHeaderType { type_code: 12 })
    );
    closed_with(&err, &reason);
}

#[test]
fn truncated_frame_then_close_is_truncated() {
    let (err, reason) = hostile(Fault::TruncatedThenClose);
    assert!(
        matches!(reason, CloseReason::Codec(CodecError::Truncated { buffered }) if buffered > 0),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn garbage_bytes_are_a_codec_error() {
    let garbage: Vec<u8> = (0u32..64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (err, reason) = hostile(Fault::Garbage(garbage));
    assert!(
        matches!(
            reason,
            CloseReason::Codec(CodecError::PreludeChecksumMismatch { .. })
        ),
        "{reason:?}"
    );
    closed_with(&err, &reason);
}

#[test]
fn reply_on_a_stream_never_opened_is_a_protocol_error() {
    let (err, reason) = hostile(Fault::ReplyOnUnopenedStream);
    // The hostile call was the client's second stream.
    assert_eq!(
        reason,
        CloseReason::Protocol(ProtocolError::UnknownStream { stream_id: 1002 })
    );
    closed_with(&err, &reason);
}

#[test]
fn unknown_message_type_is_a_protocol_error() {
    let (err, reason) = hostile(Fault::UnknownMessageType);
    assert_eq!(
        reason,
        CloseReason::Protocol(ProtocolError::UnknownMessageType { value: 42 })
    );
    closed_with(&err, &reason);
}

#[test]
fn server_protocol_error_is_surfaced_with_its_text() {
    let (err, reason) = hostile(Fault::ProtocolError("you did wrong".into()));
    assert_eq!(
        reason,
        CloseReason::Protocol(ProtocolError::PeerProtocolError {
            message: "you did wrong".into()
        })
    );
    closed_with(&err, &reason);
}

#[test]
fn server_internal_error_is_surfaced_with_its_text() {
    let (err, reason) = hostile(Fault::InternalError("boom".into()));
    assert_eq!(
        reason,
        CloseReason::Protocol(ProtocolError::PeerInternalError {
            message: "boom".into()
        })
    );
    closed_with(&err, &reason);
}

#[test]
fn close_mid_call_fails_the_call_with_peer_closed() {
    let (err, reason) = hostile(Fault::CloseMidCall);
    assert_eq!(reason, CloseReason::PeerClosed);
    closed_with(&err, &reason);
}

#[test]
fn invalid_json_reply_is_a_json_error_and_the_connection_stays() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::InvalidJson);
    let err = returns_within(BOUND, "the call", || publish(&client)).unwrap_err();
    assert!(
        matches!(&err, Error::Json { shape, .. } if shape.ends_with("PublishToTopicResponse")),
        "{err:?}"
    );
    emu.faults().clear();
    publish(&client).unwrap();
    assert!(client.is_connected());
}

#[test]
fn reply_without_model_type_is_accepted_when_its_body_fits() {
    // Lenient on purpose (spec §14: servers differ); the body is still checked.
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::NoModelType);
    returns_within(BOUND, "the call", || publish(&client)).unwrap();
    assert!(client.is_connected());
}

#[test]
fn dribbled_frames_decode_correctly() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::Dribble);
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("drip"),
            move |e: SubscriptionResponseMessage| {
                let _ = tx.send(e);
            },
        )
        .unwrap();
    for i in 0..3 {
        client
            .publish_to_topic(PublishToTopicRequest::json("drip", json!({ "i": i })))
            .unwrap();
    }
    for i in 0..3 {
        let event = expect_within(&rx, BOUND, "a dribbled event");
        assert_eq!(event.json(), Some(&json!({ "i": i })));
    }
    assert!(client.is_connected());
}

#[test]
fn delayed_reply_times_out_and_the_connection_survives() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject_for(
        "PublishToTopic",
        Fault::DelayReply(Duration::from_millis(400)),
    );
    let err = returns_within(BOUND, "the delayed call", || {
        client.publish_to_topic_with(
            PublishToTopicRequest::json("t", json!(1)),
            CallOptions::timeout(Duration::from_millis(100)),
        )
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Response)),
        "{err:?}"
    );
    emu.faults().clear();
    publish(&client).unwrap();
    assert!(client.is_connected());
}

#[test]
fn a_call_never_answered_times_out_and_frees_its_entry() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::NoReply);
    for _ in 0..3 {
        let err = returns_within(BOUND, "an unanswered call", || {
            client.publish_to_topic_with(
                PublishToTopicRequest::json("t", json!(1)),
                CallOptions::timeout(Duration::from_millis(50)),
            )
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::Timeout(TimeoutKind::Response)),
            "{err:?}"
        );
    }
    emu.faults().clear();
    publish(&client).unwrap();
}

#[test]
fn rejected_connect_is_connect_rejected() {
    let emu = Emulator::start().unwrap();
    emu.faults().inject(Fault::RejectConnect);
    let err = returns_within(BOUND, "a rejected connect", || emu.connect()).unwrap_err();
    assert!(matches!(err, Error::ConnectRejected { .. }), "{err:?}");
}

#[test]
fn ignored_connect_times_out_in_the_handshake() {
    let emu = Emulator::start().unwrap();
    emu.faults().inject(Fault::IgnoreConnect);
    let err = returns_within(BOUND, "an ignored connect", || {
        emu.client_builder()
            .connect_timeout(Duration::from_millis(200))
            .connect()
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Handshake)),
        "{err:?}"
    );
}

#[test]
fn a_server_that_stops_reading_makes_the_writer_hit_its_deadline() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::StopReading);
    let big = "x".repeat(256 * 1024);
    let mut write_timeout = None;
    for _ in 0..20 {
        let result = returns_within(BOUND, "a call to a server not reading", || {
            client.publish_to_topic_with(
                PublishToTopicRequest::json("t", json!(big)),
                CallOptions::timeout(Duration::from_millis(200)),
            )
        });
        match result {
            Err(Error::Timeout(TimeoutKind::Write)) => {
                write_timeout = Some(());
                break;
            }
            Err(Error::Timeout(TimeoutKind::Response)) => {}
            Err(Error::Closed(CloseReason::WriteTimeout)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(write_timeout.is_some(), "no write ever hit its deadline");
    // Closing does not wait for the blocked server either.
    returns_within(BOUND, "close", || client.close());
}

struct Recorder(crossbeam_channel::Sender<String>);
impl StreamHandler<SubscriptionResponseMessage> for Recorder {
    fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {
        let _ = self.0.send("event".into());
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self
            .0
            .send(format!("error: {}", error.is_connection_lost()));
        ggipc::StreamControl::Close
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send("closed".into());
    }
}

#[test]
fn a_killed_server_fails_every_pending_call_and_ends_every_subscription() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let mut receivers = Vec::new();
    let mut subs = Vec::new();
    for i in 0..3 {
        let (tx, rx) = unbounded();
        subs.push(
            client
                .subscribe_to_topic(SubscribeToTopicRequest::new(format!("k{i}")), Recorder(tx))
                .unwrap(),
        );
        receivers.push(rx);
    }
    emu.faults().inject(Fault::NoReply);
    let (done_tx, done_rx) = unbounded();
    for _ in 0..4 {
        let c = client.clone();
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send(publish(&c));
        });
    }
    // Every caller's request is on the wire (and unanswered) before the kill.
    wait_until(BOUND, "four pending calls", || emu.faults().hits() == 4);
    drop(emu);
    for _ in 0..4 {
        let result = expect_within(&done_rx, BOUND, "a pending call failing");
        assert!(
            matches!(&result, Err(Error::Closed(r)) if *r != CloseReason::ByUser),
            "{result:?}"
        );
    }
    for rx in &receivers {
        assert_eq!(expect_within(rx, BOUND, "error callback"), "error: true");
        assert_eq!(expect_within(rx, BOUND, "closed callback"), "closed");
    }
    drop(subs);
}

/// The emulator writes the replies to the requests it has read before it sleeps for a
/// delayed one: a reply to a request that came with the delayed one is not delayed too.
#[test]
fn a_delayed_reply_does_not_hold_back_the_replies_to_requests_read_with_it() {
    use ggipc::codec::{FrameDecoder, Limits};
    use ggipc::rpc::{connect_message, MessageType, RpcMessage};
    use std::io::Write;
    use std::time::Instant;

    let emu = Emulator::start().unwrap();
    let delay = Duration::from_secs(3);
    emu.faults()
        .inject_for("PublishToTopic", Fault::DelayReply(delay));
    let token = emu.token_of("com.example.Component").unwrap();
    let mut socket = std::os::unix::net::UnixStream::connect(emu.socket_path()).unwrap();
    socket.set_read_timeout(Some(BOUND)).unwrap();
    let mut decoder = FrameDecoder::new(Limits::default());
    write_message(&mut socket, &connect_message(token));
    let ack = read_message(&mut socket, &mut decoder).expect("CONNECT_ACK");
    assert_eq!(ack.message_type, MessageType::ConnectAck);
    // Two requests in one write: a configuration read, then a delayed publish.
    let request = |id: i32, operation: &'static str, body: serde_json::Value| {
        let mut m = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            id,
            None::<&str>,
            body.to_string().into_bytes(),
        );
        m.operation = Some(operation.into());
        m.to_frame().to_bytes(&Limits::default()).unwrap()
    };
    // In one write: 20 configuration reads, then a delayed publish. However the emulator
    // splits them into reads, the publish shares one with configuration reads.
    let mut all = Vec::new();
    for id in 1..=20 {
        all.extend_from_slice(&request(
            id,
            "aws.greengrass#GetConfiguration",
            json!({"keyPath": []}),
        ));
    }
    all.extend_from_slice(&request(
        21,
        "aws.greengrass#PublishToTopic",
        json!({"topic": "t", "publishMessage": {"jsonMessage": {"message": 1}}}),
    ));
    let sent = Instant::now();
    socket.write_all(&all).unwrap();
    for id in 1..=20 {
        let reply = read_message(&mut socket, &mut decoder).expect("an undelayed reply");
        assert_eq!(reply.stream_id, id);
    }
    assert!(
        sent.elapsed() < delay,
        "undelayed replies came after the delay ({:?})",
        sent.elapsed()
    );
    let last = read_message(&mut socket, &mut decoder).expect("the delayed reply");
    assert_eq!(last.stream_id, 21);
    assert!(sent.elapsed() >= delay);
}

/// The emulator's stop, its drop and `go_down` used to wake the accept loop by connecting
/// to the socket file: with the file gone (a test's temp dir removed first, a script
/// cleaning up), they waited for a connection that never came.
#[test]
fn stop_go_down_and_drop_return_when_the_socket_file_is_gone() {
    // An emulator whose socket file was removed behind its back.
    let without_its_file = |name: &str| {
        let path = unique_socket_path(name);
        let emulator = Emulator::builder().socket_path(&path).start().unwrap();
        std::fs::remove_file(&path).unwrap();
        emulator
    };
    let bound = Duration::from_secs(5);

    let emulator = without_its_file("gone-stop");
    finishes_within(bound, "stop without the socket file", move || {
        emulator.stop()
    });

    let mut emulator = without_its_file("gone-down");
    let mut emulator = finishes_within(bound, "go_down without the socket file", move || {
        emulator.go_down();
        emulator
    });
    // It comes back on the same path, and serves.
    emulator.come_back(None).unwrap();
    let client = emulator.connect().unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::binary("t", b"x".to_vec()))
        .expect("served after coming back");
    drop(client);

    let emulator = without_its_file("gone-drop");
    finishes_within(bound, "drop without the socket file", move || {
        drop(emulator)
    });
}
