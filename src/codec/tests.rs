//! Unit tests of the frame codec.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A frame with valid CRCs around an arbitrary (possibly malformed) headers block.
fn raw_frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    raw_frame_with_lengths(total, headers.len() as u32, headers, payload)
}

fn raw_frame_with_lengths(total: u32, headers_len: u32, headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&headers_len.to_be_bytes());
    let pc = crc32fast::hash(&v);
    v.extend_from_slice(&pc.to_be_bytes());
    v.extend_from_slice(headers);
    v.extend_from_slice(payload);
    let mc = crc32fast::hash(&v);
    v.extend_from_slice(&mc.to_be_bytes());
    v
}

/// Just a prelude (12 bytes) with a valid prelude CRC.
fn prelude(total: u32, headers_len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&headers_len.to_be_bytes());
    let pc = crc32fast::hash(&v);
    v.extend_from_slice(&pc.to_be_bytes());
    v
}

const WORKED: &str = "0000002400000012a2da27e5026f6b00016e04000000070173070002616268693089cf64";

fn worked_message() -> Message {
    Message {
        headers: vec![
            Header::new("ok", HeaderValue::Bool(true)),
            Header::new("n", HeaderValue::Int32(7)),
            Header::new("s", HeaderValue::String("ab".into())),
        ],
        payload: Bytes::from_static(b"hi"),
    }
}

fn decode(bytes: &[u8]) -> Result<Message, CodecError> {
    Message::decode(bytes, &Limits::default())
}

#[test]
fn worked_example_decodes() {
    let msg = decode(&unhex(WORKED)).unwrap();
    assert_eq!(msg, worked_message());
    assert_eq!(msg.header("n").and_then(HeaderValue::as_int32), Some(7));
    assert_eq!(msg.header("s").and_then(HeaderValue::as_str), Some("ab"));
    assert_eq!(msg.header("ok").and_then(HeaderValue::as_bool), Some(true));
    assert_eq!(msg.header("missing"), None);
}

#[test]
fn worked_example_encodes() {
    let msg = worked_message();
    assert_eq!(msg.encoded_len().unwrap(), 36);
    let bytes = msg.to_bytes(&Limits::default()).unwrap();
    assert_eq!(bytes.as_ref(), unhex(WORKED).as_slice());
    // encode appends after existing content
    let mut out = BytesMut::from(&b"xyz"[..]);
    msg.encode(&Limits::default(), &mut out).unwrap();
    assert_eq!(&out[..3], b"xyz");
    assert_eq!(&out[3..], unhex(WORKED).as_slice());
}

#[test]
fn empty_message_round_trip() {
    let hex = "000000100000000005c248eb7d98c8ff";
    let msg = decode(&unhex(hex)).unwrap();
    assert_eq!(msg, Message::default());
    assert_eq!(
        Message::default()
            .to_bytes(&Limits::default())
            .unwrap()
            .as_ref(),
        unhex(hex).as_slice()
    );
}

#[test]
fn seeded_crc_equals_whole_crc() {
    let bytes = unhex(WORKED);
    let prelude_crc = crc32fast::hash(&bytes[..8]);
    let mut h = crc32fast::Hasher::new_with_initial(prelude_crc);
    h.update(&bytes[8..32]);
    assert_eq!(h.finalize(), 0x3089cf64);
    assert_eq!(crc32fast::hash(&bytes[..32]), 0x3089cf64);
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF43926);
}

#[test]
fn all_header_types_round_trip() {
    let msg = Message {
        headers: vec![
            Header::new("t", HeaderValue::Bool(true)),
            Header::new("f", HeaderValue::Bool(false)),
            Header::new("b", HeaderValue::Byte(-128)),
            Header::new("s", HeaderValue::Int16(i16::MIN)),
            Header::new("i", HeaderValue::Int32(i32::MAX)),
            Header::new("l", HeaderValue::Int64(i64::MIN)),
            Header::new(
                "bb",
                HeaderValue::ByteBuf(Bytes::from_static(&[0xff, 0, 0xfe])),
            ),
            Header::new("str", HeaderValue::String("héllo ✓".into())),
            Header::new("ts", HeaderValue::Timestamp(-1)),
            Header::new("u", HeaderValue::Uuid([7; 16])),
            Header::new("empty", HeaderValue::String("".into())),
            Header::new("emptyb", HeaderValue::ByteBuf(Bytes::new())),
            Header::new(
                "x".repeat(255),
                HeaderValue::ByteBuf(Bytes::from(vec![1; 32_767])),
            ),
        ],
        payload: Bytes::from_static(b"payload"),
    };
    for (h, code) in msg
        .headers
        .iter()
        .zip([0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 6, 6])
    {
        assert_eq!(h.value.type_code(), code);
    }
    let bytes = msg.to_bytes(&Limits::default()).unwrap();
    assert_eq!(bytes.len(), msg.encoded_len().unwrap());
    assert_eq!(decode(&bytes).unwrap(), msg);
}

#[test]
fn limits_with_max_frame_size() {
    let l = Limits::with_max_frame_size(1000);
    assert_eq!((l.max_frame_size, l.max_headers_size), (1000, 1000));
    let l = Limits::with_max_frame_size(24 * 1024 * 1024);
    assert_eq!(l.max_frame_size, 24 * 1024 * 1024);
    assert_eq!(l.max_headers_size, DEFAULT_MAX_HEADERS_SIZE);
    let d = Limits::default();
    assert_eq!(
        (d.max_frame_size, d.max_headers_size),
        (16 << 20, 128 << 10)
    );
}

// ---- decode errors, in check order ----

#[test]
fn prelude_checksum_mismatch() {
    let mut b = unhex(WORKED);
    b[3] ^= 1;
    assert!(matches!(
        decode(&b),
        Err(CodecError::PreludeChecksumMismatch { .. })
    ));
    let mut b = unhex(WORKED);
    b[8] ^= 0x80;
    assert_eq!(
        decode(&b),
        Err(CodecError::PreludeChecksumMismatch {
            expected: 0x22da27e5,
            actual: 0xa2da27e5
        })
    );
}

#[test]
fn message_checksum_mismatch() {
    let mut b = unhex(WORKED);
    b[33] ^= 1; // payload byte
    assert!(matches!(
        decode(&b),
        Err(CodecError::MessageChecksumMismatch { .. })
    ));
    let mut b = unhex(WORKED);
    b[35] ^= 1; // the CRC itself
    assert_eq!(
        decode(&b),
        Err(CodecError::MessageChecksumMismatch {
            expected: 0x3089cf65,
            actual: 0x3089cf64
        })
    );
}

#[test]
fn frame_too_short() {
    for total in [0, 1, 12, 15] {
        let mut b = prelude(total, 0);
        b.extend_from_slice(&[0; 4]);
        assert_eq!(
            decode(&b),
            Err(CodecError::FrameTooShort {
                total_length: total
            })
        );
    }
}

#[test]
fn frame_too_large() {
    let b = unhex(WORKED);
    let limits = Limits::with_max_frame_size(35);
    assert_eq!(
        Message::decode(&b, &limits),
        Err(CodecError::FrameTooLarge {
            total_length: 36,
            max: 35
        })
    );
    assert!(Message::decode(&b, &Limits::with_max_frame_size(36)).is_ok());
    // A huge length with a valid prelude CRC is rejected from the prelude alone.
    assert_eq!(
        decode(&prelude(u32::MAX, 0)),
        Err(CodecError::FrameTooLarge {
            total_length: u32::MAX as u64,
            max: DEFAULT_MAX_FRAME_SIZE
        })
    );
}

#[test]
fn headers_too_large() {
    let b = unhex(WORKED);
    let limits = Limits {
        max_headers_size: 17,
        ..Limits::default()
    };
    assert_eq!(
        Message::decode(&b, &limits),
        Err(CodecError::HeadersTooLarge {
            headers_length: 18,
            max: 17
        })
    );
    assert_eq!(
        decode(&prelude(1000, 200_000)),
        Err(CodecError::HeadersTooLarge {
            headers_length: 200_000,
            max: DEFAULT_MAX_HEADERS_SIZE
        })
    );
}

#[test]
fn headers_length_out_of_range() {
    assert_eq!(
        decode(&raw_frame_with_lengths(20, 5, &[0; 4], &[])),
        Err(CodecError::HeadersLengthOutOfRange {
            headers_length: 5,
            total_length: 20
        })
    );
    assert_eq!(
        decode(&prelude(16, 1)),
        Err(CodecError::HeadersLengthOutOfRange {
            headers_length: 1,
            total_length: 16
        })
    );
}

#[test]
fn length_mismatch_and_truncated() {
    let mut b = unhex(WORKED);
    b.push(0);
    assert_eq!(
        decode(&b),
        Err(CodecError::LengthMismatch {
            total_length: 36,
            actual: 37
        })
    );
    let b = unhex(WORKED);
    assert_eq!(
        decode(&b[..30]),
        Err(CodecError::LengthMismatch {
            total_length: 36,
            actual: 30
        })
    );
    assert_eq!(
        decode(&b[..11]),
        Err(CodecError::Truncated { buffered: 11 })
    );
    assert_eq!(decode(&[]), Err(CodecError::Truncated { buffered: 0 }));
}

#[test]
fn header_truncated() {
    let cases: &[(&[u8], usize)] = &[
        (&[5, b'a', b'b'], 0),                         // name runs past the block
        (&[1, b'a'], 0),                               // type byte missing
        (&[1, b'a', 4, 0, 0], 0),                      // int32 cut
        (&[1, b'a', 7, 0], 0),                         // string length cut
        (&[1, b'a', 7, 0, 3, b'x'], 0),                // string value cut
        (&[1, b'a', 6, 0, 3, b'x'], 0),                // bytes value cut
        (&[1, b'a', 9, 1, 2, 3], 0),                   // uuid cut
        (&[1, b'a', 0, 1], 3),                         // second header: name length only
        (&[1, b'a', 0, 1, b'b', 5, 0, 0, 0, 0, 0], 3), // int64 cut in second header
        (&[1, b'a', 8, 0, 0, 0, 0, 0, 0, 0], 0),       // timestamp cut
    ];
    for (block, offset) in cases {
        assert_eq!(
            decode(&raw_frame(block, b"p")),
            Err(CodecError::HeaderTruncated { offset: *offset }),
            "{block:?}"
        );
    }
}

#[test]
fn empty_header_name() {
    assert_eq!(
        decode(&raw_frame(&[0, 0], b"")),
        Err(CodecError::EmptyHeaderName { offset: 0 })
    );
    assert_eq!(
        decode(&raw_frame(&[1, b'a', 0, 0, 1], b"")),
        Err(CodecError::EmptyHeaderName { offset: 3 })
    );
    // headers_length == 1
    assert_eq!(
        decode(&raw_frame(&[0], b"")),
        Err(CodecError::EmptyHeaderName { offset: 0 })
    );
}

#[test]
fn unknown_header_type() {
    for code in [10u8, 0x60, 255] {
        assert_eq!(
            decode(&raw_frame(&[1, b'a', code, 0, 0, 0, 0], b"")),
            Err(CodecError::UnknownHeaderType { type_code: code })
        );
    }
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        decode(&raw_frame(&[1, 0xff, 0], b"")),
        Err(CodecError::InvalidUtf8)
    );
    assert_eq!(
        decode(&raw_frame(&[1, b'a', 7, 0, 2, 0xc3, 0x28], b"")),
        Err(CodecError::InvalidUtf8)
    );
    // the same bytes are fine as a byte buffer
    let m = decode(&raw_frame(&[1, b'a', 6, 0, 2, 0xc3, 0x28], b"")).unwrap();
    assert_eq!(
        m.headers[0].value,
        HeaderValue::ByteBuf(Bytes::from_static(&[0xc3, 0x28]))
    );
}

#[test]
fn header_value_too_long_on_decode() {
    for ty in [6u8, 7] {
        let mut block = vec![1, b'a', ty, 0x80, 0x00];
        block.extend(std::iter::repeat(b'x').take(32_768));
        assert_eq!(
            decode(&raw_frame(&block, b"")),
            Err(CodecError::HeaderValueTooLong { len: 32_768 })
        );
        // 0xffff with a short block is also reported as too long
        assert_eq!(
            decode(&raw_frame(&[1, b'a', ty, 0xff, 0xff], b"")),
            Err(CodecError::HeaderValueTooLong { len: 65_535 })
        );
    }
}

// ---- encode validation ----

fn encode_err(msg: &Message, limits: &Limits) -> CodecError {
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = msg.encode(limits, &mut out).unwrap_err();
    assert_eq!(&out[..], b"keep", "nothing written on error");
    err
}

#[test]
fn encode_rejects_bad_names() {
    let empty = Message {
        headers: vec![
            Header::new("a", HeaderValue::Int32(1)),
            Header::new("", HeaderValue::Bool(true)),
        ],
        payload: Bytes::new(),
    };
    assert_eq!(
        encode_err(&empty, &Limits::default()),
        CodecError::EmptyHeaderName { offset: 7 }
    );
    assert_eq!(
        empty.encoded_len(),
        Err(CodecError::EmptyHeaderName { offset: 7 })
    );
    let long = Message {
        headers: vec![Header::new("n".repeat(256), HeaderValue::Bool(true))],
        payload: Bytes::new(),
    };
    assert_eq!(
        encode_err(&long, &Limits::default()),
        CodecError::HeaderNameTooLong { len: 256 }
    );
    assert_eq!(
        long.encoded_len(),
        Err(CodecError::HeaderNameTooLong { len: 256 })
    );
}

#[test]
fn encode_rejects_long_values() {
    for value in [
        HeaderValue::String("v".repeat(32_768).into()),
        HeaderValue::ByteBuf(Bytes::from(vec![0; 32_768])),
    ] {
        let msg = Message {
            headers: vec![Header::new("a", value)],
            payload: Bytes::new(),
        };
        assert_eq!(
            encode_err(&msg, &Limits::default()),
            CodecError::HeaderValueTooLong { len: 32_768 }
        );
    }
}

#[test]
fn encode_enforces_limits() {
    let msg = worked_message();
    assert_eq!(
        encode_err(&msg, &Limits::with_max_frame_size(35)),
        CodecError::FrameTooLarge {
            total_length: 36,
            max: 35
        }
    );
    let limits = Limits {
        max_headers_size: 17,
        ..Limits::default()
    };
    assert_eq!(
        encode_err(&msg, &limits),
        CodecError::HeadersTooLarge {
            headers_length: 18,
            max: 17
        }
    );
    assert!(msg.to_bytes(&Limits::with_max_frame_size(36)).is_ok());
    // Both bounds are inclusive: a headers block of exactly the limit is encoded.
    let exact = Limits {
        max_headers_size: 18,
        ..Limits::default()
    };
    let bytes = msg
        .to_bytes(&exact)
        .expect("18-byte headers at an 18-byte limit");
    assert_eq!(Message::decode(&bytes, &exact).unwrap(), msg);
    let big = Message {
        headers: vec![],
        payload: Bytes::from(vec![0; 1 << 20]),
    };
    assert_eq!(big.encoded_len().unwrap(), (1 << 20) + 16);
    assert!(matches!(
        encode_err(&big, &Limits::with_max_frame_size(1 << 20)),
        CodecError::FrameTooLarge { .. }
    ));
}

#[test]
fn encode_measures_what_is_over_the_limit_without_keeping_or_reserving_it() {
    // Headers alone past the frame limit: the whole size is reported, nothing is kept.
    let headers = (0..100)
        .map(|i| Header::new(format!("h{i:03}"), HeaderValue::Int64(i)))
        .collect();
    let msg = Message {
        headers,
        payload: Bytes::new(),
    };
    assert_eq!(
        encode_err(&msg, &Limits::with_max_frame_size(200)),
        CodecError::FrameTooLarge {
            total_length: 100 * 14 + 16,
            max: 200
        }
    );
    // A payload over the limit: refused before any room is made for it.
    let big = Message {
        headers: vec![],
        payload: Bytes::from(vec![0; 1 << 20]),
    };
    let mut out = BytesMut::new();
    assert!(big
        .encode(&Limits::with_max_frame_size(4096), &mut out)
        .is_err());
    assert!(out.is_empty());
    assert!(
        out.capacity() < 64 * 1024,
        "{} bytes reserved",
        out.capacity()
    );
}

// ---- FrameDecoder ----

#[test]
fn frame_decoder_byte_by_byte_and_batched() {
    let a = unhex(WORKED);
    let b = unhex("000000100000000005c248eb7d98c8ff");
    let mut stream = a.clone();
    stream.extend_from_slice(&b);
    stream.extend_from_slice(&a);

    let mut dec = FrameDecoder::new(Limits::default());
    let mut got = vec![];
    for byte in &stream {
        dec.extend(std::slice::from_ref(byte));
        while let Some(m) = dec.next_message().unwrap() {
            got.push(m);
            assert!(
                got.len() <= stream.len() / 16,
                "more frames than the bytes hold"
            );
        }
    }
    assert_eq!(
        got,
        vec![worked_message(), Message::default(), worked_message()]
    );
    assert_eq!(dec.buffered(), 0);
    assert_eq!(dec.finish(), Ok(()));

    let mut dec = FrameDecoder::new(Limits::default());
    dec.extend(&stream);
    dec.extend(&a[..5]);
    assert_eq!(dec.next_message().unwrap(), Some(worked_message()));
    assert_eq!(dec.next_message().unwrap(), Some(Message::default()));
    assert_eq!(dec.next_message().unwrap(), Some(worked_message()));
    assert_eq!(dec.next_message().unwrap(), None);
    assert_eq!(dec.buffered(), 5);
    assert_eq!(dec.finish(), Err(CodecError::Truncated { buffered: 5 }));
}

#[test]
fn frame_decoder_payload_is_zero_copy() {
    let frame = unhex(WORKED);
    let mut dec = FrameDecoder::new(Limits::default());
    dec.extend(&frame);
    dec.extend(&frame);
    let m1 = dec.next_message().unwrap().unwrap();
    let m2 = dec.next_message().unwrap().unwrap();
    // Both payloads point into the same receive buffer, one frame apart.
    let p1 = m1.payload.as_ptr() as usize;
    let p2 = m2.payload.as_ptr() as usize;
    assert_eq!(p2 - p1, frame.len());
}

#[test]
fn frame_decoder_rejects_prelude_before_body() {
    let mut dec = FrameDecoder::new(Limits::with_max_frame_size(1024));
    dec.extend(&prelude(1025, 0));
    let err = CodecError::FrameTooLarge {
        total_length: 1025,
        max: 1024,
    };
    assert_eq!(dec.next_message(), Err(err.clone()));
    // sticky
    dec.extend(&unhex(WORKED));
    assert_eq!(dec.next_message(), Err(err.clone()));
    assert_eq!(dec.finish(), Err(err.clone()));
    let e = dec.read_from(&mut &unhex(WORKED)[..]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);

    let mut dec = FrameDecoder::new(Limits::default());
    let mut bad = unhex(WORKED);
    bad[35] ^= 1;
    dec.extend(&bad);
    assert!(matches!(
        dec.next_message(),
        Err(CodecError::MessageChecksumMismatch { .. })
    ));
    assert!(matches!(
        dec.next_message(),
        Err(CodecError::MessageChecksumMismatch { .. })
    ));
}

/// A reader handing out at most `chunk` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
    max_asked: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.max_asked = self.max_asked.max(buf.len());
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn frame_decoder_read_from() {
    let big = Message {
        headers: vec![Header::new("k", HeaderValue::String("v".into()))],
        payload: Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    };
    let mut stream = big.to_bytes(&Limits::default()).unwrap().to_vec();
    stream.extend_from_slice(&unhex(WORKED));
    for chunk in [1, 7, 4096, 1 << 20] {
        let mut reader = Chunked {
            data: &stream,
            chunk,
            max_asked: 0,
        };
        let mut dec = FrameDecoder::new(Limits::default());
        let got = read_all(&mut dec, &mut reader, stream.len());
        assert_eq!(got, vec![big.clone(), worked_message()]);
        assert!(reader.max_asked <= 64 * 1024);
        assert_eq!(dec.finish(), Ok(()));
    }
}

#[test]
fn frame_decoder_read_from_rejects_bad_prelude_without_reading_body() {
    let mut stream = prelude(u32::MAX, 0);
    stream.extend_from_slice(&[0; 100]);
    let mut reader = Chunked {
        data: &stream,
        chunk: 12,
        max_asked: 0,
    };
    let mut dec = FrameDecoder::new(Limits::with_max_frame_size(64));
    assert_eq!(dec.read_from(&mut reader).unwrap(), 12);
    assert!(dec.buffered() <= 64);
    assert_eq!(
        dec.read_from(&mut reader).unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
    assert!(matches!(
        dec.next_message(),
        Err(CodecError::FrameTooLarge { .. })
    ));
    assert_eq!(reader.data.len(), 100);
}

#[test]
fn header_value_accessors_answer_only_for_their_own_type() {
    assert_eq!(HeaderValue::Bool(false).as_bool(), Some(false));
    assert_eq!(HeaderValue::Bool(true).as_bool(), Some(true));
    assert_eq!(HeaderValue::Int32(1).as_bool(), None);
    let b = Bytes::from_static(b"ab");
    assert_eq!(HeaderValue::ByteBuf(b.clone()).as_bytes(), Some(&b));
    assert_eq!(HeaderValue::String("ab".into()).as_bytes(), None);
}

#[test]
fn reseal_makes_a_corrupted_frame_check_again_and_leaves_short_buffers_alone() {
    let mut bytes = worked_message()
        .to_bytes(&Limits::default())
        .unwrap()
        .to_vec();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xFF; // a payload byte: the message CRC no longer matches
    assert!(Message::decode(&bytes, &Limits::default()).is_err());
    reseal(&mut bytes);
    assert!(Message::decode(&bytes, &Limits::default()).is_ok());
    let mut short = [7u8; 15];
    reseal(&mut short);
    assert_eq!(short, [7u8; 15]);
    // The smallest frame (no headers, no payload: 16 bytes) is resealed too.
    let mut empty = raw_frame(&[], &[]);
    assert_eq!(empty.len(), 16);
    empty[8] ^= 0xFF; // the prelude CRC
    assert!(Message::decode(&empty, &Limits::default()).is_err());
    reseal(&mut empty);
    assert!(Message::decode(&empty, &Limits::default()).is_ok());
}

/// A reader that hands out its bytes in the given chunk sizes (cycling), with an
/// `Interrupted` error before every third chunk.
struct Stuttering {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    calls: usize,
    largest_request: usize,
}

impl std::io::Read for Stuttering {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        self.largest_request = self.largest_request.max(buf.len());
        if self.calls % 3 == 0 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let size = self.sizes[self.calls % self.sizes.len()];
        let n = size.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn read_from_reassembles_frames_of_every_size_from_any_chunking() {
    let sizes_of_payloads = [0usize, 1, 100, 9_000, 70_000, 200_000, 3];
    let messages: Vec<Message> = sizes_of_payloads
        .iter()
        .map(|&n| Message {
            headers: worked_message().headers,
            payload: Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
        })
        .collect();
    let mut data = Vec::new();
    for m in &messages {
        data.extend_from_slice(&m.to_bytes(&Limits::default()).unwrap());
    }
    for sizes in [vec![1, 7, 13], vec![100_000], vec![12, 4, 65_536, 3]] {
        let mut reader = Stuttering {
            data: data.clone(),
            at: 0,
            sizes,
            calls: 0,
            largest_request: 0,
        };
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut got = Vec::new();
        for reads in 0.. {
            assert!(reads <= data.len(), "more reads than bytes");
            while let Some(m) = decoder.next_message().unwrap() {
                got.push(m);
                assert!(
                    got.len() <= data.len() / 16,
                    "more frames than the bytes hold"
                );
            }
            let n = decoder.read_from(&mut reader).unwrap();
            assert!(n <= 64 * 1024);
            if n == 0 {
                break;
            }
        }
        assert_eq!(decoder.finish(), Ok(()));
        assert_eq!(got, messages);
        assert_eq!(decoder.buffered(), 0);
        assert!(
            reader.largest_request <= 64 * 1024,
            "{}",
            reader.largest_request
        );
        assert_eq!(decoder.limits(), &Limits::default());
    }
}

#[cfg(feature = "emulator")]
#[test]
fn raised_limits_apply_to_the_next_frame() {
    let big = raw_frame(&[], &[b'x'; 100]);
    let mut dec = FrameDecoder::new(Limits::with_max_frame_size(64));
    assert_eq!(dec.limits(), &Limits::with_max_frame_size(64));
    dec.set_limits(Limits::default());
    assert_eq!(dec.limits(), &Limits::default());
    dec.extend(&big);
    let m = dec.next_message().unwrap().expect("a whole frame");
    assert_eq!(m.payload.len(), 100);
    // Under the small limits the same frame is refused.
    let mut small = FrameDecoder::new(Limits::with_max_frame_size(64));
    small.extend(&big);
    assert!(small.next_message().is_err());
}

/// A reader that records the size of every read asked of it and gives what it has.
struct Recording<'a> {
    data: &'a [u8],
    asked: Vec<usize>,
}

impl std::io::Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.asked.push(buf.len());
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads `stream` to its end through `dec` (a bounded number of reads: each one must
/// take at least a byte), returning the messages.
fn read_all(dec: &mut FrameDecoder, reader: &mut impl std::io::Read, len: usize) -> Vec<Message> {
    let mut got = vec![];
    for _ in 0..=len {
        while let Some(m) = dec.next_message().unwrap() {
            got.push(m);
            assert!(got.len() <= len / 16, "more frames than the bytes hold");
        }
        if dec.read_from(reader).unwrap() == 0 {
            return got;
        }
    }
    panic!("more reads than bytes: a read returned bytes it did not take");
}

#[test]
fn a_new_decoder_reads_small_frames_in_batches_into_its_initial_capacity() {
    let one = unhex(WORKED);
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 100).collect();
    let mut reader = Recording {
        data: &stream,
        asked: vec![],
    };
    let mut dec = FrameDecoder::new(Limits::default());
    assert_eq!(dec.capacity(), INITIAL_CAPACITY);
    let got = read_all(&mut dec, &mut reader, stream.len());
    assert_eq!(got.len(), 100);
    // One read took all 100 frames (they fit the initial capacity); the next saw the end.
    assert_eq!(reader.asked.len(), 2, "{:?}", reader.asked);
    assert_eq!(reader.asked[0], INITIAL_CAPACITY);
    assert!(
        dec.capacity() <= INITIAL_CAPACITY,
        "small frames never grow the buffer"
    );
}

#[test]
fn a_large_frame_grows_the_buffer_once_to_its_size_and_is_read_64_kib_at_a_time() {
    let (asked, capacity, total) = read_one_large_frame(200_000);
    // Grown once, to the frame's size: not in steps, not doubled past it.
    assert_eq!(capacity, total);
    // The initial capacity, then the frame's remaining bytes in reads of at most 64 KiB
    // (the last one exactly what is left).
    let rest = total - INITIAL_CAPACITY;
    let mut expected = vec![INITIAL_CAPACITY];
    expected.extend(std::iter::repeat_n(MAX_READ, rest / MAX_READ));
    expected.push(rest % MAX_READ);
    assert_eq!(asked, expected);
}

#[test]
fn a_frame_a_little_larger_than_the_buffer_grows_it_and_the_next_read_fills_what_is_allocated() {
    let (asked, capacity, total) = read_one_large_frame(12_000);
    assert!(capacity >= total);
    // Growing may allocate more than the frame needs (amortized); the read after the
    // growth asks for all of it, so frames behind this one come in the same read.
    assert_eq!(asked, [INITIAL_CAPACITY, capacity - INITIAL_CAPACITY]);
}

/// Reads one frame with a `size`-byte payload from a reader that gives all it is asked
/// for; returns the sizes asked, the capacity once the frame was whole, and its length.
fn read_one_large_frame(size: usize) -> (Vec<usize>, usize, usize) {
    let big = Message {
        headers: vec![],
        payload: Bytes::from(vec![7u8; size]),
    };
    let stream = big.to_bytes(&Limits::default()).unwrap().to_vec();
    let total = stream.len();
    let mut reader = Recording {
        data: &stream,
        asked: vec![],
    };
    let mut dec = FrameDecoder::new(Limits::default());
    for _ in 0..total {
        if dec.buffered() == total {
            break;
        }
        assert!(
            dec.read_from(&mut reader).unwrap() > 0,
            "the frame is all there"
        );
    }
    let capacity = dec.capacity();
    assert_eq!(dec.next_message().unwrap(), Some(big));
    (reader.asked, capacity, total)
}

#[test]
fn a_read_never_takes_the_buffer_past_the_frame_size_limit() {
    let small = Message {
        headers: vec![],
        payload: Bytes::from(vec![1u8; 100]),
    };
    let limits = Limits::with_max_frame_size(1000);
    let one = small.to_bytes(&limits).unwrap().to_vec();
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 30).collect();
    let mut reader = Recording {
        data: &stream,
        asked: vec![],
    };
    let mut dec = FrameDecoder::new(limits);
    let got = read_all(&mut dec, &mut reader, stream.len());
    assert_eq!(got.len(), 30);
    // Each read asks for what fills the buffer up to the limit, no more.
    assert!(
        reader.asked.iter().all(|&n| n <= 1000),
        "{:?}",
        reader.asked
    );
    assert_eq!(reader.asked[0], 1000);
}

#[test]
fn known_header_names_are_borrowed_and_others_allocated() {
    let message = Message {
        headers: vec![
            Header::new(":message-type", HeaderValue::Int32(0)),
            Header::new("x-custom".to_string(), HeaderValue::Bool(true)),
        ],
        payload: Bytes::new(),
    };
    let mut dec = FrameDecoder::new(Limits::default());
    dec.extend(&message.to_bytes(&Limits::default()).unwrap());
    let decoded = dec.next_message().unwrap().expect("a whole frame");
    assert_eq!(decoded, message);
    assert!(matches!(
        decoded.headers[0].name,
        std::borrow::Cow::Borrowed(":message-type")
    ));
    assert!(matches!(&decoded.headers[1].name, std::borrow::Cow::Owned(n) if n == "x-custom"));
}
