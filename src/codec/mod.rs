//! Layer 1: the AWS event-stream binary frame (`application/vnd.amazon.eventstream`).
//!
//! Pure code: bytes in, [`Message`] out and back. No sockets, threads or serde.
//! This is the only module that uses `crc32fast`.
//!
//! Decoding checks, in order: prelude CRC; `total_length >= 16`; `total_length` and
//! `headers_length` against [`Limits`]; headers fit inside the frame (all before any
//! body byte is awaited or buffered); message CRC; then each header (bounds, type code,
//! value length, UTF-8, non-empty name). Payloads and byte-buffer header values of
//! messages from [`FrameDecoder`] are zero-copy slices of the received bytes.

mod error;
mod frame;
mod header;

pub use error::CodecError;

use bytes::{Bytes, BytesMut};

use frame::Prelude;

/// Most bytes [`FrameDecoder::read_from`] reads in one call.
const MAX_READ: usize = 64 * 1024;
/// Capacity a new [`FrameDecoder`] starts with (lets small frames be read in batches).
const INITIAL_CAPACITY: usize = 8 * 1024;

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
        Limits {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_headers_size: DEFAULT_MAX_HEADERS_SIZE,
        }
    }
}

impl Limits {
    /// Limits with the given maximum frame size and the default headers limit
    /// (clamped so that the headers limit never exceeds the frame limit).
    pub fn with_max_frame_size(max_frame_size: u32) -> Self {
        Limits {
            max_frame_size,
            max_headers_size: DEFAULT_MAX_HEADERS_SIZE.min(max_frame_size),
        }
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
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Int16(_) => 3,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) => 5,
            HeaderValue::ByteBuf(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }
    /// The value as `i32` if it is an `Int32`.
    pub fn as_int32(&self) -> Option<i32> {
        match self {
            HeaderValue::Int32(v) => Some(*v),
            _ => None,
        }
    }
    /// The value as `&str` if it is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
    /// The value as `bool` if it is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            HeaderValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The value as bytes if it is a `ByteBuf`.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            HeaderValue::ByteBuf(b) => Some(b),
            _ => None,
        }
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
        Header {
            name: name.into(),
            value,
        }
    }
}

/// A header value borrowed for encoding (see [`encode_parts`]): the same wire types as
/// [`HeaderValue`], without owning anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// Type codes 0 (true) and 1 (false).
    Bool(bool),
    /// Type code 2.
    Byte(i8),
    /// Type code 3.
    Int16(i16),
    /// Type code 4.
    Int32(i32),
    /// Type code 5.
    Int64(i64),
    /// Type code 6.
    ByteBuf(&'a [u8]),
    /// Type code 7.
    String(&'a str),
    /// Type code 8.
    Timestamp(i64),
    /// Type code 9.
    Uuid(&'a [u8; 16]),
}

impl<'a> From<&'a HeaderValue> for ValueRef<'a> {
    fn from(value: &'a HeaderValue) -> Self {
        match value {
            HeaderValue::Bool(v) => ValueRef::Bool(*v),
            HeaderValue::Byte(v) => ValueRef::Byte(*v),
            HeaderValue::Int16(v) => ValueRef::Int16(*v),
            HeaderValue::Int32(v) => ValueRef::Int32(*v),
            HeaderValue::Int64(v) => ValueRef::Int64(*v),
            HeaderValue::ByteBuf(b) => ValueRef::ByteBuf(b),
            HeaderValue::String(s) => ValueRef::String(s),
            HeaderValue::Timestamp(v) => ValueRef::Timestamp(*v),
            HeaderValue::Uuid(u) => ValueRef::Uuid(u),
        }
    }
}

impl ValueRef<'_> {
    /// The wire type code of this value (0..=9).
    pub fn type_code(&self) -> u8 {
        match self {
            ValueRef::Bool(true) => 0,
            ValueRef::Bool(false) => 1,
            ValueRef::Byte(_) => 2,
            ValueRef::Int16(_) => 3,
            ValueRef::Int32(_) => 4,
            ValueRef::Int64(_) => 5,
            ValueRef::ByteBuf(_) => 6,
            ValueRef::String(_) => 7,
            ValueRef::Timestamp(_) => 8,
            ValueRef::Uuid(_) => 9,
        }
    }
}

/// A header borrowed for encoding: what [`encode_parts`] takes, so that a caller whose
/// header names are constants need not allocate a [`Header`] per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The header name.
    pub name: &'a str,
    /// The header value.
    pub value: ValueRef<'a>,
}

impl<'a> HeaderRef<'a> {
    /// A borrowed header.
    pub fn new(name: &'a str, value: ValueRef<'a>) -> Self {
        HeaderRef { name, value }
    }
}

impl<'a> From<&'a Header> for HeaderRef<'a> {
    fn from(header: &'a Header) -> Self {
        HeaderRef {
            name: &header.name,
            value: ValueRef::from(&header.value),
        }
    }
}

/// Encodes one frame from borrowed headers (in wire order) and a payload, exactly as
/// [`Message::encode`] would encode the owned equivalent: `limits` are checked first and
/// nothing is appended to `out` on error. `headers` is iterated twice (sizes, then bytes).
pub fn encode_parts<'a, I>(
    headers: I,
    payload: &[u8],
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<(), CodecError>
where
    I: Iterator<Item = HeaderRef<'a>> + Clone,
{
    frame::encode_parts(headers, payload, limits, out)
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
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }
    /// The exact encoded size of this message in bytes (including prelude and trailer),
    /// or an error when it cannot be encoded (a name or value too long, or over u32).
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        let (_, total) = frame::message_sizes(self)?;
        match u32::try_from(total) {
            Ok(len) => Ok(len as usize),
            Err(_) => Err(CodecError::FrameTooLarge {
                total_length: total,
                max: u32::MAX,
            }),
        }
    }
    /// Appends the encoded frame to `out`, checking `limits` first: nothing is written
    /// when the message is invalid or larger than `limits.max_frame_size`.
    pub fn encode(&self, limits: &Limits, out: &mut BytesMut) -> Result<(), CodecError> {
        frame::encode(self, limits, out)
    }
    /// Encodes into a new buffer.
    pub fn to_bytes(&self, limits: &Limits) -> Result<Bytes, CodecError> {
        let mut out = BytesMut::new();
        self.encode(limits, &mut out)?;
        Ok(out.freeze())
    }
    /// Decodes exactly one whole frame; `bytes.len()` must equal its `total_length`
    /// (else [`CodecError::LengthMismatch`], or [`CodecError::Truncated`] when even the
    /// 12-byte prelude is missing). The frame is copied once after its CRCs are checked.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, CodecError> {
        frame::decode_slice(bytes, limits)
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
    /// `buf[..filled]` holds received bytes; `buf[filled..]` is zeroed scratch that
    /// [`FrameDecoder::read_from`] reads into, kept so that it is not zeroed again on
    /// every read.
    buf: BytesMut,
    filled: usize,
    /// The validated prelude of the frame at the head of `buf`, once known.
    prelude: Option<Prelude>,
    /// The error that made the stream unusable.
    failed: Option<CodecError>,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            buf: BytesMut::with_capacity(INITIAL_CAPACITY),
            filled: 0,
            prelude: None,
            failed: None,
        }
    }
    /// Appends received bytes (ignored once the decoder has failed).
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.truncate(self.filled);
            self.buf.extend_from_slice(bytes);
            self.filled = self.buf.len();
        }
    }
    /// Reads once from `reader` straight into the internal buffer (at most the space
    /// the decoder needs next, capped at 64 KiB per call) and returns the byte count
    /// (0 = end of stream).
    ///
    /// The buffer grows only to what the current frame still needs (its prelude is
    /// validated first when buffered); capacity that is already allocated is filled as
    /// well, so several small frames can arrive in one call, but a read never takes the
    /// buffer past `limits.max_frame_size` bytes unless a whole frame is already waiting
    /// (call [`FrameDecoder::next_message`] until it returns `Ok(None)` before reading).
    /// If the decoder has failed, or the buffered prelude is invalid, nothing is read
    /// and an [`std::io::ErrorKind::InvalidData`] error wrapping the [`CodecError`] is
    /// returned ([`FrameDecoder::next_message`] reports the same error). `Interrupted`
    /// reads are retried.
    pub fn read_from(&mut self, reader: &mut impl std::io::Read) -> std::io::Result<usize> {
        let invalid = |e: CodecError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        if let Some(e) = &self.failed {
            return Err(invalid(e.clone()));
        }
        self.poll_prelude().map_err(invalid)?;
        let len = self.filled;
        let needed = match &self.prelude {
            Some(p) => (p.total_length as usize).saturating_sub(len),
            None => PRELUDE_LEN.saturating_sub(len),
        };
        if needed > self.buf.capacity() - len {
            // Grow once to what the current frame still needs (its length was checked
            // against the limits), not in 64 KiB steps. Scratch is not worth moving.
            self.buf.truncate(len);
            self.buf.reserve(needed);
        }
        let spare = self.buf.capacity() - len;
        let room = (self.limits.max_frame_size as usize)
            .max(PRELUDE_LEN)
            .saturating_sub(len);
        let mut want = needed.max(spare.min(room));
        if want == 0 {
            // A whole frame is already buffered; read into what is allocated anyway.
            want = spare.max(PRELUDE_LEN);
        }
        let want = want.min(MAX_READ);
        if len + want > self.buf.capacity() {
            self.buf.truncate(len);
        }
        if self.buf.len() < len + want {
            // Only bytes never zeroed before are zeroed (no `unsafe`: a read needs an
            // initialized buffer).
            self.buf.resize(len + want, 0);
        }
        let result = loop {
            match reader.read(self.buf.get_mut(len..len + want).unwrap_or_default()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = match &result {
            Ok(n) => (*n).min(want),
            Err(_) => 0,
        };
        self.filled = len + n;
        result.map(|_| n)
    }
    /// The next whole message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(prelude) = self.poll_prelude()? else {
            return Ok(None);
        };
        let total = prelude.total_length as usize;
        if self.filled < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        self.filled -= total;
        self.prelude = None;
        match frame::decode_frame(frame, &prelude) {
            Ok(msg) => Ok(Some(msg)),
            Err(e) => Err(self.fail(e)),
        }
    }
    /// Number of buffered bytes not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.filled
    }
    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// Replaces the limits, keeping what is buffered: they apply from the next prelude
    /// validated on (a prelude already validated keeps the limits it was checked
    /// against). The emulator reads a CONNECT under small limits, then raises them once
    /// the peer has authenticated.
    #[cfg(feature = "emulator")]
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }
    /// Call at end of stream: `Ok(())` if no partial frame is buffered, else
    /// [`CodecError::Truncated`] (or the error the decoder already failed with).
    pub fn finish(&self) -> Result<(), CodecError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None if self.filled == 0 => Ok(()),
            None => Err(CodecError::Truncated {
                buffered: self.filled,
            }),
        }
    }

    /// Validates the prelude at the head of the buffer once its 12 bytes are present.
    fn poll_prelude(&mut self) -> Result<Option<Prelude>, CodecError> {
        if self.prelude.is_none() {
            let received = self.buf.get(..self.filled).unwrap_or_default();
            match frame::parse_prelude(received, &self.limits) {
                Ok(p) => self.prelude = p,
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(self.prelude)
    }

    /// Marks the stream unusable and drops what is buffered.
    fn fail(&mut self, e: CodecError) -> CodecError {
        self.failed = Some(e.clone());
        self.prelude = None;
        self.buf = BytesMut::new();
        self.filled = 0;
        e
    }
}

/// Rewrites the prelude CRC and the message CRC of the raw frame at the start of `frame`
/// so that both match its bytes, whatever its lengths say (the message CRC goes in the
/// last four bytes of `frame`). For fuzzers and fault injection, which corrupt one field
/// of a frame and need every other check to pass. Does nothing to a buffer shorter than
/// 16 bytes.
pub fn reseal(frame: &mut [u8]) {
    if frame.len() < FRAME_OVERHEAD {
        return;
    }
    let prelude_crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
    let crc_at = frame.len() - 4;
    let message_crc = crc32fast::hash(&frame[..crc_at]);
    frame[crc_at..].copy_from_slice(&message_crc.to_be_bytes());
}

#[cfg(test)]
mod tests;
