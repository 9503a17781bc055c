//! The frame codec against test vectors:
//!
//! * the shared public AWS vectors (aws-sdk-go and smithy-rs), read from the project's
//!   shared folder (`$GGIPC_SHARED_DIR`, else `../shared/vectors` beside the clone);
//!   missing vectors fail the test unless `GGIPC_SKIP_SHARED_VECTORS=1`;
//! * our Greengrass IPC example frames in `tests/data/eventstream-rpc/`;
//! * frames written by the AWS C library (awscrt) in `tests/data/awscrt/`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use ggipc::codec::*;
use serde_json::{json, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// The shared `vectors` folder, or `None` when skipping is explicitly allowed.
fn shared_vectors() -> Option<PathBuf> {
    let found = common::shared_dir().map(|dir| dir.join("vectors"));
    if let Some(dir) = found
        .as_ref()
        .filter(|d| d.join("eventstream/encoded/positive").is_dir())
    {
        return Some(dir.clone());
    }
    let looked = found.map_or_else(
        || "$GGIPC_SHARED_DIR or a `shared` folder beside the clone".to_owned(),
        |d| d.display().to_string(),
    );
    if std::env::var("GGIPC_SKIP_SHARED_VECTORS").as_deref() == Ok("1") {
        eprintln!("shared vectors not found at {looked}; skipped (GGIPC_SKIP_SHARED_VECTORS=1)");
        return None;
    }
    panic!(
        "shared test vectors not found at {looked} (expected eventstream/encoded/positive inside). \
         Put the shared folder beside the clone (../shared), set GGIPC_SHARED_DIR to it, \
         or GGIPC_SKIP_SHARED_VECTORS=1 to skip."
    );
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Sorted regular files in `dir` (optionally only those with extension `ext`).
fn files(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| ext.map_or(true, |x| p.extension().is_some_and(|e| e == x)))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in {}", dir.display());
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn header_json(h: &Header) -> Value {
    let value = match &h.value {
        HeaderValue::Bool(b) => json!(b),
        HeaderValue::Byte(v) => json!(v),
        HeaderValue::Int16(v) => json!(v),
        HeaderValue::Int32(v) => json!(v),
        HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => json!(v),
        HeaderValue::ByteBuf(b) => json!(B64.encode(b)),
        HeaderValue::String(s) => json!(B64.encode(s.as_bytes())),
        HeaderValue::Uuid(u) => json!(B64.encode(u)),
        other => panic!("unexpected header value {other:?}"),
    };
    json!({ "name": h.name, "type": h.value.type_code(), "value": value })
}

/// The decoded-JSON description of `msg` (lengths and CRCs taken from `encoded`,
/// which must be `msg`'s encoding).
fn message_json(msg: &Message, encoded: &[u8]) -> Value {
    let total = msg.encoded_len().unwrap();
    assert_eq!(total, encoded.len());
    json!({
        "total_length": total,
        "headers_length": total - 16 - msg.payload.len(),
        "prelude_crc": be32(encoded, 8) as i32,
        "headers": msg.headers.iter().map(header_json).collect::<Vec<_>>(),
        "payload": B64.encode(&msg.payload),
        "message_crc": be32(encoded, encoded.len() - 4) as i32,
    })
}

/// Decodes `bytes`, checks it against `expected` JSON, re-encodes byte-for-byte.
fn check_positive(label: &str, bytes: &[u8], expected: &Value) -> Message {
    let limits = Limits::default();
    let msg = Message::decode(bytes, &limits).unwrap_or_else(|e| panic!("{label}: {e}"));
    let encoded = msg.to_bytes(&limits).unwrap();
    assert_eq!(encoded.as_ref(), bytes, "{label}: re-encoding differs");
    assert_eq!(
        &message_json(&msg, &encoded),
        expected,
        "{label}: decoded JSON differs"
    );
    // also against the raw prelude of the input
    assert_eq!(expected["total_length"], json!(be32(bytes, 0)), "{label}");
    assert_eq!(expected["headers_length"], json!(be32(bytes, 4)), "{label}");
    msg
}

/// Feeds `frames` to a FrameDecoder one byte at a time, and all at once.
fn check_streaming(frames: &[Vec<u8>], expected: &[Message]) {
    let limits = Limits::with_max_frame_size(24 * 1024 * 1024);
    let mut dec = FrameDecoder::new(limits);
    let mut got = vec![];
    for frame in frames {
        for b in frame {
            dec.extend(std::slice::from_ref(b));
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
                assert!(got.len() <= expected.len(), "more frames than were sent");
            }
        }
    }
    assert_eq!(got, expected, "one byte at a time");
    assert_eq!(dec.finish(), Ok(()));

    let mut dec = FrameDecoder::new(limits);
    dec.extend(&frames.concat());
    let mut got = vec![];
    while let Some(m) = dec.next_message().unwrap() {
        got.push(m);
        assert!(got.len() <= expected.len(), "more frames than were sent");
    }
    assert_eq!(got, expected, "all at once");
    assert_eq!(dec.buffered(), 0);
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn aws_sdk_go_positive_vectors() {
    let Some(dir) = shared_vectors() else { return };
    let es = dir.join("eventstream");
    let (mut frames, mut msgs) = (vec![], vec![]);
    for path in files(&es.join("encoded/positive"), None) {
        let n = name(&path);
        let bytes = read(&path);
        let expected = json_file(&es.join("decoded/positive").join(&n));
        msgs.push(check_positive(&n, &bytes, &expected));
        frames.push(bytes);
    }
    assert_eq!(frames.len(), 5);
    check_streaming(&frames, &msgs);
}

#[test]
fn aws_sdk_go_negative_vectors() {
    let Some(dir) = shared_vectors() else { return };
    let es = dir.join("eventstream");
    let paths = files(&es.join("encoded/negative"), None);
    assert_eq!(paths.len(), 4);
    for path in paths {
        let n = name(&path);
        let bytes = read(&path);
        let reason = String::from_utf8(read(&es.join("decoded/negative").join(&n))).unwrap();
        let err = Message::decode(&bytes, &Limits::default()).unwrap_err();
        match reason.trim() {
            "Prelude checksum mismatch" => {
                assert!(
                    matches!(err, CodecError::PreludeChecksumMismatch { .. }),
                    "{n}: {err:?}"
                )
            }
            "Message checksum mismatch" => {
                assert!(
                    matches!(err, CodecError::MessageChecksumMismatch { .. }),
                    "{n}: {err:?}"
                )
            }
            other => panic!("{n}: unexpected reason text {other:?}"),
        }
        // the streaming decoder reports the same error
        let mut dec = FrameDecoder::new(Limits::default());
        dec.extend(&bytes);
        assert_eq!(dec.next_message(), Err(err.clone()), "{n}");
        assert_eq!(dec.next_message(), Err(err), "{n}: error is sticky");
    }
}

fn h(name: &str, value: HeaderValue) -> Header {
    Header::new(name.to_owned(), value)
}

fn smithy_valid() -> Vec<(&'static str, Message)> {
    let uuid = [
        0xb7, 0x9b, 0xc9, 0x14, 0xde, 0x21, 0x4e, 0x13, 0xb8, 0xb2, 0xbc, 0x47, 0xe8, 0x5b, 0x7f,
        0x0b,
    ];
    vec![
        (
            "valid_no_headers",
            Message {
                headers: vec![],
                payload: Bytes::from_static(b"another test payload"),
            },
        ),
        (
            "valid_empty_payload",
            Message {
                headers: vec![h("some-header", HeaderValue::Int16(500))],
                payload: Bytes::new(),
            },
        ),
        (
            "valid_with_all_headers_and_payload",
            Message {
                headers: vec![
                    h("true", HeaderValue::Bool(true)),
                    h("false", HeaderValue::Bool(false)),
                    h("byte", HeaderValue::Byte(50)),
                    h("short", HeaderValue::Int16(20_000)),
                    h("int", HeaderValue::Int32(500_000)),
                    h("long", HeaderValue::Int64(50_000_000_000)),
                    h(
                        "bytes",
                        HeaderValue::ByteBuf(Bytes::from_static(b"some bytes")),
                    ),
                    h("str", HeaderValue::String("some str".into())),
                    h("time", HeaderValue::Timestamp(5_000_000_000)),
                    h("uuid", HeaderValue::Uuid(uuid)),
                ],
                payload: Bytes::from_static(b"some payload"),
            },
        ),
    ]
}

#[test]
fn smithy_rs_valid_vectors() {
    let Some(dir) = shared_vectors() else { return };
    let limits = Limits::default();
    let (mut frames, mut msgs) = (vec![], vec![]);
    for (file, expected) in smithy_valid() {
        let bytes = read(&dir.join("eventstream/smithy-rs").join(file));
        let msg = Message::decode(&bytes, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(msg, expected, "{file}");
        assert_eq!(
            expected.to_bytes(&limits).unwrap().as_ref(),
            bytes.as_slice(),
            "{file}"
        );
        frames.push(bytes);
        msgs.push(msg);
    }
    check_streaming(&frames, &msgs);
}

#[test]
fn smithy_rs_invalid_vectors() {
    let Some(dir) = shared_vectors() else { return };
    let smithy = dir.join("eventstream/smithy-rs");
    let invalid: Vec<PathBuf> = files(&smithy, None)
        .into_iter()
        .filter(|p| name(p).starts_with("invalid_"))
        .collect();
    assert_eq!(invalid.len(), 8);
    for path in invalid {
        let n = name(&path);
        let bytes = read(&path);
        let err = Message::decode(&bytes, &Limits::default()).expect_err(&n);
        match n.as_str() {
            "invalid_prelude_checksum" => {
                assert!(
                    matches!(err, CodecError::PreludeChecksumMismatch { .. }),
                    "{n}: {err:?}"
                )
            }
            "invalid_message_checksum" => {
                assert!(
                    matches!(err, CodecError::MessageChecksumMismatch { .. }),
                    "{n}: {err:?}"
                )
            }
            "invalid_headers_length" => assert!(
                matches!(
                    err,
                    CodecError::HeadersLengthOutOfRange {
                        headers_length: 77,
                        total_length: 89
                    }
                ),
                "{n}: {err:?}"
            ),
            _ => {} // rejected; the kind depends on check order (see the vectors' README)
        }
        // The streaming decoder rejects it too (taking exactly total_length bytes).
        let mut dec = FrameDecoder::new(Limits::default());
        dec.extend(&bytes);
        assert!(dec.next_message().is_err(), "{n}: accepted by FrameDecoder");
    }
}

/// One row of `tests/data/eventstream-rpc/README.md`.
struct RpcRow {
    file: &'static str,
    len: usize,
    message_type: i32,
    flags: i32,
    stream_id: i32,
    /// Headers other than `:message-type`, `:message-flags`, `:stream-id`, in wire
    /// order (all strings in these frames).
    others: &'static [(&'static str, &'static str)],
    payload: &'static str,
}

const JSON: (&str, &str) = (":content-type", "application/json");
const PUBLISH_REQ: [(&str, &str); 3] = [
    JSON,
    ("service-model-type", "aws.greengrass#PublishToTopicRequest"),
    ("operation", "aws.greengrass#PublishToTopic"),
];

const RPC_ROWS: &[RpcRow] = &[
    RpcRow {
        file: "client_connect.bin",
        len: 111,
        message_type: 4,
        flags: 0,
        stream_id: 0,
        others: &[(":version", "0.1.0")],
        payload: r#"{"authToken": "tok123"}"#,
    },
    RpcRow {
        file: "client_publish_to_topic_request.bin",
        len: 276,
        message_type: 0,
        flags: 0,
        stream_id: 1,
        others: &PUBLISH_REQ,
        payload: r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "aGk="}}}"#,
    },
    RpcRow {
        file: "client_subscribe_to_topic_request.bin",
        len: 222,
        message_type: 0,
        flags: 0,
        stream_id: 2,
        others: &[
            JSON,
            (
                "service-model-type",
                "aws.greengrass#SubscribeToTopicRequest",
            ),
            ("operation", "aws.greengrass#SubscribeToTopic"),
        ],
        payload: r#"{"topic": "t"}"#,
    },
    RpcRow {
        file: "client_publish_to_topic_json_request.bin",
        len: 292,
        message_type: 0,
        flags: 0,
        stream_id: 3,
        others: &PUBLISH_REQ,
        payload: r#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": {"a": null, "b": [1, 2]}}}}"#,
    },
    RpcRow {
        file: "client_terminate_stream.bin",
        len: 71,
        message_type: 0,
        flags: 2,
        stream_id: 6,
        others: &[],
        payload: "",
    },
    RpcRow {
        file: "client_protocol_error_unknown_stream.bin",
        len: 238,
        message_type: 6,
        flags: 0,
        stream_id: 0,
        others: &[JSON],
        payload: r#"{ "message": "stream-id values must be monotonically incrementing. A stream-id arrived that was lower than the last seen stream-id." }"#,
    },
    RpcRow {
        file: "server_connect_ack_accepted.bin",
        len: 71,
        message_type: 5,
        flags: 1,
        stream_id: 0,
        others: &[],
        payload: "",
    },
    RpcRow {
        file: "server_connect_ack_rejected.bin",
        len: 71,
        message_type: 5,
        flags: 0,
        stream_id: 0,
        others: &[],
        payload: "",
    },
    RpcRow {
        file: "server_publish_to_topic_response.bin",
        len: 165,
        message_type: 0,
        flags: 2,
        stream_id: 1,
        others: &[
            JSON,
            (
                "service-model-type",
                "aws.greengrass#PublishToTopicResponse",
            ),
        ],
        payload: "{}",
    },
    RpcRow {
        file: "server_subscribe_to_topic_response.bin",
        len: 182,
        message_type: 0,
        flags: 0,
        stream_id: 2,
        others: &[
            JSON,
            (
                "service-model-type",
                "aws.greengrass#SubscribeToTopicResponse",
            ),
        ],
        payload: r#"{"topicName":"t"}"#,
    },
    RpcRow {
        file: "server_subscription_event.bin",
        len: 245,
        message_type: 0,
        flags: 0,
        stream_id: 2,
        others: &[
            JSON,
            (
                "service-model-type",
                "aws.greengrass#SubscriptionResponseMessage",
            ),
        ],
        payload: r#"{"binaryMessage":{"message":"aGk=","context":{"topic":"t"}},"unknownField":1}"#,
    },
    RpcRow {
        file: "server_ping.bin",
        len: 94,
        message_type: 2,
        flags: 0,
        stream_id: 0,
        others: &[("x-custom", "abc")],
        payload: "pingdata",
    },
    RpcRow {
        file: "server_application_error_unauthorized.bin",
        len: 277,
        message_type: 1,
        flags: 2,
        stream_id: 3,
        others: &[
            JSON,
            ("service-model-type", "aws.greengrass#UnauthorizedError"),
        ],
        payload: r#"{"message":"denied","_service":"aws.greengrass#GreengrassCoreIPC","_message":"denied","_errorCode":"UnauthorizedError"}"#,
    },
    RpcRow {
        file: "server_application_error_text_plain.bin",
        len: 117,
        message_type: 1,
        flags: 2,
        stream_id: 4,
        others: &[(":content-type", "text/plain")],
        payload: "InternalServerError",
    },
    RpcRow {
        file: "server_application_error_no_model_type.bin",
        len: 185,
        message_type: 1,
        flags: 2,
        stream_id: 5,
        others: &[JSON],
        payload: r#"{ "error": "Unsupported Operation", "message": "x is an unsupported operation." }"#,
    },
];

const RPC_HEADERS: [&str; 3] = [":message-type", ":message-flags", ":stream-id"];

#[test]
fn eventstream_rpc_frames() {
    let dir = Path::new(DATA).join("eventstream-rpc");
    let on_disk: Vec<String> = files(&dir, Some("bin")).iter().map(|p| name(p)).collect();
    let mut in_table: Vec<String> = RPC_ROWS.iter().map(|r| r.file.to_string()).collect();
    in_table.sort();
    assert_eq!(on_disk, in_table, "one table row per .bin file");
    assert_eq!(on_disk.len(), 15);

    let limits = Limits::default();
    let (mut frames, mut msgs) = (vec![], vec![]);
    for row in RPC_ROWS {
        let f = row.file;
        let bytes = read(&dir.join(f));
        assert_eq!(bytes.len(), row.len, "{f}");
        let msg = Message::decode(&bytes, &limits).unwrap_or_else(|e| panic!("{f}: {e}"));
        for (name, want) in RPC_HEADERS
            .iter()
            .zip([row.message_type, row.flags, row.stream_id])
        {
            assert_eq!(
                msg.header(name),
                Some(&HeaderValue::Int32(want)),
                "{f}: {name}"
            );
            assert_eq!(
                msg.headers.iter().filter(|h| h.name == *name).count(),
                1,
                "{f}: {name} once"
            );
        }
        let others: Vec<(&str, Option<&str>)> = msg
            .headers
            .iter()
            .filter(|h| !RPC_HEADERS.contains(&&*h.name))
            .map(|h| (&*h.name, h.value.as_str()))
            .collect();
        let want: Vec<(&str, Option<&str>)> =
            row.others.iter().map(|(n, v)| (*n, Some(*v))).collect();
        assert_eq!(others, want, "{f}: other headers (all strings, wire order)");
        assert_eq!(msg.payload.as_ref(), row.payload.as_bytes(), "{f}: payload");
        assert_eq!(
            msg.to_bytes(&limits).unwrap().as_ref(),
            bytes.as_slice(),
            "{f}: re-encode"
        );
        frames.push(bytes);
        msgs.push(msg);
    }
    // Wire positions the README points out.
    assert_eq!(msgs[0].headers[0].name, ":version");
    assert_eq!(msgs[1].headers.last().unwrap().name, "operation");
    assert_eq!(msgs[11].headers[0].name, "x-custom");
    check_streaming(&frames, &msgs);
}

#[test]
fn awscrt_frames() {
    let dir = Path::new(DATA).join("awscrt");
    let bins = files(&dir, Some("bin"));
    assert!(
        bins.len() >= 9,
        "expected the awscrt frames in {}",
        dir.display()
    );
    let (mut frames, mut msgs) = (vec![], vec![]);
    let mut types_seen = [false; 10];
    for path in bins {
        let n = name(&path);
        let bytes = read(&path);
        let expected = json_file(&path.with_extension("json"));
        let msg = check_positive(&n, &bytes, &expected);
        for h in &msg.headers {
            types_seen[h.value.type_code() as usize] = true;
        }
        frames.push(bytes);
        msgs.push(msg);
    }
    assert_eq!(types_seen, [true; 10], "every header type appears");
    assert!(
        msgs.iter().any(|m| m.payload.is_empty()),
        "an empty payload"
    );
    assert!(
        msgs.iter().any(|m| m.payload.len() > 65_536),
        "a payload over 64 KiB"
    );
    check_streaming(&frames, &msgs);
}
