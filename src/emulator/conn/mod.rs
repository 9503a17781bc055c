//! A client connection as the services see it: [`ServerConn`] (queue a reply, kill the
//! connection) and [`StreamRef`] (push an event to one open stream), over the
//! connection's bounded outbound queue (`outbound.rs`). The socket side (handshake,
//! reading requests, writing) is `server.rs`.

pub(crate) mod admission;
pub(crate) mod outbound;

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::codec::Limits;
use crate::emulator::common::flavor::Flavor;
use crate::rpc::{MessageType, RpcMessage, FLAG_TERMINATE_STREAM};
use outbound::Outbound;

/// What runs when a stream ends (client TERMINATE or connection close).
pub(crate) type Cleanup = Box<dyn FnOnce() + Send>;

/// One client connection, as the services see it.
pub(crate) struct ServerConn {
    pub(crate) id: u64,
    /// The component's name, shared with the records of its calls.
    pub(crate) component: Arc<str>,
    pub(crate) flavor: Flavor,
    pub(crate) limits: Limits,
    /// The socket (one descriptor): read by the connection's thread, written by whichever
    /// of its threads holds the outbound queue's write role, shut down by `kill`.
    pub(crate) socket: Arc<UnixStream>,
    /// Frames waiting to be written.
    pub(crate) outbound: Outbound,
    pub(crate) streams: Mutex<HashMap<i32, Cleanup>>,
    pub(crate) alive: AtomicBool,
}

impl ServerConn {
    pub(crate) fn encode(&self, message: &RpcMessage) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        match message.encode(&self.limits, &mut buf) {
            Ok(()) => Some(buf.freeze()),
            Err(e) => {
                log::warn!("cannot encode a frame for {}: {e}", self.component);
                None
            }
        }
    }

    /// Queues a reply (never dropped); false when the connection is gone or the reply
    /// cannot be encoded.
    pub(crate) fn write(&self, message: &RpcMessage) -> bool {
        if !self.alive.load(Ordering::Acquire) {
            return false;
        }
        match self.encode(message) {
            Some(frame) => self.outbound.push_reply(frame),
            None => false,
        }
    }

    /// Fault injection hook: queues raw bytes (a hostile frame); false when it failed.
    pub(crate) fn write_raw(&self, bytes: &[u8]) -> bool {
        if !self.alive.load(Ordering::Acquire) {
            return false;
        }
        self.outbound.push_reply(Bytes::copy_from_slice(bytes))
    }

    /// Whether the connection is still open.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Shuts the socket down at once (queued frames are discarded); the connection's
    /// threads then clean up.
    pub(crate) fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        self.outbound.close();
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    pub(crate) fn reply_flags(&self) -> i32 {
        match self.flavor {
            Flavor::Nucleus => FLAG_TERMINATE_STREAM,
            Flavor::Lite => 0,
        }
    }
}

/// A handle on one open stream, for pushing events to it.
#[derive(Clone)]
pub(crate) struct StreamRef {
    pub(crate) conn: Arc<ServerConn>,
    pub(crate) stream_id: i32,
}

impl StreamRef {
    /// Queues one event without blocking; false when the connection is gone, or the
    /// event was dropped because the connection's outbound queue is full (counted and
    /// logged, see `outbound.rs`).
    pub(crate) fn send_event(&self, model_type: &'static str, payload: Bytes) -> bool {
        self.event_frame(Cow::Borrowed(model_type), payload)
            .is_some_and(|frame| self.conn.outbound.push_event(frame))
    }

    /// As [`StreamRef::send_event`], but waits up to `within` for room in the
    /// connection's outbound queue before dropping the event: for the emulator's
    /// test-side calls (`Emulator::publish`, `Emulator::replies().push_event`), never for a
    /// component's call.
    pub(crate) fn send_event_waiting(
        &self,
        model_type: Cow<'static, str>,
        payload: Bytes,
        within: Duration,
    ) -> bool {
        self.event_frame(model_type, payload)
            .is_some_and(|frame| self.conn.outbound.push_event_waiting(frame, within))
    }

    /// The encoded event frame for this stream; `None` when the connection is gone (or the
    /// event cannot be encoded, which is logged).
    fn event_frame(&self, model_type: Cow<'static, str>, payload: Bytes) -> Option<Bytes> {
        if !self.conn.is_alive() {
            return None;
        }
        self.conn.encode(&RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            self.stream_id,
            Some(model_type),
            payload,
        ))
    }

    /// Whether both refer to the same stream of the same connection.
    pub(crate) fn same_stream(&self, other: &StreamRef) -> bool {
        self.conn.id == other.conn.id && self.stream_id == other.stream_id
    }
}
