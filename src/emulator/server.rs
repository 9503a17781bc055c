//! The emulator's socket side: the handshake, reading requests and writing their replies,
//! the writer thread that writes stream events. Service semantics live in the area
//! modules.
//!
//! # Threads and memory per connection
//! Each connection has a reading thread (the handshake, then requests; the services run
//! on it; it writes its replies itself when it has served what it read) and, once
//! authenticated, a writer thread that writes the events queued while the reading thread
//! waits (see `outbound.rs` for the write role, the drop and deadline policy); one
//! descriptor.
//! Before the CONNECT is accepted, frames are limited to [`CONNECT_MAX_FRAME`] bytes and
//! the whole CONNECT must arrive within the handshake deadline. Memory per connection is
//! bounded by: the inbound frame buffer (at most the flavour's frame limit: 16 MiB for
//! the nucleus, 10,012 bytes for lite; 16 KiB before authentication), the outbound
//! queue (at most its byte bound plus one frame, since an event always fits an empty
//! queue and a reply is queued once the queue is below its bound), the frame being
//! written (one frame), the stream table (at most
//! `max_streams_per_connection` entries, each a few hundred bytes with its subscription), and two thread stacks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::Value;

use super::common::errors::service_error;
use super::common::flavor::Flavor;
use super::conn::outbound::{is_transient, write_all_by, Outbound};
use super::conn::{Cleanup, ServerConn, StreamRef};
use super::dispatch;
use super::fault;
use super::registry::{Body, Initial, Outcome, Register};
use super::state::{CallContext, Recorded, State};
use super::stores::faults::Faults;
use crate::codec::{FrameDecoder, Limits};
use crate::connection::WriteTimeout;
use crate::model::IpcError;
use crate::rpc::{self, MessageType, RpcMessage, FLAG_CONNECTION_ACCEPTED, FLAG_TERMINATE_STREAM};

/// The largest frame accepted before the CONNECT is (a CONNECT carries a few headers and
/// an auth token); the flavour's frame limit when smaller.
pub(crate) const CONNECT_MAX_FRAME: u32 = 16 * 1024;

/// A connection's slot; released when dropped (when its thread ends).
pub(crate) struct Slot {
    pub(crate) state: Arc<State>,
    pub(crate) id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.admission.release(self.id);
    }
}

/// Serves one accepted socket until it closes; `_slot` holds its place under the cap.
pub(crate) fn serve(state: Arc<State>, socket: Arc<UnixStream>, conn_id: u64, _slot: Slot) {
    let limits = state.flavor.limits();
    let inbound = state.flavor.inbound_limits();
    let connect_limits = Limits::with_max_frame_size(CONNECT_MAX_FRAME.min(inbound.max_frame_size));
    let mut decoder = FrameDecoder::new(connect_limits);
    let Some(component) = handshake(&state, &socket, &mut decoder, conn_id) else {
        let _ = socket.shutdown(std::net::Shutdown::Both);
        return;
    };
    state.admission.authenticated(conn_id);
    decoder.set_limits(inbound);
    let settings = state.settings;
    let conn = Arc::new(ServerConn {
        id: conn_id,
        outbound: Outbound::new(
            settings.queue_events,
            settings.queue_bytes,
            state.dropped_events.clone(),
            format!("{component} (connection #{conn_id})"),
        ),
        component: component.into(),
        flavor: state.flavor,
        limits,
        socket: socket.clone(),
        streams: Mutex::new(HashMap::new()),
        alive: AtomicBool::new(true),
    });
    let writer_conn = conn.clone();
    let faults = state.faults.clone();
    let writer = match std::thread::Builder::new()
        .name(format!("ggipc-emu-write-{conn_id}"))
        .spawn(move || write_loop(&writer_conn, &faults, settings.write_timeout))
    {
        Ok(w) => w,
        Err(e) => {
            log::warn!(
                "refused connection #{conn_id} of {}: cannot start its writer \
                 thread: {e}",
                conn.component
            );
            conn.kill();
            return;
        }
    };
    // Registered before the CONNECT_ACK: a client that is connected is counted.
    state.connections.lock().insert(conn_id, conn.clone());
    if state.stopping.load(Ordering::Acquire) {
        conn.kill();
    }
    if !conn.write(&RpcMessage::new(
        MessageType::ConnectAck,
        FLAG_CONNECTION_ACCEPTED,
        0,
    )) {
        conn.kill();
    }
    log::info!("{} connected (connection #{conn_id})", conn.component);
    read_requests(&state, &conn, &mut decoder, &socket);
    close_connection(&state, &conn, writer);
}

/// Reads and serves requests until the connection ends. Replies are written once every
/// request read so far is served, before the next read (or a wait under a fault).
fn read_requests(
    state: &Arc<State>,
    conn: &Arc<ServerConn>,
    decoder: &mut FrameDecoder,
    socket: &UnixStream,
) {
    conn.outbound.set_reader();
    let mut last_stream = 0i32;
    let write_timeout = state.settings.write_timeout;
    let write = writes_to(&state.faults, socket, write_timeout);
    let written = |result: io::Result<()>| match result {
        Ok(()) => conn.is_alive(),
        Err(e) => {
            write_failed(conn, &e, write_timeout);
            false
        }
    };
    'outer: loop {
        loop {
            let message = match decoder.next_message() {
                Ok(Some(frame)) => match RpcMessage::from_frame(frame) {
                    Ok(m) => m,
                    Err(e) => {
                        protocol_error(conn, &e.to_string());
                        break 'outer;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    log::info!("invalid frame from {}: {e}", conn.component);
                    break 'outer;
                }
            };
            // A client that does not read its replies is not served either: the queue
            // holds at most its byte bound plus one reply.
            if !written(conn.outbound.wait_for_room(write_timeout, write)) {
                break 'outer;
            }
            // Fault injection hook: a fault may consume the request, delay it or close.
            match fault::before_message(state, conn, &message, &mut last_stream) {
                fault::Action::Serve => {}
                fault::Action::Delay(until) => {
                    // The replies to the requests before it are not delayed.
                    if !written(conn.outbound.write_queued(write_timeout, write)) {
                        break 'outer;
                    }
                    fault::delay(state, conn, until);
                }
                fault::Action::Skip => continue,
                fault::Action::Close => break 'outer,
            }
            if !handle_message(state, conn, message, &mut last_stream) {
                break 'outer;
            }
        }
        if !written(conn.outbound.write_queued(write_timeout, write)) {
            break;
        }
        // Fault injection hook: `Fault::StopReading` stalls here.
        fault::stall_reading(state, conn);
        if !conn.is_alive() {
            break;
        }
        let read = match poll_for_requests(decoder, socket, state.settings.busy_poll) {
            Polled::Read(read) => read,
            Polled::Nothing => decoder.read_from(&mut &*socket),
            Polled::Failed(e) => {
                log::warn!(
                    "closing the connection of {}: its socket could not be switched \
                     between blocking and non-blocking reads: {e}",
                    conn.component
                );
                break;
            }
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// What [`poll_for_requests`] saw.
enum Polled {
    /// A read that did not find the socket empty: bytes, the end, or an error.
    Read(io::Result<usize>),
    /// Nothing arrived within the poll (or there is no poll).
    Nothing,
    /// The socket could not be switched between blocking and not.
    Failed(io::Error),
}

/// Reads the socket without blocking, again and again, for up to `poll`, yielding to
/// any thread ready to run between reads (see `EmulatorBuilder::busy_poll`). The socket
/// is blocking again when this returns, unless switching it back failed.
fn poll_for_requests(decoder: &mut FrameDecoder, socket: &UnixStream, poll: Duration) -> Polled {
    if poll.is_zero() {
        return Polled::Nothing;
    }
    if let Err(e) = socket.set_nonblocking(true) {
        return Polled::Failed(e);
    }
    let until = Instant::now() + poll;
    let polled = loop {
        match decoder.read_from(&mut &*socket) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= until {
                    break Polled::Nothing;
                }
                std::thread::yield_now();
            }
            read => break Polled::Read(read),
        }
    };
    match socket.set_nonblocking(false) {
        Ok(()) => polled,
        Err(e) => Polled::Failed(e),
    }
}

/// Ends a connection: flushes queued replies, joins the writer, cleans its streams up.
fn close_connection(state: &State, conn: &ServerConn, writer: std::thread::JoinHandle<()>) {
    let conn_id = conn.id;
    let settings = state.settings;
    // Replies already queued (a protocol error, a fault's last frame) still go out,
    // within the write deadline; queued events are discarded.
    conn.outbound.finish(settings.write_timeout);
    let _ = writer.join();
    conn.kill();
    state.connections.lock().remove(&conn_id);
    let cleanups: Vec<Cleanup> = conn.streams.lock().drain().map(|(_, c)| c).collect();
    for cleanup in cleanups {
        cleanup();
    }
    let dropped = conn.outbound.dropped();
    if dropped > 0 {
        log::info!(
            "{} disconnected (connection #{conn_id}); {dropped} events were dropped for it",
            conn.component
        );
    } else {
        log::info!("{} disconnected (connection #{conn_id})", conn.component);
    }
}

/// The writer thread: writes the frames queued while the reading thread waits (events),
/// each write within one total deadline.
fn write_loop(conn: &ServerConn, faults: &Faults, write_timeout: Duration) {
    let end = conn.outbound.drain(
        write_timeout,
        writes_to(faults, &conn.socket, write_timeout),
    );
    if let Some(e) = end {
        write_failed(conn, &e, write_timeout);
    }
}

/// How either of a connection's threads writes to its socket: one frame or several joined,
/// whole by its deadline, through the fault hook (`Fault::Dribble` writes byte by byte).
fn writes_to<'a>(
    faults: &'a Faults,
    socket: &'a UnixStream,
    write_timeout: Duration,
) -> impl Fn(&[u8], Instant, &mut WriteTimeout) -> io::Result<()> + Copy + 'a {
    move |bytes, by, timeout| fault::write_frame(faults, socket, bytes, by, write_timeout, timeout)
}

/// A write to the connection failed (on either of its threads): logs why, closes it.
fn write_failed(conn: &ServerConn, e: &io::Error, write_timeout: Duration) {
    if e.kind() == io::ErrorKind::TimedOut {
        log::warn!(
            "closing the connection of {} (#{}): a frame was not written \
             within the write deadline of {write_timeout:?} ({e})",
            conn.component,
            conn.id
        );
    } else if conn.is_alive() {
        log::info!(
            "dropping the connection of {} (#{}): {e}",
            conn.component,
            conn.id
        );
    }
    conn.kill();
}

fn handshake(
    state: &State,
    socket: &UnixStream,
    decoder: &mut FrameDecoder,
    conn_id: u64,
) -> Option<String> {
    let first = read_connect(state, socket, decoder, conn_id)?;
    let _ = socket.set_read_timeout(None);
    let reject = |why: &str| {
        log::info!("connection #{conn_id} refused: {why}");
        if state.flavor == Flavor::Nucleus {
            let ack = RpcMessage::new(MessageType::ConnectAck, 0, 0);
            let mut buf = BytesMut::new();
            if ack
                .to_frame()
                .encode(&state.flavor.limits(), &mut buf)
                .is_ok()
            {
                let by = Instant::now() + state.settings.write_timeout;
                let _ = write_all_by(socket, &buf, by, &mut WriteTimeout::default());
            }
        }
        None
    };
    if first.message_type != MessageType::Connect {
        return reject("the first message is not CONNECT");
    }
    // Fault injection hook: refuse or ignore the CONNECT.
    match fault::on_connect(state, socket) {
        fault::ConnectAction::Proceed => {}
        fault::ConnectAction::Reject => return reject("fault injected"),
        fault::ConnectAction::Ignored => return None,
    }
    let version_ok = match state.flavor {
        Flavor::Nucleus => first.version.as_deref() == Some(rpc::PROTOCOL_VERSION),
        Flavor::Lite => first
            .version
            .as_deref()
            .map_or(true, |v| v == rpc::PROTOCOL_VERSION),
    };
    if !version_ok {
        return reject("missing or unsupported :version");
    }
    let token = serde_json::from_slice::<Value>(&first.payload)
        .ok()
        .and_then(|v| {
            v.get("authToken")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let component = match token.as_deref() {
        None => return reject("the CONNECT carries no authToken"),
        Some("") => return reject("the authToken is empty (is SVCUID set but empty?)"),
        Some(t) => match state.component_for_token(t) {
            Some(c) => c,
            None => return reject("unknown authToken (not the SVCUID of a loaded component)"),
        },
    };
    if state.stopping.load(Ordering::Acquire) {
        return None;
    }
    // The CONNECT_ACK is written by `serve` once the connection is registered.
    Some(component)
}

/// Reads the first message of a connection within the handshake deadline.
fn read_connect(
    state: &State,
    socket: &UnixStream,
    decoder: &mut FrameDecoder,
    conn_id: u64,
) -> Option<RpcMessage> {
    let deadline = Instant::now() + state.settings.handshake_timeout;
    let refuse_frame = |e: &dyn std::fmt::Display| {
        log::warn!(
            "refused connection #{conn_id} before CONNECT: {e} (frames before \
             CONNECT are limited to {} bytes)",
            decoder_limit(state)
        );
    };
    loop {
        match decoder.next_message() {
            Ok(Some(frame)) => match RpcMessage::from_frame(frame) {
                Ok(m) => return Some(m),
                Err(e) => {
                    log::info!("refused connection #{conn_id}: invalid first message: {e}");
                    return None;
                }
            },
            Ok(None) => {}
            Err(e) => {
                refuse_frame(&e);
                return None;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::warn!(
                "refused connection #{conn_id}: no whole CONNECT within the \
                 handshake deadline of {:?} ({} bytes received)",
                state.settings.handshake_timeout,
                decoder.buffered()
            );
            return None;
        }
        if socket.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match decoder.read_from(&mut &*socket) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                refuse_frame(&e);
                return None;
            }
            Err(_) => return None,
        }
    }
}

fn decoder_limit(state: &State) -> u32 {
    CONNECT_MAX_FRAME.min(state.flavor.inbound_limits().max_frame_size)
}

fn protocol_error(conn: &ServerConn, text: &str) {
    let m = RpcMessage::json(
        MessageType::ProtocolError,
        0,
        0,
        None::<&str>,
        serde_json::json!({ "message": text })
            .to_string()
            .into_bytes(),
    );
    conn.write(&m);
}

/// Handles one message after the handshake; false = close the connection.
fn handle_message(
    state: &Arc<State>,
    conn: &Arc<ServerConn>,
    message: RpcMessage,
    last_stream: &mut i32,
) -> bool {
    match message.message_type {
        MessageType::Ping if state.flavor == Flavor::Lite => false,
        MessageType::Ping => {
            let mut reply = RpcMessage::new(MessageType::PingResponse, 0, 0);
            reply.extra_headers = message.extra_headers;
            reply.payload = message.payload;
            conn.write(&reply)
        }
        MessageType::PingResponse => true,
        MessageType::ApplicationMessage | MessageType::ApplicationError => {
            let id = message.stream_id;
            if id > *last_stream {
                if Some(id) != last_stream.checked_add(1) {
                    protocol_error(conn, "stream-id values must increase by exactly one");
                    return false;
                }
                *last_stream = id;
                let Some(operation) = message.operation.clone() else {
                    protocol_error(
                        conn,
                        "the first message of a stream must carry an operation",
                    );
                    return false;
                };
                if message.is_terminate() {
                    // The nucleus silently drops a first message that ends its stream.
                    return true;
                }
                handle_request(state, conn, id, &operation, &message.payload);
                true
            } else {
                if message.is_terminate() {
                    let cleanup = conn.streams.lock().remove(&id);
                    if let Some(cleanup) = cleanup {
                        cleanup();
                    }
                }
                true
            }
        }
        _ => {
            protocol_error(conn, "unexpected message type after the handshake");
            false
        }
    }
}

fn handle_request(
    state: &Arc<State>,
    conn: &Arc<ServerConn>,
    stream_id: i32,
    operation: &str,
    payload: &[u8],
) {
    let name = operation
        .strip_prefix("aws.greengrass#")
        .unwrap_or(operation);
    let body = Body::new(payload);
    let ctx = CallContext {
        state,
        component: &conn.component,
        resources: parking_lot::Mutex::new(Vec::new()),
    };
    let known = dispatch::lookup(name);
    let outcome = dispatch::handle(&ctx, name, known.map(|(_, run)| run), &body);
    let name: Cow<'static, str> = match known {
        Some((known, _)) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    };
    // Known by now unless the operation is unknown: no handler serves a body that is
    // not JSON (registry.rs `read`; the script and control paths check it too).
    if !body.is_json() {
        let call = CallLog::new(name, Vec::new());
        return reply_unparsable(state, conn, stream_id, &call);
    }
    // The resources only go into the call's log line: not gathered when it is not logged.
    let mut resources = Vec::new();
    if log::log_enabled!(log::Level::Info) {
        resources = std::mem::take(&mut *ctx.resources.lock());
        if resources.is_empty() {
            resources = request_resources(&body.value());
        }
    }
    let call = CallLog::new(name, resources);
    let Some(outcome) = outcome else {
        return reply_unsupported(state, conn, stream_id, operation, &call);
    };
    match outcome {
        Outcome::Response {
            model_type,
            payload,
        } => reply_response(state, conn, stream_id, &call, model_type, payload),
        Outcome::Error(e) => reply_error(state, conn, stream_id, &call, &e),
        Outcome::Subscribe {
            model_type,
            payload,
            register,
            initial,
        } => open_stream(
            state, conn, stream_id, &call, model_type, payload, register, initial,
        ),
    }
}

/// What the nucleus does with a body it cannot parse.
fn reply_unparsable(state: &State, conn: &ServerConn, stream_id: i32, call: &CallLog) {
    let mut m = RpcMessage::new(
        MessageType::ApplicationError,
        FLAG_TERMINATE_STREAM,
        stream_id,
    );
    m.content_type = Some("text/plain".into());
    m.payload = Bytes::from_static(b"InternalServerError");
    call.finish(state, conn, "error: unparsable request", None);
    conn.write(&m);
}

/// The nucleus' answer to an operation it does not know.
fn reply_unsupported(
    state: &State,
    conn: &ServerConn,
    stream_id: i32,
    operation: &str,
    call: &CallLog,
) {
    let body = serde_json::json!({
        "error": "Unsupported Operation",
        "message": format!("{operation} is an unsupported operation."),
    });
    let m = RpcMessage::json(
        MessageType::ApplicationError,
        FLAG_TERMINATE_STREAM,
        stream_id,
        None::<&str>,
        body.to_string().into_bytes(),
    );
    call.finish(state, conn, "error: unsupported operation", None);
    conn.write(&m);
}

fn reply_response(
    state: &State,
    conn: &ServerConn,
    stream_id: i32,
    call: &CallLog,
    model_type: Cow<'static, str>,
    payload: Bytes,
) {
    let m = RpcMessage::json(
        MessageType::ApplicationMessage,
        conn.reply_flags(),
        stream_id,
        Some(model_type),
        payload,
    );
    call.finish(state, conn, "ok", None);
    conn.write(&m);
}

fn reply_error(state: &State, conn: &ServerConn, stream_id: i32, call: &CallLog, e: &IpcError) {
    let outcome = format!("error: {}", e.model_type().unwrap_or("unmodeled"));
    let (model_type, body) = e.to_payload(conn.flavor == Flavor::Lite);
    let m = RpcMessage::json(
        MessageType::ApplicationError,
        FLAG_TERMINATE_STREAM,
        stream_id,
        model_type,
        body,
    );
    call.finish(state, conn, outcome, Some(e.message()));
    conn.write(&m);
}

/// Opens a stream: the initial response, the registration, then the initial events.
#[allow(clippy::too_many_arguments)]
fn open_stream(
    state: &State,
    conn: &Arc<ServerConn>,
    stream_id: i32,
    call: &CallLog,
    model_type: Cow<'static, str>,
    payload: Bytes,
    register: Register,
    initial: Option<Initial>,
) {
    let max_streams = state.settings.max_streams;
    if conn.streams.lock().len() >= max_streams {
        let e = service_error(&format!(
            "too many open streams on this connection (at most {max_streams})"
        ));
        log::warn!(
            "refused a stream of {} (connection #{}): {max_streams} \
             streams are open (max_streams_per_connection)",
            conn.component,
            conn.id
        );
        let (model_type, body) = e.to_payload(conn.flavor == Flavor::Lite);
        call.finish(
            state,
            conn,
            "error: aws.greengrass#ServiceError",
            Some("too many open streams"),
        );
        conn.write(&RpcMessage::json(
            MessageType::ApplicationError,
            FLAG_TERMINATE_STREAM,
            stream_id,
            model_type,
            body,
        ));
        return;
    }
    let m = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        stream_id,
        Some(model_type),
        payload,
    );
    // Recorded before the reply is queued: a test that has its reply sees the record.
    call.finish(state, conn, "ok: stream open", None);
    // Register, then queue the response, both under the outbound queue's lock: a
    // publisher that finds the new subscription waits for the lock, so no event
    // overtakes the response, and none published after the response is missed.
    let frame = conn.encode(&m);
    let mut queue = conn.outbound.lock();
    let cleanup = register(StreamRef {
        conn: conn.clone(),
        stream_id,
    });
    let queued =
        conn.is_alive() && frame.is_some_and(|f| conn.outbound.push_reply_locked(&mut queue, f));
    if !queued {
        // The connection is gone; its streams are cleaned up with it.
        drop(queue);
        cleanup();
    } else {
        conn.streams.lock().insert(stream_id, cleanup);
        for (event_type, event) in initial.map(|f| f()).unwrap_or_default() {
            let m = RpcMessage::json(
                MessageType::ApplicationMessage,
                0,
                stream_id,
                Some(event_type),
                event,
            );
            if let Some(f) = conn.encode(&m) {
                conn.outbound.push_reply_locked(&mut queue, f);
            }
        }
        drop(queue);
    }
}

/// One call as it is logged and recorded: the operation's short name and the resources it
/// was authorized against (or, when none were, the ones its request names).
struct CallLog {
    name: Cow<'static, str>,
    resources: Vec<String>,
}

impl CallLog {
    fn new(name: Cow<'static, str>, resources: Vec<String>) -> Self {
        CallLog { name, resources }
    }

    /// Logs the call at info (`<component> <Operation> [<resources>] -> <outcome>`, with the
    /// reason of an error, e.g. which policy a denial misses) and records it. Called before
    /// the reply is written, so a client that has its reply finds the call recorded.
    fn finish(
        &self,
        state: &State,
        conn: &ServerConn,
        outcome: impl Into<Cow<'static, str>>,
        reason: Option<&str>,
    ) {
        let (name, component, outcome) = (&self.name, &conn.component, outcome.into());
        if log::log_enabled!(log::Level::Info) {
            let resources = if self.resources.is_empty() {
                String::new()
            } else {
                format!(" {:?}", self.resources)
            };
            match reason {
                Some(reason) if !reason.is_empty() => {
                    log::info!("{component} {name}{resources} -> {outcome}: {reason}")
                }
                _ => log::info!("{component} {name}{resources} -> {outcome}"),
            }
        }
        state.record(Recorded {
            component: component.clone(),
            operation: name.clone(),
            outcome,
        });
    }
}

/// What a call is about when it was not authorized against resources: the request's
/// topic, secret, thing, shadow, component or configuration key, whichever it names.
fn request_resources(request: &Value) -> Vec<String> {
    const KEYS: [&str; 7] = [
        "topic",
        "topicName",
        "secretId",
        "thingName",
        "shadowName",
        "componentName",
        "deploymentId",
    ];
    let mut out: Vec<String> = KEYS
        .iter()
        .filter_map(|k| request.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if let Some(path) = request.get("keyPath").and_then(Value::as_array) {
        let path: Vec<&str> = path.iter().filter_map(Value::as_str).collect();
        out.push(path.join("."));
    }
    out.truncate(4);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::thread;

    use super::*;

    /// While a reading thread polls, the socket is non-blocking for every thread that
    /// writes to it: a write that would block is retried until it completes (by its
    /// deadline), not taken for a failure.
    #[test]
    fn a_write_that_would_block_while_the_reading_thread_polls_completes() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let writer_half = ours.try_clone().unwrap();
        // Written as the writer thread writes, a batch of up to 64 KiB at a time: each
        // `write` that starts while the socket is non-blocking and full would block.
        let batch = vec![7u8; 64 * 1024];
        let len = 64 * batch.len();
        let writer = thread::spawn(move || {
            let by = Instant::now() + Duration::from_secs(10);
            let mut timeout = WriteTimeout::default();
            (0..64).try_for_each(|_| write_all_by(&writer_half, &batch, by, &mut timeout))
        });
        // The peer reads slowly, so that the socket stays about full while it polls.
        let reader = thread::spawn(move || {
            let mut chunk = vec![0u8; 16 * 1024];
            let mut total = 0;
            while total < len {
                match peer.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
                thread::sleep(Duration::from_micros(500));
            }
            // Kept open: the polls below must not see the end of the stream.
            (total, peer)
        });
        let mut decoder = FrameDecoder::new(Limits::default());
        // Nothing arrives for the reading thread: the poll runs its whole time.
        for _ in 0..4 {
            match poll_for_requests(&mut decoder, &ours, Duration::from_millis(100)) {
                Polled::Nothing => {}
                Polled::Read(read) => panic!("read {read:?}"),
                Polled::Failed(e) => panic!("{e}"),
            }
        }
        writer
            .join()
            .unwrap()
            .expect("the write completes though the socket was non-blocking for a while");
        assert_eq!(reader.join().unwrap().0, len);
    }

    #[test]
    fn a_poll_ends_with_the_bytes_that_arrived_and_leaves_the_socket_blocking() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut decoder = FrameDecoder::new(Limits::default());
        assert!(matches!(
            poll_for_requests(&mut decoder, &ours, Duration::ZERO),
            Polled::Nothing
        ));
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            std::io::Write::write_all(&mut peer, &[1, 2, 3]).unwrap();
            peer
        });
        match poll_for_requests(&mut decoder, &ours, Duration::from_secs(5)) {
            Polled::Read(Ok(3)) => {}
            Polled::Read(other) => panic!("read {other:?}"),
            Polled::Nothing => panic!("nothing within 5 s"),
            Polled::Failed(e) => panic!("{e}"),
        }
        assert_eq!(decoder.buffered(), 3);
        let peer = sender.join().unwrap();
        // Blocking again: a read waits (here until the peer closes).
        let closer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(peer);
        });
        let started = Instant::now();
        assert_eq!(decoder.read_from(&mut &ours).unwrap(), 0);
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "did not block"
        );
        closer.join().unwrap();
    }
}
