//! The CONNECT / CONNECT_ACK handshake.

use super::{MessageType, ProtocolError, RpcMessage, FLAG_CONNECTION_ACCEPTED};

/// The only protocol version the nucleus accepts.
pub const PROTOCOL_VERSION: &str = "0.1.0";

/// The CONNECT message carrying `auth_token` (`{"authToken": …}`, properly JSON-escaped).
pub fn connect_message(auth_token: &str) -> RpcMessage {
    let mut m = RpcMessage::new(MessageType::Connect, 0, 0);
    m.version = Some(PROTOCOL_VERSION.into());
    m.payload = serde_json::json!({ "authToken": auth_token })
        .to_string()
        .into_bytes()
        .into();
    m
}

/// What the server's first message says about the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// CONNECT_ACK with the accepted flag.
    Accepted,
    /// CONNECT_ACK without the accepted flag.
    Rejected,
}

/// Interprets the first message the server sent after CONNECT.
///
/// # Errors
/// A [`ProtocolError`] when it is not a CONNECT_ACK (a PROTOCOL_ERROR or INTERNAL_ERROR is
/// reported with its text).
pub fn connect_ack(message: &RpcMessage) -> Result<ConnectOutcome, ProtocolError> {
    match message.message_type {
        MessageType::ConnectAck if message.flags & FLAG_CONNECTION_ACCEPTED != 0 => {
            Ok(ConnectOutcome::Accepted)
        }
        MessageType::ConnectAck => Ok(ConnectOutcome::Rejected),
        MessageType::ProtocolError => Err(ProtocolError::PeerProtocolError {
            message: super::error_payload_text(&message.payload),
        }),
        MessageType::InternalError => Err(ProtocolError::PeerInternalError {
            message: super::error_payload_text(&message.payload),
        }),
        other => Err(ProtocolError::UnexpectedMessage {
            message_type: other,
            context: "before CONNECT_ACK",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_json_escaped() {
        let m = connect_message("a\"b\\c");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["authToken"], "a\"b\\c");
        assert_eq!(m.version.as_deref(), Some("0.1.0"));
    }
}
