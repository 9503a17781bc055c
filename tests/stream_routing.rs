//! Routing of what arrives on a subscription's stream, end to end over a real socket:
//! what a handler may and may not see whatever order the server's frames come in, and
//! how the frame limit and the event queue's byte cap relate.
//! (Each routing rule is also unit-tested on messages alone in `src/rpc/session.rs`.)

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::{unbounded, Sender};
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::rpc::{MessageType, ProtocolError, RpcMessage};
use ggipc::{Client, Error, StreamHandler};

const WAIT: Duration = Duration::from_secs(5);

/// Reports every callback it gets.
struct Calls(Sender<String>);
impl StreamHandler<SubscriptionResponseMessage> for Calls {
    fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {
        let _ = self.0.send("event".into());
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self.0.send(format!("error: {error}"));
        ggipc::StreamControl::Close
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send("closed".into());
    }
    fn on_events_dropped(&mut self, count: u64) {
        let _ = self.0.send(format!("dropped {count}"));
    }
}

fn event(stream_id: i32) -> RpcMessage {
    RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        stream_id,
        Some("aws.greengrass#SubscriptionResponseMessage"),
        &br#"{"jsonMessage":{"message":{"n":1}}}"#[..],
    )
}

#[test]
fn a_failed_subscribe_never_calls_its_handler_when_an_event_comes_before_a_wrong_response() {
    // Issue 10 item 10: an event first (taken as the response: wrong type, so subscribe
    // fails), then a response of the wrong type, then more events. Whatever the timing,
    // the handler of a failed subscribe is dropped without a single callback. Repeated so
    // that the race between the I/O thread and the subscribing caller is exercised.
    for round in 0..30 {
        let (routed_tx, routed) = unbounded();
        let peer = ScriptedPeer::start("early-event", move |mut socket| {
            let mut decoder = FrameDecoder::new(Limits::default());
            accept_handshake(&mut socket, &mut decoder);
            let request = read_message(&mut socket, &mut decoder).expect("subscribe");
            let id = request.stream_id;
            write_message(&mut socket, &event(id));
            write_message(
                &mut socket,
                &RpcMessage::json(
                    MessageType::ApplicationMessage,
                    0,
                    id,
                    Some("aws.greengrass#NotTheResponse"),
                    &b"{}"[..],
                ),
            );
            for _ in 0..3 {
                write_message(&mut socket, &event(id));
            }
            // The I/O thread handles frames in order: once it answers this PING, every
            // frame above has been routed.
            write_message(&mut socket, &RpcMessage::new(MessageType::Ping, 0, 0));
            while let Some(m) = read_message(&mut socket, &mut decoder) {
                if m.message_type == MessageType::PingResponse {
                    let _ = routed_tx.send(());
                }
            }
        });
        let client = Client::builder()
            .socket_path(&peer.path)
            .auth_token("t")
            .connect()
            .unwrap();
        let (tx, rx) = unbounded();
        let result = client.subscribe_to_topic(SubscribeToTopicRequest::new("x"), Calls(tx));
        match &result {
            Err(Error::Protocol(ProtocolError::UnexpectedModelType { expected, actual })) => {
                assert_eq!(*expected, "aws.greengrass#SubscribeToTopicResponse");
                assert_eq!(actual, "aws.greengrass#SubscriptionResponseMessage");
                let text = result.as_ref().unwrap_err().to_string();
                let e = text.find("SubscribeToTopicResponse").unwrap();
                let a = text.find("SubscriptionResponseMessage").unwrap();
                assert!(e < a, "expected type named first: {text}");
            }
            other => panic!("round {round}: {other:?}"),
        }
        expect_within(&routed, WAIT, "every frame routed");
        // close() lets the pool run whatever was queued before it returns.
        client.close();
        let calls: Vec<String> = rx.try_iter().collect();
        assert!(calls.is_empty(), "round {round}: handler called: {calls:?}");
        peer.join();
    }
}

#[test]
fn an_event_that_fits_the_frame_limit_reaches_an_idle_handler_whatever_the_byte_cap() {
    // Issue 10 item 11: with a queue byte cap smaller than the frame limit, an event
    // between the two must still be delivered to an empty queue (the cap bounds what
    // waits behind it, never a single event).
    let peer = ScriptedPeer::start("big-event", |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        let request = read_message(&mut socket, &mut decoder).expect("subscribe");
        let id = request.stream_id;
        write_message(
            &mut socket,
            &RpcMessage::json(
                MessageType::ApplicationMessage,
                0,
                id,
                Some("aws.greengrass#SubscribeToTopicResponse"),
                &b"{}"[..],
            ),
        );
        let big = format!(
            r#"{{"binaryMessage":{{"message":"{}"}}}}"#,
            "A".repeat(64 * 1024)
        );
        for _ in 0..3 {
            write_message(
                &mut socket,
                &RpcMessage::json(
                    MessageType::ApplicationMessage,
                    0,
                    id,
                    Some("aws.greengrass#SubscriptionResponseMessage"),
                    big.clone().into_bytes(),
                ),
            );
        }
        while read_message(&mut socket, &mut decoder).is_some() {}
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .event_queue(16, 16 * 1024) // 16 KiB cap, 16 MiB frame limit
        .handler_threads(1)
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let (gate_tx, gate) = unbounded::<()>();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("x"),
            move |e: SubscriptionResponseMessage| {
                let _ = tx.send(e.binary().map_or(0, <[u8]>::len));
                // Held until the test lets go: later events wait behind this one.
                let _ = gate.recv_timeout(WAIT);
            },
        )
        .unwrap();
    let first = expect_within(&rx, WAIT, "the first 64 KiB event");
    assert_eq!(first, 48 * 1024); // 64 KiB of base64

    drop(gate_tx);
    // Every event arrived at an empty queue or was dropped behind a full one: at least
    // the first was delivered, and nothing was lost silently.
    wait_until(WAIT, "three events accounted for", || {
        let s = sub.stats();
        s.delivered + s.dropped == 3
    });
    assert!(sub.stats().delivered >= 1);
    sub.close().unwrap();
    client.close();
    peer.join();
}
