//! Fault injection: makes the emulator misbehave on purpose, so that tests can prove how
//! a client survives a hostile or broken server.
//!
//! Inject with [`FaultsHandle::inject`](crate::emulator::FaultsHandle::inject) (every operation) or
//! [`FaultsHandle::inject_for`](crate::emulator::FaultsHandle::inject_for) (one operation); remove with
//! [`FaultsHandle::clear`](crate::emulator::FaultsHandle::clear). A fault stays active until
//! cleared, for every connection. [`Emulator::restart`](crate::emulator::Emulator::restart) (or
//! [`go_down`](crate::emulator::Emulator::go_down) then [`come_back`](crate::emulator::Emulator::come_back))
//! simulates a nucleus restart.
//!
//! The server side hooks are small and marked `fault injection hook` in `server.rs`:
//! the handshake, the request loop of `serve`, the reading of `serve`, and
//! `ServerConn::write`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conn::outbound::is_transient;
use super::conn::ServerConn;
use super::state::State;
use super::stores::faults::{Fault, Faults};
use crate::codec::{self, HeaderValue, Limits};
use crate::connection::WriteTimeout;
use crate::rpc::{MessageType, RpcMessage, FLAG_TERMINATE_STREAM, MESSAGE_TYPE};

/// How often a stalled emulator thread checks whether it may go on.
const POLL: Duration = Duration::from_millis(5);

/// What the handshake does with a CONNECT.
pub(crate) enum ConnectAction {
    /// Check the token as usual.
    Proceed,
    /// Refuse it.
    Reject,
    /// Never answer; the caller returns once the client or the emulator goes away.
    Ignored,
}

/// Hook of `handshake`: called with the CONNECT read.
pub(crate) fn on_connect(state: &State, socket: &UnixStream) -> ConnectAction {
    match state.faults.connect_fault() {
        Some(Fault::RejectConnect) => ConnectAction::Reject,
        Some(Fault::IgnoreConnect) => {
            log::info!("fault: ignoring a CONNECT");
            let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
            let mut read_half = socket;
            let mut sink = [0u8; 512];
            while !state.stopping.load(Ordering::Acquire)
                && !state.faults.listener_down.load(Ordering::Acquire)
            {
                match read_half.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(_) => break,
                }
            }
            ConnectAction::Ignored
        }
        _ => ConnectAction::Proceed,
    }
}

/// What `serve` does with one message after the fault hook.
pub(crate) enum Action {
    /// Serve it as usual.
    Serve,
    /// Serve it once this instant has passed ([`Fault::DelayReply`]; see [`delay`]).
    Delay(Instant),
    /// It was consumed by a fault; read on.
    Skip,
    /// Close the connection.
    Close,
}

/// Hook of `serve`: called for each message before it is handled. Only the first message
/// of a new stream (a request) is subject to faults; `last_stream` is advanced for a
/// request a fault consumes, so the stream-id rules still hold for the next one.
pub(crate) fn before_message(
    state: &State,
    conn: &Arc<ServerConn>,
    message: &RpcMessage,
    last_stream: &mut i32,
) -> Action {
    let id = message.stream_id;
    let Some(operation) = message.operation.as_deref() else {
        return Action::Serve;
    };
    if id <= *last_stream || Some(id) != last_stream.checked_add(1) {
        return Action::Serve;
    }
    let name = operation
        .strip_prefix("aws.greengrass#")
        .unwrap_or(operation);
    let Some(fault) = state.faults.for_request(name) else {
        return Action::Serve;
    };
    log::info!("fault {fault:?} on {name} (stream {id})");
    state.faults.hits.fetch_add(1, Ordering::Relaxed);
    if let Fault::DelayReply(delay) = fault {
        return Action::Delay(Instant::now() + delay);
    }
    *last_stream = id;
    let (bytes, close_after) = match fault {
        Fault::NoReply => return Action::Skip,
        Fault::CloseMidCall => {
            conn.kill();
            return Action::Close;
        }
        fault => match faulty_reply(fault, id, operation) {
            Some(reply) => reply,
            None => return Action::Serve,
        },
    };
    conn.write_raw(&bytes);
    if close_after {
        // `serve` writes what is queued (these bytes), then closes.
        return Action::Close;
    }
    Action::Skip
}

/// A reply frame to the request on stream `id`: a response ending the stream.
fn reply(stream_id: i32, model_type: Option<&str>, body: &'static [u8]) -> RpcMessage {
    RpcMessage::json(
        MessageType::ApplicationMessage,
        FLAG_TERMINATE_STREAM,
        stream_id,
        model_type.map(str::to_owned),
        Bytes::from_static(body),
    )
}

fn encode(m: &RpcMessage) -> Vec<u8> {
    m.to_frame()
        .to_bytes(&Limits::default())
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

/// A well-formed empty response on stream `id`, to be damaged.
fn good(id: i32, response_type: &str) -> Vec<u8> {
    encode(&reply(id, Some(response_type), b"{}"))
}

fn connection_error(message_type: MessageType, text: &str) -> RpcMessage {
    RpcMessage::json(
        message_type,
        0,
        0,
        None::<&str>,
        serde_json::json!({ "message": text })
            .to_string()
            .into_bytes(),
    )
}

/// A good reply whose `:message-type` is 42, which no message type has.
fn unknown_message_type(id: i32, response_type: &str) -> Vec<u8> {
    let mut frame = reply(id, Some(response_type), b"{}").to_frame();
    for h in &mut frame.headers {
        if h.name == MESSAGE_TYPE {
            h.value = HeaderValue::Int32(42);
        }
    }
    frame
        .to_bytes(&Limits::default())
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

/// The bytes a reply-damaging fault writes instead of the reply to `operation` on stream
/// `id`, and whether the connection closes after them; `None` for other faults.
fn faulty_reply(fault: Fault, id: i32, operation: &str) -> Option<(Vec<u8>, bool)> {
    let response_type = format!("{operation}Response");
    Some(match fault {
        Fault::BadPreludeCrc => {
            let mut b = good(id, &response_type);
            b[8] ^= 0xff;
            (b, false)
        }
        Fault::BadMessageCrc => {
            let mut b = good(id, &response_type);
            let last = b.len() - 1;
            b[last] ^= 0xff;
            (b, false)
        }
        Fault::HugeTotalLength => {
            let mut b = good(id, &response_type);
            b[..4].copy_from_slice(&u32::MAX.to_be_bytes());
            codec::reseal(&mut b);
            (b, false)
        }
        Fault::HeadersLengthBeyondFrame => {
            let mut b = good(id, &response_type);
            let total = u32::try_from(b.len()).unwrap_or(u32::MAX);
            b[4..8].copy_from_slice(&total.to_be_bytes());
            codec::reseal(&mut b);
            (b, false)
        }
        Fault::UnknownHeaderType => {
            let mut b = good(id, &response_type);
            // The first header starts at 12: name length, name, then the type byte.
            let type_at = 13 + usize::from(b[12]);
            b[type_at] = 12;
            codec::reseal(&mut b);
            (b, false)
        }
        Fault::TruncatedThenClose => {
            let mut b = good(id, &response_type);
            b.truncate(b.len() / 2);
            (b, true)
        }
        Fault::Garbage(bytes) => (bytes, false),
        Fault::ReplyOnUnopenedStream => (
            encode(&reply(id.saturating_add(1000), Some(&response_type), b"{}")),
            false,
        ),
        Fault::UnknownMessageType => (unknown_message_type(id, &response_type), false),
        Fault::ProtocolError(text) => (
            encode(&connection_error(MessageType::ProtocolError, &text)),
            true,
        ),
        Fault::InternalError(text) => (
            encode(&connection_error(MessageType::InternalError, &text)),
            true,
        ),
        Fault::InvalidJson => (
            encode(&reply(id, Some(&response_type), b"{\"not json")),
            false,
        ),
        Fault::NoModelType => (encode(&reply(id, None, b"{}")), false),
        Fault::NoReply
        | Fault::CloseMidCall
        | Fault::DelayReply(_)
        | Fault::RejectConnect
        | Fault::IgnoreConnect
        | Fault::Dribble
        | Fault::StopReading => return None,
    })
}

/// Sleeps until `until` ([`Action::Delay`]), or until the connection is killed or the
/// emulator stops.
pub(crate) fn delay(state: &State, conn: &ServerConn, until: Instant) {
    while Instant::now() < until && conn.is_alive() && !state.stopping.load(Ordering::Acquire) {
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Hook of `serve`, before each read: blocks while [`Fault::StopReading`] is active (until
/// it is cleared, the connection is killed or the emulator stops).
pub(crate) fn stall_reading(state: &State, conn: &ServerConn) {
    if !state.faults.has(&Fault::StopReading) {
        return;
    }
    log::info!("fault: not reading from {}", conn.component);
    while state.faults.has(&Fault::StopReading)
        && conn.is_alive()
        && !state.stopping.load(Ordering::Acquire)
    {
        std::thread::sleep(POLL);
    }
}

/// Hook of every write to a connection: writes `bytes` whole by `by` (one total
/// deadline), or one byte at a time under [`Fault::Dribble`] (each byte within
/// `write_timeout`); `timeout` is the socket's write timeout as last set.
pub(crate) fn write_frame(
    faults: &Faults,
    socket: &UnixStream,
    bytes: &[u8],
    by: Instant,
    write_timeout: Duration,
    timeout: &mut WriteTimeout,
) -> io::Result<()> {
    if !faults.has(&Fault::Dribble) {
        return crate::emulator::conn::outbound::write_all_by(socket, bytes, by, timeout);
    }
    let mut writer = socket;
    for byte in bytes {
        crate::emulator::conn::outbound::write_all_by(
            socket,
            std::slice::from_ref(byte),
            Instant::now() + write_timeout,
            timeout,
        )?;
        writer.flush()?;
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}
