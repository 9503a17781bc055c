//! What the server sees on the wire, and what a handler sees, when streams end, time out
//! or break: a scripted raw peer plays the server and reports every message it receives.
//! These tests only use the public API, so they hold whatever the connection's internals
//! look like. Every wait is bounded.

mod common;

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use crossbeam_channel::{unbounded, Receiver, Sender};
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::rpc::{MessageType, ProtocolError, RpcMessage, FLAG_TERMINATE_STREAM};
use ggipc::{CallOptions, Client, CloseReason, Error, StreamHandler, TimeoutKind};
use serde_json::json;

/// Generous hang bound: no wait here should come close.
const WAIT: Duration = Duration::from_secs(5);

const SUBSCRIBE_RESPONSE: &str = "aws.greengrass#SubscribeToTopicResponse";
const EVENT: &str = "aws.greengrass#SubscriptionResponseMessage";
const PUBLISH_RESPONSE: &str = "aws.greengrass#PublishToTopicResponse";

/// One message the peer received, reduced to what these tests check.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    kind: MessageType,
    stream_id: i32,
    terminate: bool,
    operation: Option<String>,
    payload: Vec<u8>,
}

impl Seen {
    fn of(m: &RpcMessage) -> Seen {
        Seen {
            kind: m.message_type,
            stream_id: m.stream_id,
            terminate: m.is_terminate(),
            operation: m.operation.as_deref().map(str::to_owned),
            payload: m.payload.to_vec(),
        }
    }

    fn is_terminate_of(&self, stream_id: i32) -> bool {
        self.kind == MessageType::ApplicationMessage
            && self.stream_id == stream_id
            && self.terminate
            && self.operation.is_none()
            && self.payload.is_empty()
    }
}

/// The peer's side of one connection.
struct Peer {
    socket: UnixStream,
    decoder: FrameDecoder,
    seen: Sender<Seen>,
}

impl Peer {
    fn read(&mut self) -> Option<RpcMessage> {
        let m = read_message(&mut self.socket, &mut self.decoder)?;
        let _ = self.seen.send(Seen::of(&m));
        Some(m)
    }

    fn expect_request(&mut self, operation: &str) -> RpcMessage {
        let m = self.read().expect("a request");
        assert_eq!(
            m.operation.as_deref(),
            Some(operation),
            "the next message: {m:?}"
        );
        m
    }

    fn send(&mut self, m: &RpcMessage) {
        write_message(&mut self.socket, m);
    }

    fn reply(&mut self, stream_id: i32, flags: i32, model_type: &str, body: &[u8]) {
        self.send(&RpcMessage::json(
            MessageType::ApplicationMessage,
            flags,
            stream_id,
            Some(model_type.to_owned()),
            body.to_vec(),
        ));
    }

    fn event(&mut self, stream_id: i32, flags: i32, text: &str) {
        let body = json!({"jsonMessage": {"message": text}}).to_string();
        self.reply(stream_id, flags, EVENT, body.as_bytes());
    }

    fn error(&mut self, stream_id: i32, flags: i32) {
        self.send(&RpcMessage::json(
            MessageType::ApplicationError,
            flags,
            stream_id,
            Some("aws.greengrass#ServiceError"),
            &br#"{"message":"it broke"}"#[..],
        ));
    }

    /// Reads (and reports) everything until the client closes the socket.
    fn drain(&mut self) {
        while self.read().is_some() {}
    }
}

/// Starts a peer that accepts the handshake and runs `script`; returns it, a connected
/// client and the messages the peer receives after the CONNECT.
fn start(
    name: &str,
    script: impl FnOnce(&mut Peer) + Send + 'static,
) -> (ScriptedPeer, Client, Receiver<Seen>) {
    let (seen_tx, seen) = unbounded();
    let peer = ScriptedPeer::start(name, move |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        let mut peer = Peer {
            socket,
            decoder,
            seen: seen_tx,
        };
        script(&mut peer);
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .expect("connect to the scripted peer");
    (peer, client, seen)
}

fn publish(client: &Client, topic: &str) -> ggipc::Result<()> {
    client
        .publish_to_topic(PublishToTopicRequest::json(topic, json!(1)))
        .map(|_| ())
}

/// What a handler was told, in order.
#[derive(Debug, PartialEq)]
enum Told {
    Event(String),
    Error(String),
    Closed,
}

struct Recorder(Sender<Told>);

impl StreamHandler<SubscriptionResponseMessage> for Recorder {
    fn on_stream_event(&mut self, event: SubscriptionResponseMessage) {
        let text = match event {
            SubscriptionResponseMessage::JsonMessage(m) => m
                .message
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            other => format!("{other:?}"),
        };
        let _ = self.0.send(Told::Event(text));
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        let _ = self.0.send(Told::Error(error.to_string()));
        ggipc::StreamControl::KeepOpen
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send(Told::Closed);
    }
}

fn told(rx: &Receiver<Told>, what: &str) -> Told {
    expect_within(rx, WAIT, what)
}

fn nothing_more(rx: &Receiver<Told>) {
    std::thread::sleep(Duration::from_millis(100));
    let rest: Vec<Told> = rx.try_iter().collect();
    assert!(rest.is_empty(), "the handler was told more: {rest:?}");
}

#[test]
fn a_subscribe_that_times_out_is_terminated_on_the_wire_once() {
    let (peer, client, seen) = start("sub-timeout", |peer| {
        let request = peer.expect_request("aws.greengrass#SubscribeToTopic");
        // No answer: the client gives up and must end the stream it opened.
        let next = peer.read().expect("the client's TERMINATE");
        assert!(
            Seen::of(&next).is_terminate_of(request.stream_id),
            "{next:?}"
        );
        // The late response and an event on the abandoned stream are ignored.
        peer.reply(request.stream_id, 0, SUBSCRIBE_RESPONSE, b"{}");
        peer.event(request.stream_id, 0, "late");
        let publish = peer.expect_request("aws.greengrass#PublishToTopic");
        peer.reply(
            publish.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        peer.drain();
    });
    let (tx, rx) = unbounded();
    let result = returns_within(Duration::from_secs(3), "a timed-out subscribe", || {
        client.subscribe::<ggipc::model::SubscribeToTopic, _>(
            &SubscribeToTopicRequest::new("t"),
            Recorder(tx),
            CallOptions::timeout(Duration::from_millis(200)),
        )
    });
    assert!(
        matches!(result, Err(Error::Timeout(TimeoutKind::Response))),
        "{result:?}"
    );
    publish(&client, "after").expect("the connection survives the late messages");
    client.close();
    peer.join();
    let all: Vec<Seen> = seen.try_iter().collect();
    assert_eq!(all.len(), 3, "subscribe, TERMINATE, publish: {all:?}");
    nothing_more(&rx);
}

#[test]
fn a_message_on_an_unknown_stream_gets_a_protocol_error_before_the_client_drops_the_connection() {
    for bad_id in [7, -3] {
        let (peer, client, seen) = start("unknown-stream", move |peer| {
            peer.event(bad_id, 0, "who?");
            peer.drain();
        });
        wait_until(WAIT, "the client drops the connection", || {
            !client.is_connected()
        });
        peer.join();
        let all: Vec<Seen> = seen.try_iter().collect();
        assert_eq!(all.len(), 1, "one PROTOCOL_ERROR, then EOF: {all:?}");
        assert_eq!(all[0].kind, MessageType::ProtocolError);
        assert_eq!(all[0].stream_id, 0);
        let body: serde_json::Value = serde_json::from_slice(&all[0].payload).unwrap();
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(&bad_id.to_string()), "{text}");
        assert_eq!(
            client.close_reason(),
            Some(CloseReason::Protocol(ProtocolError::UnknownStream {
                stream_id: bad_id
            }))
        );
    }
}

#[test]
fn the_server_s_protocol_error_is_not_answered_with_one() {
    let (peer, client, seen) = start("peer-protocol-error", |peer| {
        let mut m = RpcMessage::json(MessageType::ProtocolError, 0, 0, None::<&str>, Vec::new());
        m.payload = br#"{"message":"you broke it"}"#.to_vec().into();
        peer.send(&m);
        peer.drain();
    });
    wait_until(WAIT, "the client drops the connection", || {
        !client.is_connected()
    });
    peer.join();
    let all: Vec<Seen> = seen.try_iter().collect();
    assert!(all.is_empty(), "nothing is sent back: {all:?}");
    assert!(
        matches!(
            client.close_reason(),
            Some(CloseReason::Protocol(
                ProtocolError::PeerProtocolError { .. }
            ))
        ),
        "{:?}",
        client.close_reason()
    );
}

#[test]
fn a_late_message_on_the_newest_stream_after_its_call_completed_is_discarded() {
    let (peer, client, seen) = start("late-newest", |peer| {
        let first = peer.expect_request("aws.greengrass#PublishToTopic");
        peer.reply(
            first.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        // A duplicate on the stream just completed (the highest id opened so far).
        peer.reply(
            first.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        let second = peer.expect_request("aws.greengrass#PublishToTopic");
        assert_eq!(second.stream_id, first.stream_id + 1);
        peer.reply(
            second.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        peer.drain();
    });
    publish(&client, "one").unwrap();
    publish(&client, "two").expect("the duplicate did not break the connection");
    assert!(client.is_connected());
    client.close();
    peer.join();
    let kinds: Vec<MessageType> = seen.try_iter().map(|s| s.kind).collect();
    assert!(
        !kinds.contains(&MessageType::ProtocolError),
        "no PROTOCOL_ERROR: {kinds:?}"
    );
}

/// Subscribes on a fresh peer that answers the subscribe and then runs `script` with the
/// stream id; returns the subscription's pieces.
fn subscribed(
    name: &str,
    script: impl FnOnce(&mut Peer, i32) + Send + 'static,
) -> (
    ScriptedPeer,
    Client,
    Receiver<Seen>,
    ggipc::Subscription,
    Receiver<Told>,
) {
    let (peer, client, seen) = start(name, move |peer| {
        let request = peer.expect_request("aws.greengrass#SubscribeToTopic");
        peer.reply(request.stream_id, 0, SUBSCRIBE_RESPONSE, b"{}");
        script(peer, request.stream_id);
    });
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("t"), Recorder(tx))
        .expect("subscribe");
    (peer, client, seen, sub, rx)
}

#[test]
fn an_application_error_without_terminate_goes_to_the_handler_and_the_stream_stays_open() {
    let (peer, client, seen, sub, rx) = subscribed("error-open", |peer, id| {
        peer.error(id, 0);
        peer.event(id, 0, "still here");
        peer.drain();
    });
    assert!(matches!(told(&rx, "the error"), Told::Error(e) if e.contains("it broke")));
    assert_eq!(
        told(&rx, "the next event"),
        Told::Event("still here".into())
    );
    let id = sub.stream_id();
    sub.close().unwrap();
    assert_eq!(told(&rx, "the end"), Told::Closed);
    client.close();
    peer.join();
    let all: Vec<Seen> = seen.try_iter().collect();
    assert_eq!(all.len(), 2, "subscribe and TERMINATE: {all:?}");
    assert!(all[1].is_terminate_of(id), "{all:?}");
    nothing_more(&rx);
}

#[test]
fn an_application_error_with_terminate_ends_the_subscription_and_is_not_terminated_again() {
    let (release_tx, release) = unbounded::<()>();
    let (peer, client, seen, sub, rx) = subscribed("error-end", move |peer, id| {
        peer.error(id, FLAG_TERMINATE_STREAM);
        let _ = release.recv_timeout(WAIT);
        // After the stream ended: a stray event is discarded, the connection lives.
        peer.event(id, 0, "stray");
        let publish = peer.expect_request("aws.greengrass#PublishToTopic");
        peer.reply(
            publish.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        peer.drain();
    });
    assert!(matches!(told(&rx, "the error"), Told::Error(e) if e.contains("it broke")));
    assert_eq!(told(&rx, "the end"), Told::Closed);
    release_tx.send(()).unwrap();
    publish(&client, "after").expect("the stray event did not break the connection");
    sub.close().unwrap();
    client.close();
    peer.join();
    let all: Vec<Seen> = seen.try_iter().collect();
    assert_eq!(
        all.len(),
        2,
        "subscribe and publish, no TERMINATE on a stream the server ended: {all:?}"
    );
    nothing_more(&rx);
}

#[test]
fn a_plain_server_terminate_closes_the_subscription_without_an_error() {
    // A last event carried by the TERMINATE itself is delivered, then the stream closes.
    let (peer, client, seen, sub, rx) = subscribed("terminate-event", |peer, id| {
        peer.event(id, 0, "first");
        peer.event(id, FLAG_TERMINATE_STREAM, "last");
        peer.drain();
    });
    assert_eq!(told(&rx, "the first event"), Told::Event("first".into()));
    assert_eq!(told(&rx, "the last event"), Told::Event("last".into()));
    assert_eq!(told(&rx, "the end"), Told::Closed);
    sub.close().unwrap();
    client.close();
    peer.join();
    assert_eq!(seen.try_iter().count(), 1, "only the subscribe was sent");
    nothing_more(&rx);

    // An empty TERMINATE (no model type): closed, no event, no error.
    let (peer, client, _seen, sub, rx) = subscribed("terminate-empty", |peer, id| {
        peer.send(&RpcMessage::new(
            MessageType::ApplicationMessage,
            FLAG_TERMINATE_STREAM,
            id,
        ));
        peer.drain();
    });
    assert_eq!(told(&rx, "the end"), Told::Closed);
    sub.close().unwrap();
    client.close();
    peer.join();
    nothing_more(&rx);
}

/// A request larger than any socket buffer, so that its write blocks part-way.
fn big_publish() -> serde_json::Value {
    json!({"topic": "big", "publishMessage": {"jsonMessage": {"message": "x".repeat(4 << 20)}}})
}

#[test]
fn a_write_that_times_out_part_way_closes_the_connection() {
    let (release_tx, release) = unbounded::<()>();
    let (peer, client, _seen) = start("partial-write", move |peer| {
        // Read nothing until the client gave up, then read whatever arrives.
        let _ = release.recv_timeout(WAIT);
        let mut sink = [0u8; 65536];
        while let Ok(n) = std::io::Read::read(&mut peer.socket, &mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    let request = big_publish();
    let result = returns_within(WAIT, "a blocked write", || {
        client.call_json(
            "PublishToTopic",
            &request,
            CallOptions::timeout(Duration::from_secs(1)),
        )
    });
    assert!(
        matches!(result, Err(Error::Timeout(TimeoutKind::Write))),
        "{result:?}"
    );
    // Half a frame is on the wire: nothing may follow it.
    wait_until(WAIT, "the connection closes", || !client.is_connected());
    assert_eq!(client.close_reason(), Some(CloseReason::WriteTimeout));
    let again = publish(&client, "after");
    assert!(
        matches!(again, Err(Error::Closed(CloseReason::WriteTimeout))),
        "{again:?}"
    );
    release_tx.send(()).unwrap();
    drop(client);
    peer.join();
}

#[test]
fn a_ping_response_that_times_out_part_way_closes_the_connection() {
    let (release_tx, release) = unbounded::<()>();
    let (peer, client, _seen) = start("partial-pong", move |peer| {
        let mut ping = RpcMessage::new(MessageType::Ping, 0, 0);
        ping.payload = vec![b'p'; 4 << 20].into();
        peer.send(&ping);
        let _ = release.recv_timeout(WAIT);
        let mut sink = [0u8; 65536];
        while let Ok(n) = std::io::Read::read(&mut peer.socket, &mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    wait_until(WAIT, "the connection closes", || !client.is_connected());
    assert_eq!(client.close_reason(), Some(CloseReason::WriteTimeout));
    release_tx.send(()).unwrap();
    drop(client);
    peer.join();
}

#[test]
fn a_call_whose_deadline_already_passed_writes_nothing_and_leaves_the_connection_usable() {
    let (peer, client, seen) = start("zero-deadline", |peer| {
        let request = peer.expect_request("aws.greengrass#PublishToTopic");
        peer.reply(
            request.stream_id,
            FLAG_TERMINATE_STREAM,
            PUBLISH_RESPONSE,
            b"{}",
        );
        peer.drain();
    });
    let result = client.call_json(
        "PublishToTopic",
        &json!({"topic": "never", "publishMessage": {"jsonMessage": {"message": 1}}}),
        CallOptions::timeout(Duration::ZERO),
    );
    assert!(result.unwrap_err().is_timeout());
    assert!(client.is_connected());
    publish(&client, "after").expect("the connection is still usable");
    client.close();
    peer.join();
    let all: Vec<Seen> = seen.try_iter().collect();
    assert_eq!(
        all.len(),
        1,
        "only the second call reached the wire: {all:?}"
    );
    assert_eq!(all[0].stream_id, 1, "the first call consumed no stream id");
    let body: serde_json::Value = serde_json::from_slice(&all[0].payload).unwrap();
    assert_eq!(body["topic"], "after");
}

/// The server stops reading (the client's next write fails with EPIPE) but keeps the
/// connection open until `done`, so that the client reads no end of stream meanwhile.
fn stop_reading(peer: &mut Peer, stopped: &Sender<()>, done: &Receiver<()>) {
    peer.socket.shutdown(Shutdown::Read).unwrap();
    stopped.send(()).unwrap();
    let _ = done.recv_timeout(WAIT);
}

#[test]
fn a_failed_terminate_write_records_the_socket_error_as_the_close_reason() {
    let (stopped_tx, stopped) = unbounded::<()>();
    let (done_tx, done) = unbounded::<()>();
    let (peer, client, _seen, sub, _rx) = subscribed("broken-pipe-control", move |peer, _| {
        stop_reading(peer, &stopped_tx, &done);
    });
    expect_within(&stopped, WAIT, "the peer stops reading");
    // The TERMINATE cannot be written; the subscription is closed anyway.
    let _ = sub.close();
    wait_until(WAIT, "the connection closes", || !client.is_connected());
    assert!(
        matches!(
            client.close_reason(),
            Some(CloseReason::Io {
                kind: std::io::ErrorKind::BrokenPipe,
                ..
            })
        ),
        "{:?}",
        client.close_reason()
    );
    done_tx.send(()).unwrap();
    drop(client);
    peer.join();
}

#[test]
fn a_failed_request_write_records_the_socket_error_as_the_close_reason() {
    let (stopped_tx, stopped) = unbounded::<()>();
    let (done_tx, done) = unbounded::<()>();
    let (peer, client, _seen) = start("broken-pipe-request", move |peer| {
        stop_reading(peer, &stopped_tx, &done);
    });
    expect_within(&stopped, WAIT, "the peer stops reading");
    let result = returns_within(WAIT, "a call on a broken pipe", || publish(&client, "t"));
    assert!(
        matches!(
            &result,
            Err(Error::Closed(CloseReason::Io {
                kind: std::io::ErrorKind::BrokenPipe,
                ..
            }))
        ),
        "{result:?}"
    );
    assert_eq!(
        client.close_reason(),
        result.err().and_then(|e| match e {
            Error::Closed(r) => Some(r),
            _ => None,
        })
    );
    done_tx.send(()).unwrap();
    drop(client);
    peer.join();
}
