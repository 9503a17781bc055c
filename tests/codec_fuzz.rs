//! Deterministic, seeded, structure-aware fuzzing of the frame codec.
//!
//! Set `GGIPC_FUZZ_ITERS=<n>` to multiply the default iteration counts and
//! `GGIPC_FUZZ_SEED=<u64>` to change the seed. Run with `--nocapture` to see counts.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use ggipc::codec::*;

mod common;
use common::Rng;

fn multiplier() -> usize {
    std::env::var("GGIPC_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn seed() -> u64 {
    std::env::var("GGIPC_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6767_6970_635f_6675) // "ggipc_fu"
}

const CHARS: &[char] = &[
    'a', 'z', 'A', '0', '-', ':', '#', '.', ' ', 'é', 'ß', '✓', '名', '🚀',
];

/// Random UTF-8 text of at most `max_bytes` bytes (at least one char if `nonempty`).
fn text(rng: &mut Rng, max_bytes: usize, nonempty: bool) -> String {
    let target = if nonempty {
        rng.range(1, max_bytes)
    } else {
        rng.range(0, max_bytes)
    };
    let mut s = String::new();
    loop {
        let c = CHARS[rng.below(CHARS.len())];
        if s.len() + c.len_utf8() > target {
            if s.is_empty() && nonempty {
                s.push('x');
            }
            return s;
        }
        s.push(c);
    }
}

fn random_value(rng: &mut Rng, code: u8) -> HeaderValue {
    match code {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(rng.next() as i8),
        3 => HeaderValue::Int16(rng.next() as i16),
        4 => HeaderValue::Int32(rng.next() as i32),
        5 => HeaderValue::Int64(rng.next() as i64),
        6 => {
            let n = rng.len(48, 32_767);
            HeaderValue::ByteBuf(Bytes::from(rng.bytes(n)))
        }
        7 => {
            let n = rng.len(48, 32_767);
            HeaderValue::String(text(rng, n, false).into())
        }
        8 => HeaderValue::Timestamp(rng.next() as i64),
        _ => {
            let mut u = [0u8; 16];
            u.copy_from_slice(&rng.bytes(16));
            HeaderValue::Uuid(u)
        }
    }
}

fn random_message(rng: &mut Rng) -> Message {
    let count = rng.len(6, 24);
    let headers = (0..count)
        .map(|_| {
            let name_max = if rng.chance(10) { 255 } else { 24 };
            let name = text(rng, name_max, true);
            let code = rng.below(10) as u8;
            Header::new(name, random_value(rng, code))
        })
        .collect();
    let n = if rng.chance(50) {
        rng.range(0, 80_000)
    } else {
        rng.len(256, 4096)
    };
    Message {
        headers,
        payload: Bytes::from(rng.bytes(n)),
    }
}

fn limits() -> Limits {
    Limits::with_max_frame_size(24 * 1024 * 1024)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Rewrites both CRCs of `frame` so that mutations reach the header parser.
fn fix_crcs(frame: &mut [u8]) {
    let pc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&pc.to_be_bytes());
    let end = frame.len() - 4;
    let mc = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&mc.to_be_bytes());
}

fn prelude(total: u32, headers_len: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&total.to_be_bytes());
    p[4..8].copy_from_slice(&headers_len.to_be_bytes());
    let crc = crc32fast::hash(&p[..8]);
    p[8..].copy_from_slice(&crc.to_be_bytes());
    p
}

#[test]
fn fuzz_a_round_trip() {
    let mut rng = Rng::new(seed());
    let iters = 10_000 * multiplier();
    let limits = limits();
    for i in 0..iters {
        let msg = random_message(&mut rng);
        let bytes = msg
            .to_bytes(&limits)
            .unwrap_or_else(|e| panic!("iter {i}: {e}"));
        assert_eq!(bytes.len(), msg.encoded_len().unwrap(), "iter {i}");
        let back = Message::decode(&bytes, &limits).unwrap_or_else(|e| panic!("iter {i}: {e}"));
        assert_eq!(back, msg, "iter {i}");
    }
    println!("fuzz (a) round trip: {iters} messages");
}

#[test]
fn fuzz_b_mutated_headers_never_panic() {
    let mut rng = Rng::new(seed() ^ 0xb);
    let iters = 40_000 * multiplier();
    let limits = limits();
    let small = Limits::with_max_frame_size(rng.range(64, 4096) as u32);
    let (mut ok, mut err) = (0usize, 0usize);
    for i in 0..iters {
        let mut msg = random_message(&mut rng);
        if msg.payload.len() > 512 {
            msg.payload.truncate(rng.below(512));
        }
        let mut frame = msg.to_bytes(&limits).unwrap().to_vec();
        let hl = be32(&frame, 4) as usize;
        let mutations = rng.range(1, 4);
        for _ in 0..mutations {
            match rng.below(8) {
                // random byte in the headers block
                0..=2 if hl > 0 => {
                    let at = 12 + rng.below(hl);
                    frame[at] = rng.next() as u8;
                }
                // a type code / length byte nudged to an edge value
                3 if hl > 0 => {
                    let at = 12 + rng.below(hl);
                    frame[at] = [0, 1, 9, 10, 0x7f, 0x80, 0xff][rng.below(7)];
                }
                // headers_length changed (total_length kept)
                4 => {
                    let new_hl = match rng.below(3) {
                        0 => rng.below(frame.len()) as u32,
                        1 => (hl as u32).wrapping_add(rng.range(1, 3) as u32),
                        _ => (hl as u32).saturating_sub(rng.range(1, 3) as u32),
                    };
                    frame[4..8].copy_from_slice(&new_hl.to_be_bytes());
                }
                // bytes inserted into / removed from the headers block, lengths kept consistent
                5 => {
                    let at = 12 + rng.below(hl + 1);
                    let n = rng.range(1, 3);
                    let ins = rng.bytes(n);
                    frame.splice(at..at, ins);
                    let new_hl = (be32(&frame, 4) as usize + n) as u32;
                    let total = frame.len() as u32;
                    frame[0..4].copy_from_slice(&total.to_be_bytes());
                    frame[4..8].copy_from_slice(&new_hl.to_be_bytes());
                }
                6 if hl > 0 => {
                    let at = 12 + rng.below(hl);
                    frame.remove(at);
                    let new_hl = be32(&frame, 4).saturating_sub(1);
                    let total = frame.len() as u32;
                    frame[0..4].copy_from_slice(&total.to_be_bytes());
                    frame[4..8].copy_from_slice(&new_hl.to_be_bytes());
                }
                // payload byte
                _ => {
                    let start = 12 + hl;
                    let end = frame.len() - 4;
                    if end > start {
                        let at = rng.range(start, end - 1);
                        frame[at] ^= 1 << rng.below(8);
                    }
                }
            }
        }
        fix_crcs(&mut frame);
        let whole = Message::decode(&frame, &limits);
        match &whole {
            Ok(m) => {
                ok += 1;
                // The format is canonical: a frame that decodes re-encodes to itself.
                assert_eq!(
                    m.to_bytes(&limits).unwrap().as_ref(),
                    frame.as_slice(),
                    "iter {i}"
                );
            }
            Err(_) => err += 1,
        }
        // The streaming decoder agrees.
        let mut dec = FrameDecoder::new(limits);
        dec.extend(&frame);
        match (dec.next_message(), &whole) {
            (Ok(Some(m)), Ok(w)) => assert_eq!(&m, w, "iter {i}"),
            (Err(e), Err(w)) => assert_eq!(&e, w, "iter {i}"),
            (got, w) => panic!("iter {i}: stream {got:?} vs whole {w:?}"),
        }
        // Tighter limits never panic either.
        let _ = Message::decode(&frame, &small);
    }
    println!("fuzz (b) mutated frames: {iters} inputs ({ok} accepted, {err} rejected)");
    assert!(ok > 0 && err > 0);
}

/// A reader handing out `data` in random chunk sizes.
struct ChunkedReader<'a> {
    data: &'a [u8],
    rng: Rng,
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = [1, 3, 17, 512, 70_000][self.rng.below(5)];
        let n = buf.len().min(self.rng.range(1, max)).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn fuzz_c_streams_in_random_chunks() {
    let mut rng = Rng::new(seed() ^ 0xc);
    let iters = 1_000 * multiplier();
    let limits = limits();
    let mut frames_total = 0;
    for i in 0..iters {
        let msgs: Vec<Message> = (0..rng.range(1, 8))
            .map(|_| random_message(&mut rng))
            .collect();
        frames_total += msgs.len();
        let mut stream = BytesMut::new();
        for m in &msgs {
            m.encode(&limits, &mut stream).unwrap();
        }
        // extend() with random chunk sizes
        let mut dec = FrameDecoder::new(limits);
        let mut got = vec![];
        let mut at = 0;
        while at < stream.len() {
            let max = [1, 5, 64, 4096, 100_000][rng.below(5)];
            let n = rng.range(1, max).min(stream.len() - at);
            dec.extend(&stream[at..at + n]);
            at += n;
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
                assert!(
                    got.len() <= stream.len() / 16,
                    "iter {i}: more frames than bytes"
                );
            }
        }
        assert_eq!(got, msgs, "iter {i}: extend");
        assert_eq!(dec.finish(), Ok(()));

        // read_from() with a reader returning random chunk sizes
        let mut reader = ChunkedReader {
            data: &stream,
            rng: Rng::new(rng.next()),
        };
        let mut dec = FrameDecoder::new(limits);
        let mut got = vec![];
        for reads in 0.. {
            assert!(reads <= stream.len(), "iter {i}: more reads than bytes");
            while let Some(m) = dec.next_message().unwrap() {
                got.push(m);
                assert!(
                    got.len() <= stream.len() / 16,
                    "iter {i}: more frames than bytes"
                );
            }
            if dec.read_from(&mut reader).unwrap() == 0 {
                break;
            }
        }
        assert_eq!(got, msgs, "iter {i}: read_from");
        assert_eq!(dec.finish(), Ok(()));
    }
    println!("fuzz (c) streams: {iters} streams, {frames_total} frames, twice each");
}

/// A reader that yields `head` then endless filler bytes.
struct Endless {
    head: Vec<u8>,
    pos: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            buf[n] = self.head.get(self.pos).copied().unwrap_or(0x5a);
            self.pos += 1;
            n += 1;
        }
        Ok(n)
    }
}

#[test]
fn fuzz_d_hostile_preludes() {
    let mut rng = Rng::new(seed() ^ 0xd);
    let iters = 20_000 * multiplier();
    let mut counts = [0usize; 5];
    for i in 0..iters {
        let max_frame = [16, 100, 4096, 70_000, 1 << 20][rng.below(5)] as u32;
        let limits = Limits::with_max_frame_size(max_frame);
        let total: u32 = match rng.below(5) {
            0 => rng.below(16) as u32,
            1 => max_frame.saturating_add(1 + rng.below(1 << 20) as u32),
            2 => u32::MAX - rng.below(1000) as u32,
            3 => rng.next() as u32,
            _ => rng.range(16, max_frame as usize) as u32,
        };
        let headers_len: u32 = match rng.below(4) {
            0 => rng.next() as u32,
            1 => total
                .saturating_sub(16)
                .saturating_add(1 + rng.below(64) as u32),
            2 => limits.max_headers_size.saturating_add(1),
            _ => rng.below(total.saturating_sub(15).max(1) as usize) as u32,
        };
        let p = prelude(total, headers_len);
        let expected = if total < 16 {
            Some(0)
        } else if total > limits.max_frame_size {
            Some(1)
        } else if headers_len > limits.max_headers_size {
            Some(2)
        } else if headers_len > total - 16 {
            Some(3)
        } else {
            None // a valid prelude: the body (filler) then fails its CRC
        };
        let mut dec = FrameDecoder::new(limits);
        let mut reader = Endless {
            head: p.to_vec(),
            pos: 0,
        };
        let mut reads = 0usize;
        let err = loop {
            // Each read takes at least a byte, and the buffer is bounded by the limit.
            reads += 1;
            assert!(
                reads <= limits.max_frame_size as usize + 16,
                "iter {i}: endless reads"
            );
            assert!(
                dec.buffered() <= (limits.max_frame_size as usize).max(12),
                "iter {i}: buffer grew to {}",
                dec.buffered()
            );
            match dec.next_message() {
                Ok(None) => {}
                Ok(Some(m)) => panic!("iter {i}: accepted {m:?}"),
                Err(e) => break e,
            }
            match dec.read_from(&mut reader) {
                Ok(n) => assert!(n > 0 && n <= 64 * 1024, "iter {i}: read {n}"),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                    break dec.next_message().unwrap_err();
                }
            }
        };
        let kind = match err {
            CodecError::FrameTooShort { total_length } => {
                assert_eq!(total_length, total);
                0
            }
            CodecError::FrameTooLarge { total_length, max } => {
                assert_eq!((total_length, max), (u64::from(total), max_frame));
                1
            }
            CodecError::HeadersTooLarge { headers_length, .. } => {
                assert_eq!(headers_length, u64::from(headers_len));
                2
            }
            CodecError::HeadersLengthOutOfRange { .. } => 3,
            CodecError::MessageChecksumMismatch { .. } => 4,
            other => panic!("iter {i}: unexpected {other:?}"),
        };
        assert_eq!(
            expected.unwrap_or(4),
            kind,
            "iter {i}: total {total} headers {headers_len}"
        );
        counts[kind] += 1;
        // Whole-buffer decode of the bare prelude: the same typed error (or a length mismatch).
        let whole = Message::decode(&p, &limits).unwrap_err();
        if expected.is_some() {
            assert_eq!(whole, dec.next_message().unwrap_err(), "iter {i}");
        }
    }
    println!(
        "fuzz (d) hostile preludes: {iters} inputs (too short {}, too large {}, headers too large {}, \
         headers out of range {}, valid prelude then bad CRC {})",
        counts[0], counts[1], counts[2], counts[3], counts[4]
    );
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
}
