//! The I/O thread: reads frames, answers PING, routes everything else.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{CodecError, FrameDecoder};
use crate::error::CloseReason;
use crate::rpc::{self, MessageType, ProtocolError, RpcMessage};

use super::Connection;

/// How long the I/O thread may wait to answer a PING (its PING_RESPONSE is withdrawn
/// unsent if it is still queued behind other frames by then, and a group it writes is
/// bounded by this too, so a stalled writer cannot stall reading for long).
const PING_REPLY_BUDGET: Duration = Duration::from_millis(500);

/// Runs until the socket closes or fails, then fails every call and ends every
/// subscription with the reason.
pub(super) fn run(connection: Arc<Connection>, mut socket: UnixStream, mut decoder: FrameDecoder) {
    let reason = read_loop(&connection, &mut socket, &mut decoder);
    let reason = if connection.closing.load(Ordering::Acquire) {
        connection.close_reason().unwrap_or(CloseReason::ByUser)
    } else {
        reason
    };
    match &reason {
        CloseReason::ByUser => log::info!("IPC connection closed"),
        other => log::warn!("IPC connection lost: {other}"),
    }
    connection.shutdown(reason.clone());
    connection.fail_all(reason);
}

fn read_loop(
    connection: &Connection,
    socket: &mut UnixStream,
    decoder: &mut FrameDecoder,
) -> CloseReason {
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(frame)) => {
                    let result = RpcMessage::from_frame(frame).and_then(|m| handle(connection, m));
                    if let Err(e) = result {
                        send_protocol_error(connection, &e);
                        return CloseReason::Protocol(e);
                    }
                }
                Ok(None) => break,
                Err(e) => return CloseReason::Codec(e),
            }
        }
        // Closing: stop reading even if the socket still delivers (its shutdown failed,
        // or a reader that never ends); `run` reports the recorded reason.
        if connection.closing.load(Ordering::Acquire) {
            return CloseReason::ByUser;
        }
        match decoder.read_from(socket) {
            Ok(0) if decoder.buffered() > 0 => {
                return CloseReason::Codec(CodecError::Truncated {
                    buffered: decoder.buffered(),
                })
            }
            Ok(0) => return CloseReason::PeerClosed,
            Ok(_) => {}
            // (Guard → `false` not killed: no test can interrupt a read with a signal.)
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return CloseReason::from_io(&e),
        }
    }
}

fn handle(connection: &Connection, message: RpcMessage) -> Result<(), ProtocolError> {
    match message.message_type {
        MessageType::ApplicationMessage | MessageType::ApplicationError => {
            connection.route_stream_message(message)
        }
        MessageType::Ping => {
            let mut reply = RpcMessage::new(MessageType::PingResponse, 0, 0);
            reply.content_type = message.content_type;
            reply.extra_headers = message.extra_headers;
            reply.payload = message.payload;
            if let Err(e) = connection.send_control(reply, Instant::now() + PING_REPLY_BUDGET) {
                log::debug!("could not answer PING: {e}");
            }
            Ok(())
        }
        MessageType::PingResponse => Ok(()),
        MessageType::ProtocolError => Err(ProtocolError::PeerProtocolError {
            message: rpc::error_payload_text(&message.payload),
        }),
        MessageType::InternalError => Err(ProtocolError::PeerInternalError {
            message: rpc::error_payload_text(&message.payload),
        }),
        other => Err(ProtocolError::UnexpectedMessage {
            message_type: other,
            context: "after the handshake",
        }),
    }
}

/// Tells the server why we are closing, as the AWS C client does (best effort, short).
fn send_protocol_error(connection: &Connection, error: &ProtocolError) {
    if matches!(
        error,
        ProtocolError::PeerProtocolError { .. } | ProtocolError::PeerInternalError { .. }
    ) {
        return;
    }
    let mut m = RpcMessage::json(MessageType::ProtocolError, 0, 0, None::<&str>, Vec::new());
    m.payload = serde_json::json!({ "message": error.to_string() })
        .to_string()
        .into_bytes()
        .into();
    let _ = connection.send_control(m, Instant::now() + Duration::from_millis(100));
}
