//! The connection: the only code that touches the socket. It imports nothing from the layers
//! above (the link, the client, subscriptions).
//!
//! * The **I/O thread** body ([`Established::run`], in [`reader`]) owns reading: it
//!   decodes frames, answers PING, and hands each stream message to the connection's
//!   [`Session`] (the pure routing rules, in `rpc::session`), then performs the action it
//!   returns: complete the call waiting for it, or push to the subscription's queue in
//!   [`dispatch`](crate::dispatch). It never runs user code and never waits on a handler.
//!   Who starts that thread is the link's business (`crate::link`).
//! * **Writes** happen on the calling thread, under the writer lock (see [`writer`]): the
//!   stream id is allocated, the stream opened in the session and the whole frame written
//!   under that one lock, so ids reach the wire in order. Lock order: writer, then
//!   routes; the routes lock is never held while taking the writer lock or doing I/O, nor
//!   while performing an action (pushing to a queue, sending a reply).

mod reader;
mod writer;

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::codec::FrameDecoder;
use crate::config::Config;
use crate::deadline::deadline_after;
use crate::dispatch::StreamQueue;
use crate::error::{stream_error, CloseReason, Error, Result, TimeoutKind};
use crate::rpc::session::{Action, Ending, Opened, Session, Unanswered};
use crate::rpc::{
    self, ConnectOutcome, MessageType, ProtocolError, RpcMessage, FLAG_TERMINATE_STREAM,
};
use writer::{WriteError, Writer};

/// How long a control write (TERMINATE) may wait when no caller deadline applies.
pub(crate) const CONTROL_WRITE_BUDGET: Duration = Duration::from_secs(1);

/// How long a caller whose deadline just passed waits for a reply the I/O thread has
/// already claimed (the hand-over never blocks; this only bounds the unexpected).
const REPLY_HANDOVER_BOUND: Duration = Duration::from_millis(100);

/// The per-stream state with this layer's handles: a caller waits on a channel for its
/// first reply; a subscription's later messages go to its queue.
type StreamSession = Session<Sender<RpcMessage>, Arc<StreamQueue>>;

struct Routes {
    session: StreamSession,
    closed: Option<CloseReason>,
}

/// One live connection: shared by the client handles, the subscriptions and the I/O thread.
pub(crate) struct Connection {
    writer: Mutex<Writer>,
    routes: Mutex<Routes>,
    /// A handle on the socket used only to shut it down (wakes the I/O thread).
    control: UnixStream,
    closing: AtomicBool,
    /// Reconnect is enabled: a lost connection interrupts subscriptions instead of
    /// ending them (the supervisor resumes or ends them).
    resumable: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

/// A connected, handshaken socket: the shared state plus what the I/O thread needs.
pub(crate) struct Established {
    connection: Arc<Connection>,
    read_half: UnixStream,
    decoder: FrameDecoder,
}

impl Established {
    /// The connection, for calls.
    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    /// The I/O thread's body: reads and routes until the socket closes or fails, then
    /// fails every call and ends every subscription with the reason.
    pub(crate) fn run(self) {
        reader::run(self.connection, self.read_half, self.decoder);
    }
}

/// A handle on a socket being connected, with which another thread can abort the
/// handshake (`close()` during a reconnect).
pub(crate) struct Abort(UnixStream);

impl Abort {
    /// Shuts the socket down: the handshake fails at once.
    pub(crate) fn abort(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Opens the socket and performs the CONNECT handshake with `token` within
/// `config.connect_timeout`. `on_open` gets an [`Abort`] handle as soon as the socket is
/// open (the reconnect supervisor keeps it so that `close()` can abort the handshake).
pub(crate) fn connect(
    config: &Config,
    token: &str,
    on_open: &dyn Fn(Abort),
) -> Result<Established> {
    let deadline = deadline_after(config.connect_timeout);
    let path = config.socket_path.clone();
    let socket = open_before(move || UnixStream::connect(path), deadline).map_err(|e| match e {
        OpenError::Timeout => Error::Timeout(TimeoutKind::Connect),
        OpenError::Io(e) => Error::from(io::Error::new(
            e.kind(),
            format!(
                "cannot connect to the IPC socket {}: {e}",
                config.socket_path.display()
            ),
        )),
    })?;
    on_open(Abort(socket.try_clone()?));
    let mut decoder = FrameDecoder::new(config.limits);
    let mut writer = Writer::new(socket.try_clone()?, config.limits);
    writer
        .send(&rpc::connect_message(token), deadline)
        .map_err(|e| match e {
            WriteError::Timeout => Error::Timeout(TimeoutKind::Handshake),
            WriteError::Io(e) if is_disconnect(&e) => rejected_by_close(),
            other => other.into_error(None),
        })?;
    let mut read_half = socket.try_clone()?;
    let ack = loop {
        if let Some(frame) = decoder.next_message()? {
            break RpcMessage::from_frame(frame)?;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout(TimeoutKind::Handshake));
        }
        read_half.set_read_timeout(Some(remaining))?;
        match decoder.read_from(&mut read_half) {
            Ok(0) => return Err(rejected_by_close()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Timeout(TimeoutKind::Handshake))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_disconnect(&e) => return Err(rejected_by_close()),
            Err(e) => return Err(e.into()),
        }
    };
    match rpc::connect_ack(&ack)? {
        ConnectOutcome::Accepted => {}
        ConnectOutcome::Rejected => {
            return Err(Error::ConnectRejected {
                detail:
                    "CONNECT_ACK without the accepted flag: the auth token (SVCUID) was refused"
                        .into(),
            })
        }
    }
    read_half.set_read_timeout(None)?;
    let connection = Arc::new(Connection {
        writer: Mutex::new(writer),
        routes: Mutex::new(Routes {
            session: Session::default(),
            closed: None,
        }),
        control: socket,
        closing: AtomicBool::new(false),
        resumable: config.reconnect.is_some(),
    });
    Ok(Established {
        connection,
        read_half,
        decoder,
    })
}

enum OpenError {
    Timeout,
    Io(io::Error),
}

/// Runs the blocking `connect` on a short-lived thread (`ggipc-connect`) and waits for it
/// until `deadline`. Opening a Unix socket normally returns at once, but the operating
/// system blocks it while the server's listen backlog is full, and the standard library
/// has no connect with a timeout (nor may this crate use `unsafe`). On a timeout the
/// thread is left to finish on its own: it ends, dropping the socket, as soon as the
/// server accepts, refuses or goes away.
fn open_before<F>(connect: F, deadline: Instant) -> Result<UnixStream, OpenError>
where
    F: FnOnce() -> io::Result<UnixStream> + Send + 'static,
{
    let (tx, rx) = bounded(1);
    thread::Builder::new()
        .name("ggipc-connect".into())
        .spawn(move || {
            let _ = tx.send(connect());
        })
        .map_err(OpenError::Io)?;
    match rx.recv_deadline(deadline) {
        Ok(result) => result.map_err(OpenError::Io),
        Err(_) => Err(OpenError::Timeout),
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

fn rejected_by_close() -> Error {
    Error::ConnectRejected {
        detail:
            "the server closed the socket without a CONNECT_ACK (how nucleus lite refuses a token)"
                .into(),
    }
}

impl Connection {
    /// Why the connection is closed, if it is.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.routes.lock().closed.clone()
    }

    /// Sends the first message of a new stream and waits for the first reply.
    ///
    /// For a streaming call, `queue` receives every later message; the stream stays open
    /// after a response without TERMINATE. Returns the stream id and the reply. The
    /// caller decides what becomes of `queue`: it must finish it when the reply ended the
    /// stream, and abandon it when the call fails.
    pub(crate) fn call(
        self: &Arc<Self>,
        operation: &str,
        model_type: &str,
        payload: Bytes,
        deadline: Instant,
        queue: Option<Arc<StreamQueue>>,
    ) -> Result<(i32, RpcMessage)> {
        let mut call = self.start(operation, model_type, payload, deadline, queue)?;
        let reply = call.wait(deadline)?;
        Ok((call.id, reply))
    }

    /// Sends the first message of a new stream and returns without waiting: the
    /// [`InFlight`] receives the first reply (see [`Connection::call`] for `queue`).
    /// Dropping it before the reply came abandons the stream.
    pub(crate) fn start(
        self: &Arc<Self>,
        operation: &str,
        model_type: &str,
        payload: Bytes,
        deadline: Instant,
        queue: Option<Arc<StreamQueue>>,
    ) -> Result<InFlight> {
        let (tx, rx) = bounded(1);
        let opened = match queue {
            None => Opened::Call(tx),
            Some(queue) => Opened::Subscription(tx, queue),
        };
        let mut message = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            0,
            Some(model_type),
            payload,
        );
        message.operation = Some(operation.to_owned());
        let id = self.open_stream(message, opened, deadline)?;
        log::debug!("{operation} on stream {id}");
        Ok(InFlight {
            connection: self.clone(),
            id,
            rx,
            settled: false,
        })
    }

    /// How many streams are open: calls waiting for their first reply and subscriptions.
    pub(crate) fn open_streams(&self) -> usize {
        self.routes.lock().session.len()
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.close_reason().unwrap_or(CloseReason::PeerClosed))
    }

    /// Allocates the next stream id, opens it in the session and writes `message` on it,
    /// all under the writer lock. An id is only consumed when its frame was written whole.
    fn open_stream(
        self: &Arc<Self>,
        mut message: RpcMessage,
        opened: Opened<Sender<RpcMessage>, Arc<StreamQueue>>,
        deadline: Instant,
    ) -> Result<i32> {
        let mut writer = self
            .writer
            .try_lock_until(deadline)
            .ok_or(Error::Timeout(TimeoutKind::Write))?;
        if writer.broken {
            return Err(self.closed_error());
        }
        let id = writer.next_stream_id;
        if id <= 0 {
            return Err(ProtocolError::StreamIdsExhausted.into());
        }
        message.stream_id = id;
        writer.encode(&message)?;
        if let Opened::Subscription(_, queue) = &opened {
            // What runs when the handler asks to close: end the stream from our side.
            let connection = Arc::downgrade(self);
            queue.set_close_request(Box::new(move || {
                if let Some(connection) = connection.upgrade() {
                    if let Err(e) = connection.end_stream(id, deadline_after(CONTROL_WRITE_BUDGET))
                    {
                        log::debug!("could not terminate stream {id}: {e}");
                    }
                }
            }));
        }
        {
            let mut routes = self.routes.lock();
            if let Some(reason) = &routes.closed {
                return Err(Error::Closed(reason.clone()));
            }
            routes.session.open(id, opened);
        }
        match writer.flush(deadline) {
            Ok(()) => {
                // i32::MAX + 1 wraps to a negative sentinel: ids are exhausted.
                writer.next_stream_id = id.wrapping_add(1);
                Ok(id)
            }
            Err(e) => {
                let broken = writer.broken;
                drop(writer);
                self.routes.lock().session.forget(id);
                Err(self.write_failed(e, broken))
            }
        }
    }

    /// The error for a failed write; a write that left the writer broken (part of a
    /// frame may be on the wire) closes the connection first.
    fn write_failed(&self, e: WriteError, broken: bool) -> Error {
        if broken {
            self.shutdown(e.close_reason());
        }
        e.into_error(self.close_reason())
    }

    /// Writes a control message (TERMINATE, PING_RESPONSE, PROTOCOL_ERROR) before
    /// `deadline`; a write that fails part-way closes the connection.
    ///
    /// # Errors
    /// [`Error::Timeout`] (`Write`) when the writer lock or the write misses `deadline`,
    /// [`Error::Closed`] when the connection is closed or the write closed it.
    pub(crate) fn send_control(&self, message: &RpcMessage, deadline: Instant) -> Result<()> {
        let mut writer = self
            .writer
            .try_lock_until(deadline)
            .ok_or(Error::Timeout(TimeoutKind::Write))?;
        if writer.broken || self.closing.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        writer.send(message, deadline).map_err(|e| {
            let broken = writer.broken;
            drop(writer);
            self.write_failed(e, broken)
        })
    }

    /// Ends a stream from the client side: forgets it and, if the server has not
    /// terminated it, sends TERMINATE. Idempotent; returns whether anything was sent.
    pub(crate) fn end_stream(&self, id: i32, deadline: Instant) -> Result<bool> {
        if !self.routes.lock().session.end(id) {
            return Ok(false);
        }
        self.send_control(&terminate(id), deadline).map(|()| true)
    }

    fn send_terminate(&self, id: i32, deadline: Instant) {
        if let Err(e) = self.send_control(&terminate(id), deadline) {
            log::debug!("could not terminate stream {id}: {e}");
        }
    }

    /// Closes the connection for `reason` (the first reason recorded wins) and wakes the
    /// I/O thread, which then fails every call and ends every subscription.
    pub(crate) fn shutdown(&self, reason: CloseReason) {
        {
            let mut routes = self.routes.lock();
            if routes.closed.is_none() {
                routes.closed = Some(reason);
            }
        }
        self.closing.store(true, Ordering::Release);
        let _ = self.control.shutdown(std::net::Shutdown::Both);
    }

    /// Fails every pending call and ends every subscription (the session chooses between
    /// interrupting and finishing each). Called by the I/O thread when it stops, and by
    /// `close()`; idempotent.
    pub(crate) fn fail_all(&self, observed: CloseReason) {
        let (reason, endings) = {
            let mut routes = self.routes.lock();
            let reason = routes.closed.get_or_insert(observed).clone();
            let by_user = reason == CloseReason::ByUser;
            let endings = routes.session.close(self.resumable, by_user);
            (reason, endings)
        };
        for ending in endings {
            match ending {
                // The caller sees the channel close and reports `closed_error()`.
                Ending::Caller(tx) => drop(tx),
                Ending::Interrupt(queue) => queue.interrupt(Error::Disconnected(reason.clone())),
                Ending::Finish { queue, with_error } => {
                    queue.finish(with_error.then(|| Error::Closed(reason.clone())));
                }
            }
        }
    }

    /// Routes one message received on a stream (≥ 1): the session decides, this performs
    /// its action outside the lock.
    fn route_stream_message(&self, message: RpcMessage) -> Result<(), ProtocolError> {
        let id = message.stream_id;
        let action = self.routes.lock().session.receive(message)?;
        match action {
            Action::Reply(tx, message) => {
                // The caller decides; for a subscription it may still fail the call (an
                // error, a response that does not decode) and then no callback runs.
                let _ = tx.send(message);
            }
            Action::Event(queue, message) => {
                queue.push_event(message);
            }
            Action::Error(queue, message) => queue.push_error(stream_error(&message)),
            Action::End {
                queue,
                last_event,
                error,
            } => {
                if let Some(event) = last_event {
                    queue.push_event(event);
                }
                queue.finish(error.as_ref().map(stream_error));
            }
            Action::Discard => {
                log::debug!("discarding a message on stream {id}, which is no longer open");
            }
        }
        Ok(())
    }
}

/// A stream whose first message is on the wire and whose first reply has not been taken
/// yet. Dropping it before that abandons the stream: the session forgets it (a late
/// reply is discarded), and a subscription the server may consider open is ended.
pub(crate) struct InFlight {
    connection: Arc<Connection>,
    id: i32,
    rx: Receiver<RpcMessage>,
    /// The reply was taken or the stream abandoned: nothing left to do on drop.
    settled: bool,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("stream_id", &self.id)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl InFlight {
    /// The stream id.
    pub(crate) fn id(&self) -> i32 {
        self.id
    }

    /// The channel the first reply arrives on (to wait on several streams together); it
    /// disconnects when the connection closes.
    pub(crate) fn receiver(&self) -> &Receiver<RpcMessage> {
        &self.rx
    }

    /// Waits for the first reply until `deadline`; then abandons the stream and reports
    /// a timeout (unless the reply was being handed over at that moment: then it is
    /// taken). Call once: afterwards the stream is settled.
    pub(crate) fn wait(&mut self, deadline: Instant) -> Result<RpcMessage> {
        let received = self.rx.recv_deadline(deadline);
        self.settled = true;
        match received {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => match self.abandon() {
                true => Err(Error::Timeout(TimeoutKind::Response)),
                // The deadline passed just as the I/O thread claimed the reply (it hands
                // it over without blocking): take it rather than report a timeout for a
                // call the server answered, or a subscription whose events already flow.
                false => match self.rx.recv_timeout(REPLY_HANDOVER_BOUND) {
                    Ok(reply) => Ok(reply),
                    Err(RecvTimeoutError::Timeout) => Err(Error::Timeout(TimeoutKind::Response)),
                    Err(RecvTimeoutError::Disconnected) => Err(self.connection.closed_error()),
                },
            },
            Err(RecvTimeoutError::Disconnected) => Err(self.connection.closed_error()),
        }
    }

    /// The first reply if it has come (or the close, if the connection closed), without
    /// waiting. After `Some` the stream is settled.
    pub(crate) fn try_take(&mut self) -> Option<Result<RpcMessage>> {
        let taken = match self.rx.try_recv() {
            Ok(reply) => Ok(reply),
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Err(self.connection.closed_error()),
        };
        self.settled = true;
        Some(taken)
    }

    /// Forgets the stream if its reply has not come; a subscription is ended on the
    /// server too. Returns `false` when the reply was already claimed.
    fn abandon(&mut self) -> bool {
        self.settled = true;
        let unanswered = self.connection.routes.lock().session.give_up(self.id);
        match unanswered {
            Some(Unanswered::Subscription) => {
                // The server may consider the subscription open: end it.
                self.connection
                    .send_terminate(self.id, Instant::now() + Duration::from_millis(200));
                true
            }
            Some(Unanswered::Call) => true,
            None => false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.settled {
            self.abandon();
        }
    }
}

/// The client's TERMINATE for stream `id`: an empty APPLICATION_MESSAGE with the flag.
pub(crate) fn terminate(id: i32) -> RpcMessage {
    RpcMessage::new(MessageType::ApplicationMessage, FLAG_TERMINATE_STREAM, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_a_socket_that_blocks_is_bounded_by_the_deadline() {
        let start = Instant::now();
        let result = open_before(
            || {
                thread::sleep(Duration::from_secs(3));
                Err(io::ErrorKind::ConnectionRefused.into())
            },
            Instant::now() + Duration::from_millis(100),
        );
        assert!(matches!(result, Err(OpenError::Timeout)));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn opening_errors_are_passed_through() {
        let result = open_before(
            || Err(io::ErrorKind::NotFound.into()),
            Instant::now() + Duration::from_secs(5),
        );
        assert!(matches!(result, Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound));
    }
}
