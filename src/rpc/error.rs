//! Violations of the eventstream-RPC protocol.

use super::MessageType;

/// A message that breaks the eventstream-RPC rules. Every one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reserved header is missing or has the wrong type.
    #[error("message lacks the int32 header {name}")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// `:message-type` holds a value outside 0..=7.
    #[error("unknown message type {value}")]
    UnknownMessageType {
        /// The value found.
        value: i32,
    },
    /// A connection-level type on a stream, or a stream type on stream 0.
    #[error("message type {message_type:?} is not allowed on stream {stream_id}")]
    WrongStreamForType {
        /// The message type.
        message_type: MessageType,
        /// The stream it arrived on.
        stream_id: i32,
    },
    /// A message that is not allowed at this point of the connection.
    #[error("unexpected {message_type:?} message {context}")]
    UnexpectedMessage {
        /// The message type received.
        message_type: MessageType,
        /// Where it arrived, e.g. "before CONNECT_ACK".
        context: &'static str,
    },
    /// The server wrote on a stream the client never opened.
    #[error("the server sent a message on stream {stream_id}, which the client never opened")]
    UnknownStream {
        /// The stream id.
        stream_id: i32,
    },
    /// The peer reported a protocol error (PROTOCOL_ERROR) and closed the connection.
    #[error("the server reported a protocol error: {message}")]
    PeerProtocolError {
        /// The text the peer sent.
        message: String,
    },
    /// The peer reported an internal error (INTERNAL_ERROR) and closed the connection.
    #[error("the server reported an internal error: {message}")]
    PeerInternalError {
        /// The text the peer sent.
        message: String,
    },
    /// All 2³¹−1 stream ids of this connection have been used.
    #[error("the connection has used every stream id; reconnect")]
    StreamIdsExhausted,
    /// A response carried a `service-model-type` other than the operation's response shape.
    #[error("expected a {expected} but the server sent {actual}")]
    UnexpectedModelType {
        /// The shape the operation answers with.
        expected: &'static str,
        /// The shape received.
        actual: String,
    },
    /// A response or event whose `:content-type` is not JSON.
    #[error("unsupported content type {content_type:?}")]
    UnsupportedContentType {
        /// The content type received.
        content_type: Option<String>,
    },
}
