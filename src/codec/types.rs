//! The codec's data types: limits, headers and messages. The functions that encode and
//! decode them are in `frame` and `header` (which import this file, never the reverse).

use std::borrow::Cow;

use bytes::Bytes;

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
    /// Type code 7: UTF-8 text (at most 32 767 bytes on encode). Decoded values that
    /// nearly every frame carries (`application/json`) are borrowed.
    String(Cow<'static, str>),
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
    /// The header name. The decoder borrows the names eventstream RPC uses on every frame
    /// (`:message-type`, `operation`, ...) from constants instead of allocating them.
    pub name: Cow<'static, str>,
    /// The header value.
    pub value: HeaderValue,
}

impl Header {
    /// A header with the given name and value.
    pub fn new(name: impl Into<Cow<'static, str>>, value: HeaderValue) -> Self {
        Header {
            name: name.into(),
            value,
        }
    }
}

/// A header value borrowed for encoding (see [`encode_parts`](super::encode_parts)): the same wire types as
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

/// A header borrowed for encoding: what [`encode_parts`](super::encode_parts) takes, so that a caller whose
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

/// One event-stream message: headers (in wire order) and an opaque payload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers, in the order they appear on the wire.
    pub headers: Vec<Header>,
    /// The payload bytes (may be empty).
    pub payload: Bytes,
}
