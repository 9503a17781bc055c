//! Deterministic, seeded, structure-aware fuzzing of the RPC layer and the client's read
//! path: frames with correct CRCs around mutated RPC headers and payloads, cut into
//! random chunks, fed by a raw peer to a real client while it makes calls.
//!
//! The process's peak virtual memory (`VmPeak`) must not grow anywhere near the hostile
//! lengths sent (up to 4 GiB): no buffer is ever sized by an unchecked length.
//!
//! `GGIPC_FUZZ_ITERS=<n>` multiplies the iteration counts, `GGIPC_FUZZ_SEED=<u64>`
//! changes the seed; `--nocapture` prints the counts.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ggipc::codec::{self, FrameDecoder, Header, HeaderValue, Limits, Message};
use ggipc::rpc::{self, MessageType, RpcMessage};
use ggipc::{CallOptions, Client};

/// Peak virtual memory of this process (`VmPeak`), in KiB. A buffer sized by a hostile
/// length (up to 4 GiB) would raise it by that much even if its pages were never touched.
fn vm_peak_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The client's frame limit in these tests; hostile lengths go up to 4 GiB.
const MAX_FRAME: u32 = 64 * 1024;
/// How much the peak virtual memory may grow during the run: thread stacks and glibc's
/// per-thread arenas (64 MiB each, at most 8 per core) account for up to ~1.3 GiB on
/// 2 cores; a buffer sized by the hostile 4 GiB length would add 4 GiB. (The codec fuzz
/// test checks the decoder's buffer against the frame limit directly.)
const VM_PEAK_GROWTH_BOUND_KIB: usize = 3 * 1024 * 1024;

fn seed() -> u64 {
    std::env::var("GGIPC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6767_6970_635f_7270)
}

fn scale() -> usize {
    std::env::var("GGIPC_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

const NAMES: [&str; 8] = [
    rpc::MESSAGE_TYPE,
    rpc::MESSAGE_FLAGS,
    rpc::STREAM_ID,
    rpc::CONTENT_TYPE,
    rpc::MODEL_TYPE,
    rpc::OPERATION,
    rpc::VERSION,
    "x-other",
];

fn value(rng: &mut Rng) -> HeaderValue {
    match rng.below(10) {
        0 => HeaderValue::Bool(rng.chance(2)),
        1 => HeaderValue::Byte(rng.next() as i8),
        2 => HeaderValue::Int16(rng.next() as i16),
        3 | 4 => HeaderValue::Int32(match rng.below(5) {
            0 => rng.next() as i32,
            1 => -(rng.below(3) as i32),
            _ => rng.below(12) as i32,
        }),
        5 => HeaderValue::Int64(rng.next() as i64),
        6 => {
            let n = rng.below(40);
            HeaderValue::ByteBuf(Bytes::from(rng.bytes(n)))
        }
        7 => HeaderValue::String(
            [
                "application/json",
                "text/plain",
                "aws.greengrass#PublishToTopicResponse",
                "",
                "0.1.0",
            ][rng.below(5)]
            .into(),
        ),
        8 => HeaderValue::Timestamp(rng.next() as i64),
        _ => HeaderValue::Uuid(rng.bytes(16).try_into().unwrap()),
    }
}

fn payload(rng: &mut Rng) -> Bytes {
    let p: &[u8] = match rng.below(6) {
        0 => b"{}",
        1 => br#"{"message":"x"}"#,
        2 => b"{\"not json",
        3 => br#"{"jsonMessage":{"message":1}}"#,
        4 => b"",
        _ => {
            let n = rng.below(200);
            return Bytes::from(rng.bytes(n));
        }
    };
    Bytes::from_static(p)
}

/// A structurally plausible RPC message: mostly valid, with one or two mutations.
fn rpc_frame(rng: &mut Rng, max_stream: i32) -> Message {
    let types = [0, 1, 2, 3, 4, 5, 6, 7];
    let message_type = types[rng.below(types.len())];
    let stream = if rng.chance(3) {
        0
    } else {
        rng.below(max_stream as usize + 3) as i32
    };
    let mut m = RpcMessage::json(
        MessageType::from_wire(message_type).unwrap(),
        [0, 1, 2, 3][rng.below(4)],
        stream,
        Some("aws.greengrass#PublishToTopicResponse"),
        payload(rng),
    )
    .to_frame();
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0 if !m.headers.is_empty() => {
                let i = rng.below(m.headers.len());
                m.headers.remove(i);
            }
            1 if !m.headers.is_empty() => {
                let i = rng.below(m.headers.len());
                m.headers[i].value = value(rng);
            }
            _ => m
                .headers
                .push(Header::new(NAMES[rng.below(NAMES.len())], value(rng))),
        }
    }
    m
}

/// Bytes of one frame, sometimes with a corrupted (then resealed) length field.
fn frame_bytes(rng: &mut Rng, m: &Message) -> Vec<u8> {
    let mut b = m.to_bytes(&Limits::default()).unwrap().to_vec();
    match rng.below(12) {
        0 => {
            let hostile = [u32::MAX, 1 << 31, MAX_FRAME + 1, 15, 0][rng.below(5)];
            b[..4].copy_from_slice(&hostile.to_be_bytes());
            codec::reseal(&mut b);
        }
        1 => {
            let hostile = [u32::MAX, b.len() as u32, 1, 0][rng.below(4)];
            b[4..8].copy_from_slice(&hostile.to_be_bytes());
            codec::reseal(&mut b);
        }
        2 if b.len() > 16 => {
            let i = 12 + rng.below(b.len() - 16);
            b[i] = rng.next() as u8;
            codec::reseal(&mut b);
        }
        _ => {}
    }
    b
}

#[test]
fn rpc_from_frame_never_panics_on_mutated_headers() {
    let mut rng = Rng::new(seed());
    let n = 50_000 * scale();
    let mut accepted = 0;
    for _ in 0..n {
        let m = rpc_frame(&mut rng, 8);
        if let Ok(r) = RpcMessage::from_frame(m.clone()) {
            accepted += 1;
            // What is accepted re-encodes to an equivalent message (unless a reserved
            // header was duplicated: the first one counts, and the copy kept among the
            // extra headers would be written first on re-encoding).
            let duplicated = r
                .extra_headers
                .iter()
                .any(|h| NAMES[..7].contains(&&*h.name));
            if !duplicated {
                assert_eq!(RpcMessage::from_frame(r.to_frame()).unwrap(), r);
            }
        }
        // And through the byte path, with a decoder at the client's limits.
        let bytes = frame_bytes(&mut rng, &m);
        let mut d = FrameDecoder::new(Limits::with_max_frame_size(MAX_FRAME));
        d.extend(&bytes);
        if let Ok(Some(frame)) = d.next_message() {
            let _ = RpcMessage::from_frame(frame);
        }
    }
    println!("rpc_from_frame: {n} inputs, {accepted} accepted");
}

#[test]
fn the_client_read_path_survives_random_hostile_streams() {
    let mut rng = Rng::new(seed() ^ 0x5555);
    let sessions = 400 * scale();
    let mut frames_sent = 0usize;
    let peak_before = vm_peak_kib();
    for session in 0..sessions {
        let mut frames = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let m = rpc_frame(&mut rng, 4);
            frames.push(frame_bytes(&mut rng, &m));
        }
        if rng.chance(10) {
            let n = rng.below(64);
            frames.push(rng.bytes(n));
        }
        frames_sent += frames.len();
        let chunk_seed = rng.next();
        let peer = ScriptedPeer::start("rpcfuzz", move |mut socket| {
            let mut rng = Rng::new(chunk_seed);
            let mut decoder = FrameDecoder::new(Limits::default());
            accept_handshake(&mut socket, &mut decoder);
            // Let the client's calls reach us (stream ids 1..), then answer with chaos.
            let _ = read_message(&mut socket, &mut decoder);
            let all: Vec<u8> = frames.concat();
            let mut at = 0;
            while at < all.len() {
                let n = 1 + rng.below(64).min(all.len() - at - 1);
                if socket.write_all(&all[at..at + n]).is_err() {
                    return;
                }
                at += n;
            }
            // Close: whatever state the client is in must end cleanly.
        });
        let client = Client::builder()
            .socket_path(&peer.path)
            .auth_token("t")
            .max_frame_size(MAX_FRAME)
            .request_timeout(Duration::from_secs(2))
            .connect()
            .unwrap();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let c = client.clone();
                std::thread::spawn(move || {
                    c.call_json(
                        "PublishToTopic",
                        &serde_json::json!({}),
                        CallOptions::default(),
                    )
                })
            })
            .collect();
        for c in callers {
            // Each call ends (answered, typed error, or closed), never hangs or panics.
            let _ = returns_within(Duration::from_secs(5), "a fuzzed call", || {
                c.join().expect("caller panicked")
            });
        }
        peer.join();
        wait_until(Duration::from_secs(5), "the client sees the close", || {
            !client.is_connected()
        });
        assert!(client.close_reason().is_some(), "session {session}");
        drop(client);
    }
    let growth = vm_peak_kib().saturating_sub(peak_before);
    println!(
        "client read path: {sessions} sessions, {frames_sent} frames, peak virtual memory grew by {growth} KiB"
    );
    assert!(
        growth < VM_PEAK_GROWTH_BOUND_KIB,
        "peak virtual memory grew by {growth} KiB: a buffer followed a hostile length"
    );
}
