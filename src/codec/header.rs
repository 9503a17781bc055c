//! The headers block: encoding, validation and bounds-checked parsing.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::CodecError;
use super::types::{Header, HeaderRef, HeaderValue, ValueRef};

/// Longest header name (the name length is one byte).
pub(super) const MAX_NAME_LEN: usize = 255;
/// Longest string or byte-buffer value (`INT16_MAX`, as the C library enforces).
pub(super) const MAX_VALUE_LEN: usize = 32_767;

/// Encoded size of one header, after checking that it can be encoded.
///
/// `offset` is where the header would start in the headers block (for error reports).
pub(super) fn encoded_header_len(
    header: &HeaderRef<'_>,
    offset: usize,
) -> Result<usize, CodecError> {
    let name_len = header.name.len();
    if name_len == 0 {
        return Err(CodecError::EmptyHeaderName { offset });
    }
    if name_len > MAX_NAME_LEN {
        return Err(CodecError::HeaderNameTooLong { len: name_len });
    }
    let value_len = match header.value {
        ValueRef::Bool(_) => 0,
        ValueRef::Byte(_) => 1,
        ValueRef::Int16(_) => 2,
        ValueRef::Int32(_) => 4,
        ValueRef::Int64(_) | ValueRef::Timestamp(_) => 8,
        ValueRef::ByteBuf(b) => 2 + checked_value_len(b.len())?,
        ValueRef::String(s) => 2 + checked_value_len(s.len())?,
        ValueRef::Uuid(_) => 16,
    };
    // name length byte + name + type byte + value
    Ok(2 + name_len + value_len)
}

fn checked_value_len(len: usize) -> Result<usize, CodecError> {
    if len > MAX_VALUE_LEN {
        Err(CodecError::HeaderValueTooLong { len })
    } else {
        Ok(len)
    }
}

/// Writes one header that [`encoded_header_len`] accepted.
pub(super) fn write_header(header: &HeaderRef<'_>, out: &mut BytesMut) {
    let name = header.name.as_bytes();
    // Lengths were validated by `encoded_header_len` (name <= 255, values <= 32 767).
    out.put_u8(name.len() as u8);
    out.put_slice(name);
    out.put_u8(header.value.type_code());
    match header.value {
        ValueRef::Bool(_) => {}
        ValueRef::Byte(v) => out.put_i8(v),
        ValueRef::Int16(v) => out.put_i16(v),
        ValueRef::Int32(v) => out.put_i32(v),
        ValueRef::Int64(v) | ValueRef::Timestamp(v) => out.put_i64(v),
        ValueRef::ByteBuf(b) => {
            out.put_u16(b.len() as u16);
            out.put_slice(b);
        }
        ValueRef::String(s) => {
            out.put_u16(s.len() as u16);
            out.put_slice(s.as_bytes());
        }
        ValueRef::Uuid(u) => out.put_slice(u),
    }
}

/// A bounds-checked reader over the headers block.
struct Reader<'a> {
    block: &'a [u8],
    pos: usize,
    /// Start of the header being parsed (reported on truncation).
    header_start: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.block.get(self.pos..end))
            .ok_or(CodecError::HeaderTruncated {
                offset: self.header_start,
            })?;
        self.pos += n;
        Ok(slice)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let offset = self.header_start;
        self.take(N)?
            .try_into()
            .map_err(|_| CodecError::HeaderTruncated { offset })
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
}

/// Parses the headers block `frame[start..end]`.
///
/// Byte-buffer values are zero-copy slices of `frame`. The last header must end
/// exactly at `end`.
pub(super) fn parse_headers(
    frame: &Bytes,
    start: usize,
    end: usize,
) -> Result<Vec<Header>, CodecError> {
    let block = frame
        .get(start..end)
        .ok_or(CodecError::HeaderTruncated { offset: 0 })?;
    // A fixed initial capacity, never sized by a wire length: room for the 5 to 7 headers
    // of an eventstream-RPC frame, so that a typical frame allocates the list once.
    let mut headers = Vec::with_capacity(if block.is_empty() { 0 } else { 8 });
    let mut r = Reader {
        block,
        pos: 0,
        header_start: 0,
    };
    // Every header takes at least 3 bytes (name length, name, type), so this many turns
    // always suffice: the loop is bounded whatever the reader does.
    for _ in 0..block.len().div_ceil(3) {
        // (`take` never goes past the block.)
        if r.pos == block.len() {
            break;
        }
        r.header_start = r.pos;
        let name_len = usize::from(r.u8()?);
        if name_len == 0 {
            return Err(CodecError::EmptyHeaderName {
                offset: r.header_start,
            });
        }
        let name = shared_text(r.take(name_len)?)?;
        let value = match r.u8()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(r.array()?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(r.array()?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(r.array()?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(r.array()?)),
            6 => {
                let len = value_len(&mut r)?;
                let value_start = start + r.pos;
                r.take(len)?;
                HeaderValue::ByteBuf(frame.slice(value_start..value_start + len))
            }
            7 => {
                let len = value_len(&mut r)?;
                HeaderValue::String(shared_text(r.take(len)?)?)
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(r.array()?)),
            9 => HeaderValue::Uuid(r.array()?),
            type_code => return Err(CodecError::UnknownHeaderType { type_code }),
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

/// Header names and string values that nearly every eventstream-RPC frame carries.
/// Comparing against them is cheaper than `str::from_utf8` on short strings.
const KNOWN_TEXT: [&str; 8] = [
    ":message-type",
    ":message-flags",
    ":stream-id",
    ":content-type",
    "service-model-type",
    "operation",
    ":version",
    "application/json",
];

/// The known string these bytes spell, if any: such a name or value is borrowed, not
/// allocated.
#[inline]
fn known(bytes: &[u8]) -> Option<&'static str> {
    KNOWN_TEXT.iter().find(|k| k.as_bytes() == bytes).copied()
}

/// The bytes as UTF-8 text: a known string is borrowed (recognised without validating
/// it again, and not allocated), any other is validated and copied.
#[inline]
fn shared_text(bytes: &[u8]) -> Result<Cow<'static, str>, CodecError> {
    match known(bytes) {
        Some(known) => Ok(Cow::Borrowed(known)),
        None => text(bytes).map(|text| Cow::Owned(text.to_owned())),
    }
}

/// The bytes validated as UTF-8.
#[inline]
fn text(bytes: &[u8]) -> Result<&str, CodecError> {
    std::str::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8)
}

/// Reads a 2-byte value length and checks it against [`MAX_VALUE_LEN`].
#[inline]
fn value_len(r: &mut Reader<'_>) -> Result<usize, CodecError> {
    let len = usize::from(u16::from_be_bytes(r.array()?));
    checked_value_len(len)
}
