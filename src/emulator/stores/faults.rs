//! The faults injected into an emulator (see `FaultsHandle`); the hooks that act on them
//! are `fault.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// One way for the emulator to misbehave.
///
/// Faults named "answer" replace the reply to a request (of any operation, or of the
/// operation given to [`inject_for`](crate::emulator::FaultsHandle::inject_for)) with the hostile bytes;
/// the request itself is not served.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Serve each request only after this delay (the connection reads nothing meanwhile).
    DelayReply(Duration),
    /// Never answer a request (the stream stays open from the client's point of view).
    NoReply,
    /// Refuse each CONNECT: CONNECT_ACK without the accepted flag, then close.
    RejectConnect,
    /// Read each CONNECT and never answer it (the socket stays open).
    IgnoreConnect,
    /// Answer with a frame whose prelude CRC is wrong.
    BadPreludeCrc,
    /// Answer with a frame whose message CRC is wrong.
    BadMessageCrc,
    /// Answer with a prelude announcing a frame of 4 GiB − 1 (`0xFFFF_FFFF`) bytes, with a
    /// correct CRC, followed by a few bytes.
    HugeTotalLength,
    /// Answer with a frame whose headers length is larger than the frame (CRCs correct).
    HeadersLengthBeyondFrame,
    /// Answer with a frame holding a header of type 12 (CRCs correct).
    UnknownHeaderType,
    /// Answer with the first half of a valid frame, then close the connection.
    TruncatedThenClose,
    /// Answer with these raw bytes.
    Garbage(Vec<u8>),
    /// Answer on a stream id the client never opened (the request's id + 1000).
    ReplyOnUnopenedStream,
    /// Answer with a well-formed frame whose `:message-type` is 42.
    UnknownMessageType,
    /// Answer with a connection-level PROTOCOL_ERROR carrying this text, then close.
    ProtocolError(String),
    /// Answer with a connection-level INTERNAL_ERROR carrying this text, then close.
    InternalError(String),
    /// Answer with a response whose JSON body does not parse.
    InvalidJson,
    /// Answer with a response (`{}`) that carries no `service-model-type`.
    NoModelType,
    /// Write every frame one byte at a time (each byte its own `write`, with a short pause).
    Dribble,
    /// Stop reading the connection once the current request is served: the client's
    /// writes block once the socket buffers are full.
    StopReading,
    /// Close the connection instead of answering a request.
    CloseMidCall,
}

impl Fault {
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Fault::RejectConnect | Fault::IgnoreConnect)
    }
}

/// The faults of one emulator.
#[derive(Default)]
pub(crate) struct Faults {
    /// Active faults and the operation (short name) each is limited to.
    active: Mutex<Vec<(Option<String>, Fault)>>,
    /// Set by [`Emulator::go_down`](crate::emulator::Emulator::go_down): the accept loop exits.
    pub(crate) listener_down: AtomicBool,
    /// Requests and connections a fault acted on.
    pub(crate) hits: AtomicU64,
}

impl Faults {
    pub(crate) fn add(&self, operation: Option<&str>, fault: Fault) {
        self.active
            .lock()
            .push((operation.map(str::to_owned), fault));
    }

    pub(crate) fn clear(&self) {
        self.active.lock().clear();
    }

    pub(crate) fn has(&self, fault: &Fault) -> bool {
        self.active.lock().iter().any(|(_, f)| f == fault)
    }

    /// The first active request-level fault that applies to `operation` (short name).
    pub(crate) fn for_request(&self, operation: &str) -> Option<Fault> {
        self.active
            .lock()
            .iter()
            .find(|(op, f)| {
                !f.is_connect()
                    && !matches!(f, Fault::Dribble | Fault::StopReading)
                    && op.as_deref().map_or(true, |op| op == operation)
            })
            .map(|(_, f)| f.clone())
    }

    pub(crate) fn connect_fault(&self) -> Option<Fault> {
        let fault = self
            .active
            .lock()
            .iter()
            .find(|(_, f)| f.is_connect())
            .map(|(_, f)| f.clone());
        if fault.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }
}
