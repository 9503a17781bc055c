//! Whole frames: prelude validation, message CRC, encoding.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::CodecError;
use super::header::{encoded_header_len, parse_headers, write_header};
use super::types::{HeaderRef, Limits, Message, FRAME_OVERHEAD, PRELUDE_LEN};

/// A prelude whose CRC and lengths have been checked against the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Prelude {
    /// Whole frame length (16 ..= `limits.max_frame_size`).
    pub(super) total_length: u32,
    /// Headers block length (fits inside the frame, within `limits.max_headers_size`).
    pub(super) headers_length: u32,
    /// The (verified) prelude CRC.
    pub(super) crc: u32,
}

#[inline]
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let arr: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Validates the 12-byte prelude at the start of `bytes`, in this order: prelude CRC,
/// `total_length >= 16`, frame limit, headers limit, headers fit in the frame.
///
/// `Ok(None)` when fewer than 12 bytes are present.
pub(super) fn parse_prelude(bytes: &[u8], limits: &Limits) -> Result<Option<Prelude>, CodecError> {
    let (Some(total_length), Some(headers_length), Some(expected), Some(lengths)) = (
        be_u32(bytes, 0),
        be_u32(bytes, 4),
        be_u32(bytes, 8),
        bytes.get(..8),
    ) else {
        return Ok(None);
    };
    let actual = crc32fast::hash(lengths);
    if actual != expected {
        return Err(CodecError::PreludeChecksumMismatch { expected, actual });
    }
    if (total_length as usize) < FRAME_OVERHEAD {
        return Err(CodecError::FrameTooShort { total_length });
    }
    if total_length > limits.max_frame_size {
        return Err(CodecError::FrameTooLarge {
            total_length: u64::from(total_length),
            max: limits.max_frame_size,
        });
    }
    if headers_length > limits.max_headers_size {
        return Err(CodecError::HeadersTooLarge {
            headers_length: u64::from(headers_length),
            max: limits.max_headers_size,
        });
    }
    // total_length >= 16 here, so the subtraction cannot underflow.
    if headers_length > total_length - FRAME_OVERHEAD as u32 {
        return Err(CodecError::HeadersLengthOutOfRange {
            headers_length,
            total_length,
        });
    }
    Ok(Some(Prelude {
        total_length,
        headers_length,
        crc: expected,
    }))
}

/// Checks the message CRC of a whole frame (`frame.len() == total_length`), continuing
/// the CRC from the already verified prelude CRC.
fn check_message_crc(frame: &[u8], prelude: &Prelude) -> Result<(), CodecError> {
    let crc_at = frame.len().saturating_sub(4);
    let (Some(expected), Some(body)) = (be_u32(frame, crc_at), frame.get(8..crc_at)) else {
        return Err(CodecError::Truncated {
            buffered: frame.len(),
        });
    };
    let mut hasher = crc32fast::Hasher::new_with_initial(prelude.crc);
    hasher.update(body);
    let actual = hasher.finalize();
    if actual != expected {
        return Err(CodecError::MessageChecksumMismatch { expected, actual });
    }
    Ok(())
}

/// Decodes a whole frame whose prelude was validated; `frame.len() == total_length`.
/// Checks the message CRC, then parses the headers; the payload is a zero-copy slice.
pub(super) fn decode_frame(frame: Bytes, prelude: &Prelude) -> Result<Message, CodecError> {
    check_message_crc(&frame, prelude)?;
    build_message(frame, prelude)
}

fn build_message(frame: Bytes, prelude: &Prelude) -> Result<Message, CodecError> {
    let headers_end = PRELUDE_LEN + prelude.headers_length as usize;
    let payload_end = frame.len().saturating_sub(4);
    let headers = parse_headers(&frame, PRELUDE_LEN, headers_end)?;
    if headers_end > payload_end {
        // Unreachable after `parse_prelude`; kept so that slicing can never panic.
        return Err(CodecError::HeadersLengthOutOfRange {
            headers_length: prelude.headers_length,
            total_length: prelude.total_length,
        });
    }
    let payload = frame.slice(headers_end..payload_end);
    Ok(Message { headers, payload })
}

/// Whole-buffer decode: `bytes` must be exactly one frame.
pub(super) fn decode_slice(bytes: &[u8], limits: &Limits) -> Result<Message, CodecError> {
    let prelude = parse_prelude(bytes, limits)?.ok_or(CodecError::Truncated {
        buffered: bytes.len(),
    })?;
    if bytes.len() != prelude.total_length as usize {
        return Err(CodecError::LengthMismatch {
            total_length: prelude.total_length,
            actual: bytes.len(),
        });
    }
    check_message_crc(bytes, &prelude)?;
    // One copy of the (verified) frame; headers' byte buffers and the payload share it.
    build_message(Bytes::copy_from_slice(bytes), &prelude)
}

/// Headers-block length and total frame length, after validating every header.
pub(super) fn encoded_sizes<'a>(
    headers: impl Iterator<Item = HeaderRef<'a>>,
    payload_len: usize,
) -> Result<(u64, u64), CodecError> {
    let mut headers_len: u64 = 0;
    for header in headers {
        // A usize always fits in a u64 on supported targets.
        let offset = usize::try_from(headers_len).unwrap_or(usize::MAX);
        headers_len += encoded_header_len(&header, offset)? as u64;
    }
    let total = headers_len + payload_len as u64 + FRAME_OVERHEAD as u64;
    Ok((headers_len, total))
}

/// The sizes of a whole [`Message`].
pub(super) fn message_sizes(msg: &Message) -> Result<(u64, u64), CodecError> {
    encoded_sizes(msg.headers.iter().map(HeaderRef::from), msg.payload.len())
}

/// Validates `msg` against `limits` and appends its frame to `out` (nothing on error).
pub(super) fn encode(msg: &Message, limits: &Limits, out: &mut BytesMut) -> Result<(), CodecError> {
    encode_parts(
        msg.headers.iter().map(HeaderRef::from),
        &msg.payload,
        limits,
        out,
    )
}

/// Validates borrowed headers and a payload against `limits` and appends their frame to
/// `out` (nothing on error), walking `headers` once.
pub(super) fn encode_parts<'a, I>(
    headers: I,
    payload: &[u8],
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<(), CodecError>
where
    I: Iterator<Item = HeaderRef<'a>>,
{
    let start = out.len();
    let written = write_frame(headers, payload, limits, out, start);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// Room reserved for a frame's headers before they are written (an eventstream-RPC frame's
/// seven headers take about 150 bytes); more headers grow the buffer as they are written.
const HEADERS_ROOM: usize = 256;

/// [`encode_parts`] in one pass over the headers: the prelude's room first, each header
/// checked and written, then the limits checked before the payload is copied, and the
/// prelude and the CRCs last. On error, `out` may hold part of the frame after `start`
/// (at most the frame limit's worth of headers).
fn write_frame<'a>(
    headers: impl Iterator<Item = HeaderRef<'a>>,
    payload: &[u8],
    limits: &Limits,
    out: &mut BytesMut,
    start: usize,
) -> Result<(), CodecError> {
    let max_frame = u64::from(limits.max_frame_size);
    // (A payload over the limit is refused below: the room is never sized by it.)
    let payload_room = payload.len().min(limits.max_frame_size as usize);
    out.reserve(PRELUDE_LEN + HEADERS_ROOM + payload_room + 4);
    out.put_slice(&[0; PRELUDE_LEN]);
    let mut headers_len: u64 = 0;
    for header in headers {
        // A usize always fits in a u64 on supported targets.
        let offset = usize::try_from(headers_len).unwrap_or(usize::MAX);
        headers_len += encoded_header_len(&header, offset)? as u64;
        // Headers past the frame limit are only measured (for the error), never written.
        if headers_len <= max_frame {
            write_header(&header, out);
        }
    }
    let total = headers_len + payload.len() as u64 + FRAME_OVERHEAD as u64;
    if total > max_frame {
        return Err(CodecError::FrameTooLarge {
            total_length: total,
            max: limits.max_frame_size,
        });
    }
    if headers_len > u64::from(limits.max_headers_size) {
        return Err(CodecError::HeadersTooLarge {
            headers_length: headers_len,
            max: limits.max_headers_size,
        });
    }
    out.put_slice(payload);
    // Both fit in u32 now (bounded by the u32 limits).
    let mut prelude = [0u8; PRELUDE_LEN];
    let (lengths, crc_bytes) = prelude.split_at_mut(8);
    let (total_bytes, headers_bytes) = lengths.split_at_mut(4);
    total_bytes.copy_from_slice(&(total as u32).to_be_bytes());
    headers_bytes.copy_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(lengths);
    crc_bytes.copy_from_slice(&prelude_crc.to_be_bytes());
    let frame = out.get_mut(start..).unwrap_or_default();
    if let Some(head) = frame.get_mut(..PRELUDE_LEN) {
        head.copy_from_slice(&prelude);
    }
    // The message CRC covers the whole frame but its last 4 bytes, the prelude's 8 bytes
    // of lengths included: it continues from the prelude CRC.
    let mut hasher = crc32fast::Hasher::new_with_initial(prelude_crc);
    hasher.update(frame.get(8..).unwrap_or_default());
    out.put_u32(hasher.finalize());
    debug_assert_eq!(out.len() - start, total as usize);
    Ok(())
}
