//! Layer 1: the AWS event-stream binary frame (`application/vnd.amazon.eventstream`).
//!
//! Pure code: bytes in, [`Message`] out and back. No sockets, threads or serde.
//! This is the only module that uses `crc32fast`.
//!
//! SKELETON: the signatures below are the contract the rest of the crate codes against.
//! Bodies are filled in by the codec work.

mod error;

pub use error::CodecError;

use bytes::{Bytes, BytesMut};

/// Default maximum size of one whole frame (prelude, headers, payload and trailer): 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;
/// Default maximum size of the headers block of one frame: 128 KiB.
pub const DEFAULT_MAX_HEADERS_SIZE: u32 = 128 * 1024;
/// Fixed overhead of a frame: 12-byte prelude plus 4-byte trailer.
pub const FRAME_OVERHEAD: usize = 16;
/// Length of the prelude (total length, headers length, prelude CRC).
pub const PRELUDE_LEN: usize = 12;

/// Size limits applied when encoding and decoding frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted `total_length`, in bytes. Default [`DEFAULT_MAX_FRAME_SIZE`].
    pub max_frame_size: u32,
    /// Largest accepted `headers_length`, in bytes. Default [`DEFAULT_MAX_HEADERS_SIZE`].
    pub max_headers_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_size: DEFAULT_MAX_FRAME_SIZE, max_headers_size: DEFAULT_MAX_HEADERS_SIZE }
    }
}

impl Limits {
    /// Limits with the given maximum frame size and the default headers limit
    /// (clamped so that the headers limit never exceeds the frame limit).
    pub fn with_max_frame_size(max_frame_size: u32) -> Self {
        todo!()
    }
}

/// The value of one header, one variant per wire type code (0..=9).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderValue {
    /// Type codes 0 (true) and 1 (false): the value is carried by the type code.
    Bool(bool),
    /// Type code 2: signed 8-bit.
    Byte(i8),
    /// Type code 3: signed 16-bit.
    Int16(i16),
    /// Type code 4: signed 32-bit.
    Int32(i32),
    /// Type code 5: signed 64-bit.
    Int64(i64),
    /// Type code 6: opaque bytes (at most 32 767 on encode).
    ByteBuf(Bytes),
    /// Type code 7: UTF-8 text (at most 32 767 bytes on encode).
    String(String),
    /// Type code 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type code 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The wire type code of this value (0..=9).
    pub fn type_code(&self) -> u8 {
        todo!()
    }
    /// The value as `i32` if it is an `Int32`.
    pub fn as_int32(&self) -> Option<i32> {
        todo!()
    }
    /// The value as `&str` if it is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        todo!()
    }
}

/// One header: a name (1..=255 bytes of UTF-8) and a typed value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header name.
    pub name: String,
    /// The header value.
    pub value: HeaderValue,
}

impl Header {
    /// A header with the given name and value.
    pub fn new(name: impl Into<String>, value: HeaderValue) -> Self {
        Header { name: name.into(), value }
    }
}

/// One event-stream message: headers (in wire order) and an opaque payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers, in the order they appear on the wire.
    pub headers: Vec<Header>,
    /// The payload bytes (may be empty).
    pub payload: Bytes,
}

impl Message {
    /// The first header with this exact name.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        todo!()
    }
    /// The exact encoded size of this message in bytes (including prelude and trailer),
    /// or an error when it cannot be encoded (a name or value too long, or over u32).
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        todo!()
    }
    /// Appends the encoded frame to `out`, checking `limits` first: nothing is written
    /// when the message is invalid or larger than `limits.max_frame_size`.
    pub fn encode(&self, limits: &Limits, out: &mut BytesMut) -> Result<(), CodecError> {
        todo!()
    }
    /// Encodes into a new buffer.
    pub fn to_bytes(&self, limits: &Limits) -> Result<Bytes, CodecError> {
        todo!()
    }
    /// Decodes exactly one whole frame; `bytes.len()` must equal its `total_length`.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, CodecError> {
        todo!()
    }
}

/// Incremental decoder for a byte stream of concatenated frames.
///
/// Feed it bytes as they arrive ([`FrameDecoder::extend`] or [`FrameDecoder::read_from`]),
/// then take whole messages with [`FrameDecoder::next_message`]. The prelude CRC and both
/// lengths are checked as soon as the 12 prelude bytes are present, before any buffer is
/// grown for the body, so a hostile length never causes an allocation. After an error the
/// stream is unusable (the decoder keeps returning that error).
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    buf: BytesMut,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        todo!()
    }
    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        todo!()
    }
    /// Reads once from `reader` straight into the internal buffer (at most the space
    /// the decoder needs next, capped at 64 KiB per call) and returns the byte count
    /// (0 = end of stream).
    pub fn read_from(&mut self, reader: &mut impl std::io::Read) -> std::io::Result<usize> {
        todo!()
    }
    /// The next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, CodecError> {
        todo!()
    }
    /// Number of buffered bytes not yet returned as messages.
    pub fn buffered(&self) -> usize {
        todo!()
    }
}
