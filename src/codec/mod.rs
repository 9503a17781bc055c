//! The frame codec: the AWS event-stream binary frame (`application/vnd.amazon.eventstream`).
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
mod types;

pub use error::CodecError;
pub use types::{
    Header, HeaderRef, HeaderValue, Limits, Message, ValueRef, DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_HEADERS_SIZE, FRAME_OVERHEAD, PRELUDE_LEN,
};

use bytes::{Bytes, BytesMut};

use frame::Prelude;

/// Most bytes [`FrameDecoder::read_from`] reads in one call.
const MAX_READ: usize = 64 * 1024;
/// Capacity a new [`FrameDecoder`] starts with (lets small frames be read in batches).
const INITIAL_CAPACITY: usize = 8 * 1024;

/// Encodes one frame from borrowed headers (in wire order) and a payload, exactly as
/// [`Message::encode`] would encode the owned equivalent: nothing is appended to `out` on
/// error (the limits are checked before the payload is copied). `headers` is iterated
/// once.
pub fn encode_parts<'a, I>(
    headers: I,
    payload: &[u8],
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<(), CodecError>
where
    I: Iterator<Item = HeaderRef<'a>>,
{
    frame::encode_parts(headers, payload, limits, out)
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
            // (`>=` above is equivalent: with exactly the room needed, `reserve` keeps
            // the allocation and only the scratch beyond `len` is dropped.)
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
        // Only bytes never zeroed before are zeroed (no `unsafe`: a read needs an
        // initialized buffer), and zeroed scratch is kept. The buffer grows here only by
        // the prelude's few bytes, when a whole frame fills it (the frame's own growth
        // is the `reserve` above).
        let end = len + want;
        self.buf.resize(end.max(self.buf.len()), 0);
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
    /// The buffer's allocated size (what the read-size policy bounds).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.capacity()
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
/// 16 bytes. Only with the `internals` feature (the client never needs it); it stays in
/// the codec, the one user of `crc32fast`.
#[cfg(feature = "internals")]
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
