//! Group writes (issue 12 point 2) seen from outside: many threads calling at once each
//! get their own reply and the server sees stream ids rise by exactly one; PINGs are
//! answered while callers keep the write path busy; a server that stops reading fails
//! every waiting caller with a write timeout. Over real sockets; every wait bounded.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use crossbeam_channel::{unbounded, Sender};
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::emulator::Emulator;
use ggipc::model::PublishToTopicRequest;
use ggipc::rpc::{MessageType, RpcMessage, FLAG_TERMINATE_STREAM};
use ggipc::{CallOptions, Client, CloseReason, Error, TimeoutKind};
use serde_json::json;

/// Generous hang bound: no wait here should come close.
const WAIT: Duration = Duration::from_secs(10);

const PUBLISH_RESPONSE: &str = "aws.greengrass#PublishToTopicResponse";

/// Answers the publish on `stream_id` with `body` (its final reply).
fn answer(socket: &mut std::os::unix::net::UnixStream, stream_id: i32, body: Vec<u8>) {
    write_message(
        socket,
        &RpcMessage::json(
            MessageType::ApplicationMessage,
            FLAG_TERMINATE_STREAM,
            stream_id,
            Some(PUBLISH_RESPONSE),
            body,
        ),
    );
}

/// Starts a raw peer that accepts the handshake and runs `script`, and a client on it.
fn start(
    name: &str,
    script: impl FnOnce(&mut std::os::unix::net::UnixStream, &mut FrameDecoder) + Send + 'static,
) -> (ScriptedPeer, Client) {
    let peer = ScriptedPeer::start(name, move |mut socket| {
        let mut decoder = FrameDecoder::new(Limits::default());
        accept_handshake(&mut socket, &mut decoder);
        script(&mut socket, &mut decoder);
    });
    let client = Client::builder()
        .socket_path(&peer.path)
        .auth_token("t")
        .connect()
        .expect("connect to the scripted peer");
    (peer, client)
}

/// Answers every request with its own topic (so each caller can tell its reply) and
/// reports the stream ids in the order they arrived, until the client closes.
fn echo(
    socket: &mut std::os::unix::net::UnixStream,
    decoder: &mut FrameDecoder,
    ids: &Sender<i32>,
) {
    while let Some(m) = read_message(socket, decoder) {
        if m.operation.is_none() {
            continue;
        }
        let _ = ids.send(m.stream_id);
        let request: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let body = json!({ "echo": request["topic"] }).to_string();
        answer(socket, m.stream_id, body.into_bytes());
    }
}

fn publish_json(topic: &str) -> serde_json::Value {
    json!({"topic": topic, "publishMessage": {"jsonMessage": {"message": 1}}})
}

#[test]
fn many_threads_calling_at_once_each_get_their_own_reply_and_ids_rise_by_one() {
    const THREADS: usize = 8;
    const CALLS: usize = 150;
    let (ids_tx, ids) = unbounded();
    let (peer, client) = start("batch-echo", move |socket, decoder| {
        echo(socket, decoder, &ids_tx)
    });
    let client = Arc::new(client);
    returns_within(Duration::from_secs(60), "every call", || {
        thread::scope(|scope| {
            for t in 0..THREADS {
                let client = &client;
                scope.spawn(move || {
                    for c in 0..CALLS {
                        let topic = format!("t{t}/c{c}");
                        let reply = client
                            .call_json(
                                "PublishToTopic",
                                &publish_json(&topic),
                                CallOptions::timeout(WAIT),
                            )
                            .expect("a reply");
                        assert_eq!(reply["echo"], topic.as_str(), "a reply for another call");
                    }
                });
            }
        })
    });
    assert_eq!(client.open_streams(), 0);
    drop(client);
    peer.join();
    let seen: Vec<i32> = ids.try_iter().collect();
    let expected: Vec<i32> = (1..=(THREADS * CALLS) as i32).collect();
    assert_eq!(
        seen, expected,
        "new stream ids reach the wire as 1, 2, 3, …"
    );
}

#[test]
fn eight_threads_publishing_to_the_emulator_all_succeed_on_one_connection() {
    // The emulator closes the connection on a stream id that is not the last + 1.
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    returns_within(Duration::from_secs(60), "every publish", || {
        thread::scope(|scope| {
            for t in 0..8 {
                let client = &client;
                scope.spawn(move || {
                    for _ in 0..250 {
                        client
                            .publish_to_topic(PublishToTopicRequest::binary(
                                format!("batch/{t}"),
                                vec![0x5a; 128],
                            ))
                            .expect("publish");
                    }
                });
            }
        })
    });
    assert!(client.is_connected());
    assert_eq!(emu.connection_count(), 1);
    let served = emu
        .records()
        .calls()
        .iter()
        .filter(|c| c.operation == "PublishToTopic" && c.outcome == "ok")
        .count();
    assert_eq!(served, 2000);
}

#[test]
fn pings_are_answered_while_callers_keep_the_write_path_busy() {
    const PINGS: usize = 20;
    let (pongs_tx, pongs) = unbounded();
    let (peer, client) = start("batch-ping", move |socket, decoder| {
        let mut requests = 0usize;
        let mut sent = 0usize;
        while let Some(m) = read_message(socket, decoder) {
            match m.message_type {
                MessageType::PingResponse => {
                    let _ = pongs_tx.send(String::from_utf8_lossy(&m.payload).into_owned());
                }
                _ if m.operation.is_some() => {
                    requests += 1;
                    answer(socket, m.stream_id, b"{}".to_vec());
                    // A PING every 25 requests, in the middle of the callers' traffic.
                    if requests % 25 == 0 && sent < PINGS {
                        let mut ping = RpcMessage::new(MessageType::Ping, 0, 0);
                        ping.payload = format!("ping {sent}").into_bytes().into();
                        write_message(socket, &ping);
                        sent += 1;
                    }
                }
                _ => {}
            }
        }
    });
    let client = Arc::new(client);
    returns_within(Duration::from_secs(60), "the callers", || {
        thread::scope(|scope| {
            for t in 0..4 {
                let client = &client;
                scope.spawn(move || {
                    for _ in 0..200 {
                        client
                            .call_json(
                                "PublishToTopic",
                                &publish_json(&format!("p{t}")),
                                CallOptions::timeout(WAIT),
                            )
                            .expect("a reply");
                    }
                });
            }
        })
    });
    let mut answered: Vec<String> = (0..PINGS)
        .map(|_| expect_within(&pongs, WAIT, "a PING_RESPONSE"))
        .collect();
    answered.sort_by_key(|p| p[5..].parse::<usize>().unwrap());
    let expected: Vec<String> = (0..PINGS).map(|i| format!("ping {i}")).collect();
    assert_eq!(answered, expected, "every PING answered with its payload");
    assert!(client.is_connected());
    drop(client);
    peer.join();
}

#[test]
fn a_server_that_stops_reading_fails_every_waiting_caller_with_a_write_timeout() {
    let (release_tx, release) = unbounded::<()>();
    let (started_tx, started) = unbounded::<()>();
    let (peer, client) = start("batch-stall", move |socket, _decoder| {
        // Read the start of the big frame (its write is under way), then nothing until
        // the callers gave up, then drain until the client closes.
        let mut head = vec![0u8; 65536];
        std::io::Read::read_exact(socket, &mut head).unwrap();
        started_tx.send(()).unwrap();
        let _ = release.recv_timeout(WAIT);
        let mut sink = [0u8; 65536];
        while let Ok(n) = std::io::Read::read(socket, &mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    let client = Arc::new(client);
    // One big frame fills the socket buffer and blocks part-way; the small calls queue
    // behind it with shorter deadlines: theirs pass first (they are withdrawn unsent),
    // then the big one's (half a frame is out: the connection closes).
    let big = json!({"topic": "big", "publishMessage": {"jsonMessage": {"message": "x".repeat(4 << 20)}}});
    let results = returns_within(WAIT, "the stalled callers", || {
        thread::scope(|scope| {
            let client = &client;
            let big = scope.spawn(move || {
                client.call_json(
                    "PublishToTopic",
                    &big,
                    CallOptions::timeout(Duration::from_millis(2000)),
                )
            });
            expect_within(&started, WAIT, "the big frame starts going out");
            let small: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(move || {
                        client.call_json(
                            "PublishToTopic",
                            &publish_json("small"),
                            CallOptions::timeout(Duration::from_millis(500)),
                        )
                    })
                })
                .collect();
            std::iter::once(big)
                .chain(small)
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    for result in &results {
        assert!(
            matches!(result, Err(Error::Timeout(TimeoutKind::Write))),
            "{results:?}"
        );
    }
    // Half a frame is on the wire: the connection closes.
    wait_until(WAIT, "the connection closes", || !client.is_connected());
    assert_eq!(client.close_reason(), Some(CloseReason::WriteTimeout));
    release_tx.send(()).unwrap();
    drop(client);
    peer.join();
}
