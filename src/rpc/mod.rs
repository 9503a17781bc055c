//! The RPC layer: eventstream-RPC messages on top of the frame codec. Pure: no I/O.
//!
//! An [`RpcMessage`] is a [`Message`] whose reserved headers
//! (`:message-type`, `:message-flags`, `:stream-id`, and where present `:content-type`,
//! `service-model-type`, `operation`, `:version`) have been checked and lifted into fields.

mod error;
mod handshake;
pub(crate) mod session;

pub use error::ProtocolError;
pub use handshake::{connect_ack, connect_message, ConnectOutcome, PROTOCOL_VERSION};

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use crate::codec::{CodecError, Header, HeaderRef, HeaderValue, Limits, Message, ValueRef};

/// Header carrying the message type.
pub const MESSAGE_TYPE: &str = ":message-type";
/// Header carrying the flags.
pub const MESSAGE_FLAGS: &str = ":message-flags";
/// Header carrying the stream id.
pub const STREAM_ID: &str = ":stream-id";
/// Header carrying the protocol version (CONNECT only).
pub const VERSION: &str = ":version";
/// Header carrying the payload's content type.
pub const CONTENT_TYPE: &str = ":content-type";
/// Header carrying the shape id of the payload.
pub const MODEL_TYPE: &str = "service-model-type";
/// Header carrying the operation name on the first message of a stream.
pub const OPERATION: &str = "operation";
/// The content type of every JSON payload.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The JSON text of a payload: an empty payload means `{}` (servers send responses of
/// shapes without members with no payload at all; nucleus lite omits it). The one
/// place this rule lives.
pub fn json_body(payload: &[u8]) -> &[u8] {
    if payload.is_empty() {
        b"{}"
    } else {
        payload
    }
}

/// Flag bit on CONNECT_ACK: the connection was accepted.
pub const FLAG_CONNECTION_ACCEPTED: i32 = 0x1;
/// Flag bit on stream messages: the stream ends with this message.
pub const FLAG_TERMINATE_STREAM: i32 = 0x2;

/// The eventstream-RPC message types (`:message-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    /// 0: a request, response or stream event (stream ≥ 1).
    ApplicationMessage,
    /// 1: an error on a stream (stream ≥ 1).
    ApplicationError,
    /// 2: ping (stream 0).
    Ping,
    /// 3: answer to a ping (stream 0).
    PingResponse,
    /// 4: the client's handshake (stream 0).
    Connect,
    /// 5: the server's answer to CONNECT (stream 0).
    ConnectAck,
    /// 6: a connection-level protocol error; the sender closes (stream 0).
    ProtocolError,
    /// 7: a connection-level internal error; the sender closes (stream 0).
    InternalError,
}

impl MessageType {
    /// The type for a wire value, if known.
    pub fn from_wire(value: i32) -> Option<MessageType> {
        Some(match value {
            0 => MessageType::ApplicationMessage,
            1 => MessageType::ApplicationError,
            2 => MessageType::Ping,
            3 => MessageType::PingResponse,
            4 => MessageType::Connect,
            5 => MessageType::ConnectAck,
            6 => MessageType::ProtocolError,
            7 => MessageType::InternalError,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn to_wire(self) -> i32 {
        match self {
            MessageType::ApplicationMessage => 0,
            MessageType::ApplicationError => 1,
            MessageType::Ping => 2,
            MessageType::PingResponse => 3,
            MessageType::Connect => 4,
            MessageType::ConnectAck => 5,
            MessageType::ProtocolError => 6,
            MessageType::InternalError => 7,
        }
    }

    /// Whether this type travels on stream 0 (connection level) rather than a stream ≥ 1.
    pub fn is_connection_level(self) -> bool {
        !matches!(
            self,
            MessageType::ApplicationMessage | MessageType::ApplicationError
        )
    }
}

/// One eventstream-RPC message with its reserved headers checked and lifted out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcMessage {
    /// `:message-type`.
    pub message_type: MessageType,
    /// `:message-flags` (bit set of `FLAG_*`).
    pub flags: i32,
    /// `:stream-id` (0 = connection level).
    pub stream_id: i32,
    /// `:content-type`, if present.
    pub content_type: Option<Cow<'static, str>>,
    /// `service-model-type`, if present.
    pub model_type: Option<Cow<'static, str>>,
    /// `operation`, if present.
    pub operation: Option<Cow<'static, str>>,
    /// `:version`, if present.
    pub version: Option<Cow<'static, str>>,
    /// Every other header, in wire order.
    pub extra_headers: Vec<Header>,
    /// The payload.
    pub payload: Bytes,
}

impl RpcMessage {
    /// A message of `message_type` on `stream_id` with no optional headers and no payload.
    pub fn new(message_type: MessageType, flags: i32, stream_id: i32) -> Self {
        RpcMessage {
            message_type,
            flags,
            stream_id,
            content_type: None,
            model_type: None,
            operation: None,
            version: None,
            extra_headers: Vec::new(),
            payload: Bytes::new(),
        }
    }

    /// A JSON APPLICATION_MESSAGE (or APPLICATION_ERROR) carrying `model_type` (a
    /// `&'static str` is borrowed, not copied).
    pub fn json(
        message_type: MessageType,
        flags: i32,
        stream_id: i32,
        model_type: Option<impl Into<Cow<'static, str>>>,
        payload: impl Into<Bytes>,
    ) -> Self {
        let mut m = RpcMessage::new(message_type, flags, stream_id);
        m.content_type = Some(Cow::Borrowed(CONTENT_TYPE_JSON));
        m.model_type = model_type.map(Into::into);
        m.payload = payload.into();
        m
    }

    /// Whether the TERMINATE_STREAM flag is set.
    pub fn is_terminate(&self) -> bool {
        self.flags & FLAG_TERMINATE_STREAM != 0
    }

    /// Checks the reserved headers of a decoded frame and lifts them out.
    ///
    /// # Errors
    /// [`ProtocolError::MissingHeader`] when one of the three colon headers is absent or not
    /// an int32, [`ProtocolError::UnknownMessageType`], and
    /// [`ProtocolError::WrongStreamForType`] when the type does not belong on that stream.
    pub fn from_frame(frame: Message) -> Result<RpcMessage, ProtocolError> {
        let mut message_type = None;
        let mut flags = None;
        let mut stream_id = None;
        let mut m = RpcMessage::new(MessageType::Ping, 0, 0);
        for header in frame.headers {
            let name: &str = &header.name;
            match (name, header.value) {
                (MESSAGE_TYPE, HeaderValue::Int32(v)) if message_type.is_none() => {
                    message_type = Some(v)
                }
                (MESSAGE_FLAGS, HeaderValue::Int32(v)) if flags.is_none() => flags = Some(v),
                (STREAM_ID, HeaderValue::Int32(v)) if stream_id.is_none() => stream_id = Some(v),
                (CONTENT_TYPE, HeaderValue::String(s)) if m.content_type.is_none() => {
                    m.content_type = Some(s)
                }
                (MODEL_TYPE, HeaderValue::String(s)) if m.model_type.is_none() => {
                    m.model_type = Some(s)
                }
                (OPERATION, HeaderValue::String(s)) if m.operation.is_none() => {
                    m.operation = Some(s)
                }
                (VERSION, HeaderValue::String(s)) if m.version.is_none() => m.version = Some(s),
                (_, value) => m.extra_headers.push(Header {
                    name: header.name,
                    value,
                }),
            }
        }
        let raw_type = message_type.ok_or(ProtocolError::MissingHeader { name: MESSAGE_TYPE })?;
        m.flags = flags.ok_or(ProtocolError::MissingHeader {
            name: MESSAGE_FLAGS,
        })?;
        m.stream_id = stream_id.ok_or(ProtocolError::MissingHeader { name: STREAM_ID })?;
        m.message_type = MessageType::from_wire(raw_type)
            .ok_or(ProtocolError::UnknownMessageType { value: raw_type })?;
        if m.message_type.is_connection_level() != (m.stream_id == 0) {
            return Err(ProtocolError::WrongStreamForType {
                message_type: m.message_type,
                stream_id: m.stream_id,
            });
        }
        m.payload = frame.payload;
        Ok(m)
    }

    /// The frame for this message. Header order follows the AWS C library: `:version`,
    /// `:content-type`, `service-model-type`, other headers, the three colon headers, and
    /// `operation` last.
    pub fn to_frame(&self) -> Message {
        let mut headers = Vec::with_capacity(7 + self.extra_headers.len());
        let text =
            |name: &'static str, value: &Option<Cow<'static, str>>, headers: &mut Vec<Header>| {
                if let Some(v) = value {
                    headers.push(Header::new(name, HeaderValue::String(v.clone())));
                }
            };
        text(VERSION, &self.version, &mut headers);
        text(CONTENT_TYPE, &self.content_type, &mut headers);
        text(MODEL_TYPE, &self.model_type, &mut headers);
        headers.extend(self.extra_headers.iter().cloned());
        headers.push(Header::new(
            MESSAGE_TYPE,
            HeaderValue::Int32(self.message_type.to_wire()),
        ));
        headers.push(Header::new(MESSAGE_FLAGS, HeaderValue::Int32(self.flags)));
        headers.push(Header::new(STREAM_ID, HeaderValue::Int32(self.stream_id)));
        text(OPERATION, &self.operation, &mut headers);
        Message {
            headers,
            payload: self.payload.clone(),
        }
    }

    /// Appends the frame of this message to `out`: the same bytes as
    /// `self.to_frame().encode(limits, out)`, without building the owned headers (no
    /// allocation per header). Nothing is appended on error.
    ///
    /// # Errors
    /// As [`Message::encode`].
    pub fn encode(&self, limits: &Limits, out: &mut BytesMut) -> Result<(), CodecError> {
        fn text<'a>(name: &'static str, value: &'a Option<Cow<str>>) -> Option<HeaderRef<'a>> {
            value
                .as_deref()
                .map(|v| HeaderRef::new(name, ValueRef::String(v)))
        }
        let int = |name: &'static str, v: i32| HeaderRef::new(name, ValueRef::Int32(v));
        let leading = [
            text(VERSION, &self.version),
            text(CONTENT_TYPE, &self.content_type),
            text(MODEL_TYPE, &self.model_type),
        ];
        let colon = [
            int(MESSAGE_TYPE, self.message_type.to_wire()),
            int(MESSAGE_FLAGS, self.flags),
            int(STREAM_ID, self.stream_id),
        ];
        let headers = leading
            .into_iter()
            .flatten()
            .chain(self.extra_headers.iter().map(HeaderRef::from))
            .chain(colon)
            .chain(text(OPERATION, &self.operation));
        crate::codec::encode_parts(headers, &self.payload, limits, out)
    }

    /// The payload as text, lossily, for error messages and logs.
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Extracts a human-readable message from a connection-level error payload
/// (`{"message": …}`), leniently: the nucleus sometimes sends invalid JSON.
pub fn error_payload_text(payload: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(payload)
    {
        for key in ["message", "_message", "error"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    String::from_utf8_lossy(payload).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let mut m = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            3,
            Some("aws.greengrass#X"),
            &b"{}"[..],
        );
        m.operation = Some("aws.greengrass#Op".into());
        m.extra_headers
            .push(Header::new("x-custom", HeaderValue::Int64(9)));
        let back = RpcMessage::from_frame(m.to_frame()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn encode_writes_the_bytes_of_to_frame() {
        let mut full = RpcMessage::json(
            MessageType::ApplicationMessage,
            FLAG_TERMINATE_STREAM,
            7,
            Some("aws.greengrass#X"),
            &b"{\"a\":1}"[..],
        );
        full.operation = Some("aws.greengrass#Op".into());
        full.version = Some("0.1.0".into());
        full.extra_headers
            .push(Header::new("x-custom", HeaderValue::Int64(9)));
        full.extra_headers.push(Header::new(
            "x-bytes",
            HeaderValue::ByteBuf(Bytes::from_static(b"\0\x01")),
        ));
        let bare = RpcMessage::new(MessageType::Ping, 0, 0);
        let limits = Limits::default();
        for m in [full.clone(), bare] {
            let mut direct = BytesMut::from(&b"prefix"[..]);
            m.encode(&limits, &mut direct).unwrap();
            let mut owned = BytesMut::from(&b"prefix"[..]);
            m.to_frame().encode(&limits, &mut owned).unwrap();
            assert_eq!(direct, owned);
        }
        // Same errors, and nothing written.
        let mut bad = full.clone();
        bad.extra_headers
            .push(Header::new("n".repeat(256), HeaderValue::Bool(true)));
        let mut out = BytesMut::new();
        assert_eq!(
            bad.encode(&limits, &mut out),
            bad.to_frame().encode(&limits, &mut BytesMut::new())
        );
        assert!(out.is_empty());
        let small = Limits::with_max_frame_size(40);
        assert_eq!(
            full.encode(&small, &mut out),
            full.to_frame().encode(&small, &mut BytesMut::new())
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_first_of_each_text_header_is_lifted_and_repeats_are_kept_as_extra() {
        let mut m = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            3,
            Some("aws.greengrass#X"),
            &b"{}"[..],
        );
        m.operation = Some("aws.greengrass#Op".into());
        m.version = Some("0.1.0".into());
        let mut frame = m.to_frame();
        let repeats = [
            (CONTENT_TYPE, "text/plain"),
            (MODEL_TYPE, "aws.greengrass#Y"),
            (OPERATION, "aws.greengrass#Other"),
            (VERSION, "9.9.9"),
        ];
        for (name, value) in repeats {
            frame
                .headers
                .push(Header::new(name, HeaderValue::String(value.into())));
        }
        let back = RpcMessage::from_frame(frame).unwrap();
        assert_eq!(back.content_type.as_deref(), Some(CONTENT_TYPE_JSON));
        assert_eq!(back.model_type.as_deref(), Some("aws.greengrass#X"));
        assert_eq!(back.operation.as_deref(), Some("aws.greengrass#Op"));
        assert_eq!(back.version.as_deref(), Some("0.1.0"));
        let extra: Vec<_> = back
            .extra_headers
            .iter()
            .map(|h| (&*h.name, h.value.as_str()))
            .collect();
        let expected: Vec<_> = repeats.iter().map(|(n, v)| (*n, Some(*v))).collect();
        assert_eq!(extra, expected);
    }

    #[test]
    fn missing_colon_header_is_a_protocol_error() {
        let mut frame = RpcMessage::new(MessageType::Ping, 0, 0).to_frame();
        frame.headers.retain(|h| h.name != STREAM_ID);
        assert_eq!(
            RpcMessage::from_frame(frame),
            Err(ProtocolError::MissingHeader { name: STREAM_ID })
        );
    }

    #[test]
    fn colon_header_of_another_type_counts_as_missing() {
        let mut frame = RpcMessage::new(MessageType::Ping, 0, 0).to_frame();
        for h in &mut frame.headers {
            if h.name == MESSAGE_FLAGS {
                h.value = HeaderValue::Int64(0);
            }
        }
        assert_eq!(
            RpcMessage::from_frame(frame),
            Err(ProtocolError::MissingHeader {
                name: MESSAGE_FLAGS
            })
        );
    }

    #[test]
    fn unknown_type_and_wrong_stream_are_rejected() {
        let mut frame = RpcMessage::new(MessageType::Ping, 0, 0).to_frame();
        for h in &mut frame.headers {
            if h.name == MESSAGE_TYPE {
                h.value = HeaderValue::Int32(8);
            }
        }
        assert_eq!(
            RpcMessage::from_frame(frame),
            Err(ProtocolError::UnknownMessageType { value: 8 })
        );
        let frame = RpcMessage::new(MessageType::ApplicationMessage, 0, 0).to_frame();
        assert!(matches!(
            RpcMessage::from_frame(frame),
            Err(ProtocolError::WrongStreamForType { .. })
        ));
        let frame = RpcMessage::new(MessageType::Ping, 0, 4).to_frame();
        assert!(matches!(
            RpcMessage::from_frame(frame),
            Err(ProtocolError::WrongStreamForType { .. })
        ));
    }

    #[test]
    fn error_payload_text_is_lenient() {
        assert_eq!(error_payload_text(br#"{"message":"bad"}"#), "bad");
        assert_eq!(
            error_payload_text(br#"{ "error": "Unrecognized Message Type" }"message": 1"#),
            r#"{ "error": "Unrecognized Message Type" }"message": 1"#
        );
    }
}
