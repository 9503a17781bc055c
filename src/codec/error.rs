//! Errors of the frame codec.

/// A frame that cannot be decoded or a message that cannot be encoded.
///
/// Every decode error means the byte stream is unusable: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The prelude CRC does not match bytes 0..8.
    #[error("prelude checksum mismatch: frame says {expected:#010x}, computed {actual:#010x}")]
    PreludeChecksumMismatch {
        /// The CRC written in the frame.
        expected: u32,
        /// The CRC computed over the received bytes.
        actual: u32,
    },
    /// The message CRC does not match the frame's bytes.
    #[error("message checksum mismatch: frame says {expected:#010x}, computed {actual:#010x}")]
    MessageChecksumMismatch {
        /// The CRC written in the frame.
        expected: u32,
        /// The CRC computed over the received bytes.
        actual: u32,
    },
    /// `total_length` is below the 16-byte minimum.
    #[error("frame total length {total_length} is below the 16-byte minimum")]
    FrameTooShort {
        /// The length in the prelude.
        total_length: u32,
    },
    /// The frame is larger than the configured maximum.
    #[error("frame of {total_length} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's length.
        total_length: u64,
        /// The configured limit.
        max: u32,
    },
    /// The headers block is larger than the configured maximum.
    #[error("headers block of {headers_length} bytes exceeds the limit of {max} bytes")]
    HeadersTooLarge {
        /// The headers block's length.
        headers_length: u64,
        /// The configured limit.
        max: u32,
    },
    /// `headers_length` does not fit inside `total_length - 16`.
    #[error("headers length {headers_length} does not fit in a frame of {total_length} bytes")]
    HeadersLengthOutOfRange {
        /// The headers length in the prelude.
        headers_length: u32,
        /// The total length in the prelude.
        total_length: u32,
    },
    /// A header's name, type, length or value runs past the end of the headers block.
    #[error("header truncated at offset {offset} of the headers block")]
    HeaderTruncated {
        /// Offset in the headers block where the header that does not fit starts.
        offset: usize,
    },
    /// A header has an empty name.
    #[error("header with an empty name at offset {offset} of the headers block")]
    EmptyHeaderName {
        /// Offset in the headers block.
        offset: usize,
    },
    /// A header type code outside 0..=9.
    #[error("unknown header value type {type_code}")]
    UnknownHeaderType {
        /// The type code found.
        type_code: u8,
    },
    /// A header name or string value that is not UTF-8.
    #[error("header name or string value is not valid UTF-8")]
    InvalidUtf8,
    /// On encode: a header name longer than 255 bytes.
    #[error("header name of {len} bytes is longer than 255")]
    HeaderNameTooLong {
        /// The name's length.
        len: usize,
    },
    /// A string or byte-buffer value longer than 32 767 bytes.
    #[error("header value of {len} bytes is longer than 32767")]
    HeaderValueTooLong {
        /// The value's length.
        len: usize,
    },
    /// Whole-buffer decode: the buffer length differs from the frame's `total_length`.
    #[error("buffer holds {actual} bytes but the frame says {total_length}")]
    LengthMismatch {
        /// The length in the prelude.
        total_length: u32,
        /// The buffer's length.
        actual: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the incomplete frame that were received.
        buffered: usize,
    },
}
