//! The emulator's socket side: accepting, the handshake, reading requests, writing replies
//! and stream events. Service semantics live in the area modules.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::Value;

use super::fault::{self, Faults};
use super::{CallContext, CallRecord, Flavor, State};
use crate::codec::{FrameDecoder, Limits};
use crate::model::{IpcError, Shape};
use crate::rpc::{self, MessageType, RpcMessage, FLAG_CONNECTION_ACCEPTED, FLAG_TERMINATE_STREAM};

/// How long the emulator waits on a client that does not read before dropping it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What runs when a stream ends (client TERMINATE or connection close).
pub(crate) type Cleanup = Box<dyn FnOnce() + Send>;
/// Registers a new stream with its service once the response is on the wire.
pub(crate) type Register = Box<dyn FnOnce(StreamRef) -> Cleanup + Send>;
/// Events written right after a stream's registration, before any other event.
pub(crate) type Initial = Box<dyn FnOnce() -> Vec<(&'static str, Bytes)> + Send>;

/// What a service answers to one request.
pub(crate) enum Outcome {
    /// A response (for a streaming operation, the stream then stays open: see `Subscribe`).
    Response {
        model_type: &'static str,
        payload: Bytes,
    },
    /// A modeled (or unmodeled) error; ends the stream.
    Error(IpcError),
    /// The initial response of a streaming operation, and how to register the stream.
    Subscribe {
        model_type: &'static str,
        payload: Bytes,
        register: Register,
        initial: Option<Initial>,
    },
}

impl Outcome {
    /// A response carrying `shape`.
    pub(crate) fn response<T: Shape>(shape: &T) -> Outcome {
        match serde_json::to_vec(shape) {
            Ok(p) => Outcome::Response {
                model_type: T::MODEL_TYPE,
                payload: p.into(),
            },
            Err(e) => Outcome::Error(super::service_error(&format!(
                "cannot encode {}: {e}",
                T::MODEL_TYPE
            ))),
        }
    }

    /// A streaming response carrying `shape`; `register` is called with the stream once
    /// the response is written (and before any event can be written to it).
    pub(crate) fn subscribe<T: Shape>(
        shape: &T,
        register: impl FnOnce(StreamRef) -> Cleanup + Send + 'static,
    ) -> Outcome {
        match serde_json::to_vec(shape) {
            Ok(p) => Outcome::Subscribe {
                model_type: T::MODEL_TYPE,
                payload: p.into(),
                register: Box::new(register),
                initial: None,
            },
            Err(e) => Outcome::Error(super::service_error(&format!(
                "cannot encode {}: {e}",
                T::MODEL_TYPE
            ))),
        }
    }
}

impl Outcome {
    /// Events to write right after the stream is registered (a streaming outcome only).
    pub(crate) fn with_initial(
        self,
        initial: impl FnOnce() -> Vec<(&'static str, Bytes)> + Send + 'static,
    ) -> Outcome {
        match self {
            Outcome::Subscribe {
                model_type,
                payload,
                register,
                ..
            } => Outcome::Subscribe {
                model_type,
                payload,
                register,
                initial: Some(Box::new(initial)),
            },
            other => other,
        }
    }
}

/// One client connection, as the services see it.
pub(crate) struct ServerConn {
    pub(crate) id: u64,
    pub(crate) component: String,
    flavor: Flavor,
    limits: Limits,
    writer: Mutex<(UnixStream, BytesMut)>,
    /// A handle on the socket for shutting it down without the writer lock (a writer may
    /// hold it, blocked on a client that does not read).
    control: UnixStream,
    streams: Mutex<HashMap<i32, Cleanup>>,
    alive: AtomicBool,
    /// Fault injection hook: the emulator's faults (see fault.rs).
    faults: Arc<Faults>,
}

impl ServerConn {
    fn write(&self, message: &RpcMessage) -> bool {
        let mut guard = self.writer.lock();
        self.write_locked(&mut guard, message)
    }

    fn write_locked(&self, guard: &mut (UnixStream, BytesMut), message: &RpcMessage) -> bool {
        if !self.alive.load(Ordering::Acquire) {
            return false;
        }
        let (socket, buf) = guard;
        buf.clear();
        if let Err(e) = message.encode(&self.limits, buf) {
            log::warn!(
                "emulator: cannot encode a reply for {}: {e}",
                self.component
            );
            return false;
        }
        // Fault injection hook: `Fault::Dribble` writes byte by byte.
        match fault::write_frame(&self.faults, socket, buf) {
            Ok(()) => true,
            Err(e) => {
                log::info!(
                    "emulator: dropping the connection of {}: {e}",
                    self.component
                );
                self.kill();
                false
            }
        }
    }

    /// Fault injection hook: writes raw bytes (a hostile frame); false when it failed.
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> bool {
        let mut guard = self.writer.lock();
        if !self.alive.load(Ordering::Acquire) {
            return false;
        }
        guard.0.write_all(bytes).is_ok()
    }

    /// Whether the connection is still open.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Shuts the socket down; the connection's thread then cleans up.
    pub(crate) fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        let _ = self.control.shutdown(std::net::Shutdown::Both);
    }

    fn reply_flags(&self) -> i32 {
        match self.flavor {
            Flavor::Nucleus => FLAG_TERMINATE_STREAM,
            Flavor::Lite => 0,
        }
    }
}

/// A handle on one open stream, for pushing events to it.
#[derive(Clone)]
pub(crate) struct StreamRef {
    conn: Arc<ServerConn>,
    stream_id: i32,
}

impl StreamRef {
    /// Writes one event; false when the connection is gone.
    pub(crate) fn send_event(&self, model_type: &str, payload: Bytes) -> bool {
        let m = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            self.stream_id,
            Some(model_type),
            payload,
        );
        self.conn.write(&m)
    }

    /// Whether both refer to the same stream of the same connection.
    pub(crate) fn same_stream(&self, other: &StreamRef) -> bool {
        self.conn.id == other.conn.id && self.stream_id == other.stream_id
    }
}

/// Serves one accepted socket until it closes.
pub(crate) fn serve(state: Arc<State>, socket: UnixStream, conn_id: u64) {
    let limits = state.flavor.limits();
    let mut decoder = FrameDecoder::new(limits);
    let (mut read_half, control) = match (socket.try_clone(), socket.try_clone()) {
        (Ok(r), Ok(c)) => (r, c),
        _ => return,
    };
    let _ = socket.set_write_timeout(Some(WRITE_TIMEOUT));
    let Some(component) = handshake(&state, &socket, &mut read_half, &mut decoder) else {
        let _ = socket.shutdown(std::net::Shutdown::Both);
        return;
    };
    let conn = Arc::new(ServerConn {
        id: conn_id,
        component,
        flavor: state.flavor,
        limits,
        writer: Mutex::new((socket, BytesMut::with_capacity(4096))),
        control,
        streams: Mutex::new(HashMap::new()),
        alive: AtomicBool::new(true),
        faults: state.faults.clone(),
    });
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
    log::info!("emulator: {} connected", conn.component);
    let mut last_stream = 0i32;
    'outer: loop {
        loop {
            let message = match decoder.next_message() {
                Ok(Some(frame)) => match RpcMessage::from_frame(frame) {
                    Ok(m) => m,
                    Err(e) => {
                        protocol_error(&conn, &e.to_string());
                        break 'outer;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    log::info!("emulator: invalid frame from {}: {e}", conn.component);
                    break 'outer;
                }
            };
            // Fault injection hook: a fault may consume the request or close.
            match fault::before_message(&state, &conn, &message, &mut last_stream) {
                fault::Action::Serve => {}
                fault::Action::Skip => continue,
                fault::Action::Close => break 'outer,
            }
            if !handle_message(&state, &conn, message, &mut last_stream) {
                break 'outer;
            }
        }
        // Fault injection hook: `Fault::StopReading` stalls here.
        fault::stall_reading(&state, &conn);
        match decoder.read_from(&mut read_half) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    conn.kill();
    state.connections.lock().remove(&conn_id);
    let cleanups: Vec<Cleanup> = conn.streams.lock().drain().map(|(_, c)| c).collect();
    for cleanup in cleanups {
        cleanup();
    }
}

fn handshake(
    state: &State,
    socket: &UnixStream,
    read_half: &mut UnixStream,
    decoder: &mut FrameDecoder,
) -> Option<String> {
    let first = loop {
        match decoder.next_message() {
            Ok(Some(frame)) => break RpcMessage::from_frame(frame).ok()?,
            Ok(None) => {}
            Err(_) => return None,
        }
        match decoder.read_from(read_half) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    };
    let reject = |why: &str| {
        log::info!("emulator: connection refused: {why}");
        if state.flavor == Flavor::Nucleus {
            let ack = RpcMessage::new(MessageType::ConnectAck, 0, 0);
            let mut buf = BytesMut::new();
            if ack
                .to_frame()
                .encode(&state.flavor.limits(), &mut buf)
                .is_ok()
            {
                let _ = (&*socket).write_all(&buf);
            }
        }
        None
    };
    if first.message_type != MessageType::Connect {
        return reject("the first message is not CONNECT");
    }
    // Fault injection hook: refuse or ignore the CONNECT.
    match fault::on_connect(state, read_half) {
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
    let Some(component) = token.and_then(|t| state.component_for_token(&t)) else {
        return reject("unknown or missing authToken");
    };
    if state.stopping.load(Ordering::Acquire) {
        return None;
    }
    // The CONNECT_ACK is written by `serve` once the connection is registered.
    Some(component)
}

fn protocol_error(conn: &ServerConn, text: &str) {
    let m = RpcMessage::json(
        MessageType::ProtocolError,
        0,
        0,
        None,
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
    let request: Value = match serde_json::from_slice(crate::rpc::json_body(payload)) {
        Ok(v) => v,
        Err(_) => {
            // What the nucleus does with a body it cannot parse.
            let mut m = RpcMessage::new(
                MessageType::ApplicationError,
                FLAG_TERMINATE_STREAM,
                stream_id,
            );
            m.content_type = Some("text/plain".into());
            m.payload = Bytes::from_static(b"InternalServerError");
            conn.write(&m);
            state.record(CallRecord::new(
                &conn.component,
                name,
                "error: unparsable request",
            ));
            return;
        }
    };
    let ctx = CallContext {
        state,
        component: &conn.component,
    };
    let Some(outcome) = state.handle(&ctx, name, request) else {
        let body = serde_json::json!({
            "error": "Unsupported Operation",
            "message": format!("{operation} is an unsupported operation."),
        });
        let m = RpcMessage::json(
            MessageType::ApplicationError,
            FLAG_TERMINATE_STREAM,
            stream_id,
            None,
            body.to_string().into_bytes(),
        );
        conn.write(&m);
        state.record(CallRecord::new(
            &conn.component,
            name,
            "error: unsupported operation",
        ));
        return;
    };
    match outcome {
        Outcome::Response {
            model_type,
            payload,
        } => {
            let m = RpcMessage::json(
                MessageType::ApplicationMessage,
                conn.reply_flags(),
                stream_id,
                Some(model_type),
                payload,
            );
            conn.write(&m);
            state.record(CallRecord::new(&conn.component, name, "ok"));
        }
        Outcome::Error(e) => {
            let outcome = format!("error: {}", e.model_type().unwrap_or("unmodeled"));
            let (model_type, body) = e.to_payload(conn.flavor == Flavor::Lite);
            let m = RpcMessage::json(
                MessageType::ApplicationError,
                FLAG_TERMINATE_STREAM,
                stream_id,
                model_type.as_deref(),
                body,
            );
            conn.write(&m);
            state.record(CallRecord::new(&conn.component, name, &outcome));
        }
        Outcome::Subscribe {
            model_type,
            payload,
            register,
            initial,
        } => {
            let m = RpcMessage::json(
                MessageType::ApplicationMessage,
                0,
                stream_id,
                Some(model_type),
                payload,
            );
            // Register, then write the response, both under the writer lock: a publisher
            // that finds the new subscription waits for the lock, so no event overtakes
            // the response, and none published after the response is missed.
            let mut guard = conn.writer.lock();
            let cleanup = register(StreamRef {
                conn: conn.clone(),
                stream_id,
            });
            if !conn.write_locked(&mut guard, &m) {
                // The connection is gone; its streams are cleaned up with it.
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
                    conn.write_locked(&mut guard, &m);
                }
            }
            drop(guard);
            state.record(CallRecord::new(&conn.component, name, "ok: stream open"));
        }
    }
}
