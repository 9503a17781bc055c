//! Group `codec`: frame encode and decode throughput, against memcpy of the same bytes.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ggipc::codec::{FrameDecoder, Limits, Message};
use ggipc::model::{Shape, SubscriptionResponseMessage};
use ggipc::rpc::{MessageType, RpcMessage};

use crate::support::{time_loop, Goal, Row, Settings};

pub fn run(s: &Settings, rows: &mut Vec<Row>) {
    let budget = s.secs(0.4);
    for (label, size) in [("64 B", 64usize), ("1 KiB", 1024), ("64 KiB", 64 * 1024)] {
        let payload = Bytes::from(vec![0xa5u8; size]);
        let frame: Message = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            7,
            Some(SubscriptionResponseMessage::MODEL_TYPE),
            payload,
        )
        .to_frame();
        let limits = Limits::default();
        let encoded = frame.to_bytes(&limits).expect("encode");
        let flen = encoded.len();

        // Baseline: a plain copy of the same bytes.
        let mut dst = vec![0u8; flen];
        let (n, t) = time_loop(budget, || {
            dst.copy_from_slice(std::hint::black_box(&encoded));
            std::hint::black_box(&mut dst);
        });
        let memcpy = (n as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        // Encode: into a reused buffer, as the writer does.
        let mut out = BytesMut::with_capacity(flen);
        let (n, t) = time_loop(budget, || {
            out.clear();
            std::hint::black_box(&frame)
                .encode(&limits, &mut out)
                .expect("encode");
            std::hint::black_box(&out);
        });
        let enc = (n as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        // Decode: a FrameDecoder fed a chunk of back-to-back frames (≈64 KiB), as the I/O
        // thread is (the copy into its buffer is counted: a socket read does it).
        let per_chunk = (64 * 1024 / flen).max(1);
        let mut chunk = Vec::with_capacity(per_chunk * flen);
        for _ in 0..per_chunk {
            chunk.extend_from_slice(&encoded);
        }
        let mut decoder = FrameDecoder::new(limits);
        let mut frames = 0u64;
        let start = Instant::now();
        let mut t = Duration::ZERO;
        while t < budget {
            for _ in 0..8 {
                decoder.extend(&chunk);
                while let Some(m) = decoder.next_message().expect("decode") {
                    std::hint::black_box(&m);
                    frames += 1;
                }
            }
            t = start.elapsed();
        }
        let dec = (frames as f64 * flen as f64) / t.as_secs_f64() / 1e6;

        let what = "memcpy MB/s";
        rows.push(
            Row::new(format!("codec encode {label} frame"), enc, "MB/s").baseline(memcpy, what),
        );
        let mut row =
            Row::new(format!("codec decode {label} frame"), dec, "MB/s").baseline(memcpy, what);
        if size == 1024 {
            row = row.target("≥ 1000 MB/s", Goal::AtLeast(1000.0));
        }
        rows.push(row);
    }
}
