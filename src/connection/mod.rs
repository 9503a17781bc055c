//! The connection: the only code that touches the socket. It imports nothing from the layers
//! above (the link, the client, subscriptions).
//!
//! * The **I/O thread** body ([`Established::run`], in [`reader`]) owns reading: it
//!   decodes frames, answers PING, and hands each stream message to the connection's
//!   [`Session`] (the pure routing rules, in `rpc::session`), then performs the action it
//!   returns: complete the call waiting for it, or push to the subscription's queue in
//!   [`dispatch`](crate::dispatch). It never runs user code and never waits on a handler.
//!   Who starts that thread is the link's business (`crate::link`).
//! * **Writes** happen on the calling threads, in groups (see [`outbox`]): a caller
//!   queues its frame; the thread that takes the write role writes every queued frame
//!   with one `write` and tells each waiting caller its outcome. That thread allocates
//!   the stream ids of the group's new streams in queue order, opens them in the session
//!   and writes the group, so ids reach the wire strictly increasing. Lock order: the
//!   outbox lock is taken alone (never while holding another lock, never across I/O);
//!   the write role, then routes; the routes lock is never held while doing I/O, nor
//!   while performing an action (pushing to a queue, sending a reply).

mod outbox;
mod reader;
mod reply;
mod writer;

// The emulator writes its frames with the same deadline bookkeeping.
#[cfg(feature = "emulator")]
pub(crate) use writer::WriteTimeout;

use std::borrow::Cow;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use parking_lot::{Condvar, Mutex};

use crate::codec::FrameDecoder;
use crate::config::Config;
use crate::deadline::deadline_after;
use crate::dispatch::StreamQueue;
use crate::error::{stream_error, CloseReason, Error, Result, TimeoutKind};
use crate::rpc::session::{Action, Ending, Opened, Session, Unanswered};
use crate::rpc::{
    self, ConnectOutcome, MessageType, ProtocolError, RpcMessage, FLAG_TERMINATE_STREAM,
};
use outbox::{Outbox, Outcome, Queued, Turn};
use reply::{Inbox, ReplyTo};
use writer::{WriteError, Writer};

/// How long a control write (TERMINATE) may wait when no caller deadline applies.
pub(crate) const CONTROL_WRITE_BUDGET: Duration = Duration::from_secs(1);

/// How long a caller whose deadline just passed waits for a reply the I/O thread has
/// already claimed (the hand-over never blocks; this only bounds the unexpected).
const REPLY_HANDOVER_BOUND: Duration = Duration::from_millis(100);

/// How long a caller whose frame is being written by another thread sleeps between
/// looks once its own deadline has passed (the write itself is bounded by the earliest
/// deadline of its group, so this only paces the looks).
const GROUP_WAIT_SLICE: Duration = Duration::from_millis(20);

/// How many groups a thread that took the write role writes at most, its own and those
/// queued while it was writing, before it hands the role on.
const WRITE_ON_GROUPS: u32 = 8;

/// How far past its own deadline a thread's call may be held by writing on others'
/// frames (each group's write is bounded by the group's earliest deadline): frames
/// queued at about the same time with the same timeout qualify; a group due much later
/// is handed on to its own thread.
const WRITE_ON_SLACK: Duration = Duration::from_millis(50);

/// How long after its own deadline a caller whose frame was taken by a writer still waits
/// for the outcome. The write is bounded by the earliest deadline of its group, so an
/// outcome later than this means the writer lost the frame (a bug): the call fails with
/// [`Error::Internal`] instead of waiting forever.
const LOST_FRAME_GRACE: Duration = Duration::from_secs(5);

/// The per-stream state with this layer's handles: a caller waits for its first reply
/// ([`ReplyTo`]); a subscription's later messages go to its queue.
type StreamSession = Session<ReplyTo, Arc<StreamQueue>>;

struct Routes {
    session: StreamSession,
    closed: Option<CloseReason>,
}

/// A frame queued for the write path.
enum Frame {
    /// The first message of a new stream: it gets its id when its group is written.
    Open {
        message: RpcMessage,
        opened: Opened<ReplyTo, Arc<StreamQueue>>,
    },
    /// TERMINATE, PING_RESPONSE, PROTOCOL_ERROR.
    Control(RpcMessage),
}

/// What [`Error::Internal`] says when the write path lost track of a frame.
const LOST_FRAME: &str =
    "the write queue lost track of this call's frame (it may or may not have been sent)";

/// A frame's outcome: the new stream's id (0 for a control frame).
type Sent = Result<i32>;

/// One live connection: shared by the client handles, the subscriptions and the I/O thread.
pub(crate) struct Connection {
    /// The frames waiting to be written and, while no thread is writing, the writer.
    outbox: Mutex<Outbox<Writer, Frame, Sent>>,
    routes: Mutex<Routes>,
    /// This connection, for the close hooks of its subscriptions.
    this: Weak<Connection>,
    /// A handle on the socket used only to shut it down (wakes the I/O thread).
    control: UnixStream,
    closing: AtomicBool,
    /// Reconnect is enabled: a lost connection interrupts subscriptions instead of
    /// ending them (the supervisor resumes or ends them).
    resumable: bool,
    /// How long a blocked caller watches for its reply before it sleeps
    /// ([`ClientBuilder::reply_spin`](crate::ClientBuilder::reply_spin)).
    reply_spin: Duration,
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
            // Not killed by a test (mutant: guard → `true`): a write on a connected Unix
            // socket fails only with a disconnect or a timeout, short of ENOMEM/ENOBUFS.
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
            // Not killed by a test (mutants: this guard → `true`/`false`, the next → `true`):
            // EINTR cannot be provoked, and a read here fails only with a timeout or a
            // disconnect (a reset is followed by EOF, so retrying it ends the same way).
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
    let connection = Connection::new(
        writer,
        socket,
        config.reconnect.is_some(),
        config.reply_spin,
    );
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
///
/// The result comes back through a mutex and condition variable rather than a channel of
/// its own type (each channel element type adds a copy of the channel code to a binary).
fn open_before<F>(connect: F, deadline: Instant) -> Result<UnixStream, OpenError>
where
    F: FnOnce() -> io::Result<UnixStream> + Send + 'static,
{
    #[derive(Default)]
    struct Slot {
        result: Mutex<Option<io::Result<UnixStream>>>,
        ready: Condvar,
    }
    let slot = Arc::new(Slot::default());
    let theirs = slot.clone();
    thread::Builder::new()
        .name("ggipc-connect".into())
        .spawn(move || {
            let result = connect();
            *theirs.result.lock() = Some(result);
            theirs.ready.notify_one();
        })
        .map_err(OpenError::Io)?;
    let mut result = slot.result.lock();
    if result.is_none() {
        // One wait: parking_lot's condition variable has no spurious wake-ups, and the
        // thread notifies only after storing its result (under the lock this holds until
        // the wait starts), so this returns with the result or at the deadline.
        slot.ready.wait_until(&mut result, deadline);
    }
    // On a timeout the thread keeps the slot: the socket it may still open is dropped
    // with the slot when the thread ends.
    match result.take() {
        Some(result) => result.map_err(OpenError::Io),
        None => Err(OpenError::Timeout),
    }
}

// Mutant `→ true` not killed: its callers have already taken the other errors a Unix
// socket gives there (timeouts, EINTR).
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
    /// A connection writing through `writer`; `control` is the socket it shuts down to
    /// close; `resumable` when a reconnect may resume its subscriptions; `reply_spin`
    /// how long a blocked caller watches for its reply before it sleeps.
    fn new(
        writer: Writer,
        control: UnixStream,
        resumable: bool,
        reply_spin: Duration,
    ) -> Arc<Connection> {
        Arc::new_cyclic(|this| Connection {
            outbox: Mutex::new(Outbox::new(writer)),
            routes: Mutex::new(Routes {
                session: Session::default(),
                closed: None,
            }),
            this: this.clone(),
            control,
            closing: AtomicBool::new(false),
            resumable,
            reply_spin,
        })
    }

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
        operation: Cow<'static, str>,
        model_type: Cow<'static, str>,
        payload: Bytes,
        deadline: Instant,
        queue: Option<Arc<StreamQueue>>,
    ) -> Result<(i32, RpcMessage)> {
        let mut call = self.begin(operation, model_type, payload, deadline, queue, true)?;
        let reply = call.wait(deadline)?;
        Ok((call.id, reply))
    }

    /// Sends the first message of a new stream and returns without waiting: the
    /// [`InFlight`] receives the first reply (see [`Connection::call`] for `queue`).
    /// Dropping it before the reply came abandons the stream.
    pub(crate) fn start(
        self: &Arc<Self>,
        operation: Cow<'static, str>,
        model_type: Cow<'static, str>,
        payload: Bytes,
        deadline: Instant,
        queue: Option<Arc<StreamQueue>>,
    ) -> Result<InFlight> {
        self.begin(operation, model_type, payload, deadline, queue, false)
    }

    /// [`Connection::start`]; `blocked`: the current thread will wait for the reply at
    /// once ([`Connection::call`]): it sleeps at most once, until the reply (after
    /// watching for it for the connection's `reply_spin`), instead of being woken when
    /// its frame is written and then again by the reply.
    fn begin(
        self: &Arc<Self>,
        operation: Cow<'static, str>,
        model_type: Cow<'static, str>,
        payload: Bytes,
        deadline: Instant,
        queue: Option<Arc<StreamQueue>>,
        blocked: bool,
    ) -> Result<InFlight> {
        let (reply_to, inbox) = match blocked {
            true => reply::blocked(),
            false => reply::channel(),
        };
        let opened = match queue {
            None => Opened::Call(reply_to),
            Some(queue) => Opened::Subscription(reply_to, queue),
        };
        let mut message = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            0,
            Some(model_type),
            payload,
        );
        // A clone of a borrowed name (every typed call) copies no text.
        message.operation = Some(operation.clone());
        let id = self.submit(Frame::Open { message, opened }, deadline, !blocked)?;
        log::debug!("{operation} on stream {id}");
        Ok(InFlight {
            connection: self.clone(),
            id,
            inbox,
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

    /// Writes a control message (TERMINATE, PING_RESPONSE, PROTOCOL_ERROR) before
    /// `deadline`; a write that fails part-way closes the connection.
    ///
    /// # Errors
    /// [`Error::Timeout`] (`Write`) when the frame is not on the wire by `deadline`
    /// (either nothing of it was sent, or its group went out part-way and the
    /// connection closes), [`Error::Closed`] when the connection is closed or a socket
    /// error closed it.
    pub(crate) fn send_control(&self, message: RpcMessage, deadline: Instant) -> Result<()> {
        self.submit(Frame::Control(message), deadline, true)
            .map(drop)
    }

    /// Queues `frame` and waits for its outcome: either another thread writes it with
    /// its own group, or this thread takes the write role and writes every queued frame.
    /// Bounded: a frame still queued at `deadline` is withdrawn (never sent) and the
    /// caller gets [`Error::Timeout`] (`Write`); a frame being written waits for its
    /// group, whose write ends by the earliest deadline in it.
    ///
    /// The first message of a new stream gets its stream id once it is on the wire: the
    /// id is allocated when the frame's group is written, and only kept when the group
    /// went out whole (see [`Connection::write_group`]). Without `notify` (a blocked
    /// caller, see [`ReplyTo`]) the thread that wrote the frame does not wake this one
    /// when it went out: its reply, or its deadline, does.
    fn submit(&self, frame: Frame, deadline: Instant, notify: bool) -> Sent {
        if self.closing.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        let me = thread::current();
        let mut wake: Vec<thread::Thread> = Vec::new();
        // A frame withdrawn unsent, dropped outside the lock (it may hold a queue).
        let mut withdrawn = None;
        let mut outbox = self.outbox.lock();
        let ticket = outbox.push(frame, deadline, me.clone(), notify);
        let sent = loop {
            let now = Instant::now();
            match outbox.poll(ticket, now) {
                Turn::Done(sent) => break sent,
                Turn::TimedOut { job, wake: next } => {
                    withdrawn = Some(job);
                    wake.extend(next);
                    break Err(Error::Timeout(TimeoutKind::Write));
                }
                Turn::Write(mut writer, mut group) => {
                    // Frames queued while a group was being written go next, written by
                    // this thread (up to WRITE_ON_GROUPS groups) rather than by a thread
                    // woken for it.
                    for groups in 1.. {
                        let (held, outcomes, requeue) =
                            parking_lot::MutexGuard::unlocked(&mut outbox, || {
                                self.write_group(writer, group)
                            });
                        // (Writing on is only faster: with `groups != WRITE_ON_GROUPS`,
                        // or `deadline - WRITE_ON_SLACK` below, groups are handed on as
                        // before: equivalent mutants; `ab.sh client` shows the cost.)
                        if !requeue.is_empty() || groups == WRITE_ON_GROUPS {
                            wake.extend(outbox.finish(held, outcomes, requeue, &me));
                            break;
                        }
                        let until = deadline + WRITE_ON_SLACK;
                        let (to_wake, more) = outbox.write_on(outcomes, &me, until);
                        wake.extend(to_wake);
                        match more {
                            Some(more) => (writer, group) = (held, more),
                            None => {
                                wake.extend(outbox.finish(held, Vec::new(), Vec::new(), &me));
                                break;
                            }
                        }
                    }
                }
                Turn::Lost => break Err(Error::Internal(LOST_FRAME)),
                Turn::Wait { queued } => {
                    // (`>` or `>=` here: the same; that mutant is equivalent.)
                    if !queued && now > deadline + LOST_FRAME_GRACE {
                        break Err(Error::Internal(LOST_FRAME));
                    }
                    let pause = match queued {
                        true => deadline.saturating_duration_since(now),
                        false => deadline
                            .saturating_duration_since(now)
                            .max(GROUP_WAIT_SLICE),
                    };
                    parking_lot::MutexGuard::unlocked(&mut outbox, || {
                        for thread in wake.drain(..) {
                            thread.unpark();
                        }
                        thread::park_timeout(pause);
                    });
                }
            }
        };
        drop(outbox);
        drop(withdrawn);
        for thread in wake {
            thread.unpark();
        }
        sent
    }

    /// Writes one group of frames (the holder of the write role, outside the outbox
    /// lock): allocates the ids of the new streams in order, opens them in the session,
    /// writes everything with one `write` bounded by the earliest deadline of the
    /// group, and returns the writer, each frame's outcome, and the frames to put back
    /// in front of the queue.
    ///
    /// * Written whole: every frame is sent, its ids are consumed.
    /// * Nothing written by the deadline: nothing of the group is on the wire, its ids
    ///   are free again and its streams withdrawn from the session; the frames whose
    ///   deadline passed fail with [`Error::Timeout`] (`Write`), the others go back to
    ///   the queue (to get their ids again in the next group). The connection stays.
    /// * A failure after part of the group went out: the writer is broken and the
    ///   connection closes (its reason from [`WriteError::close_reason`]); every frame of
    ///   the group fails with the same error.
    fn write_group(
        &self,
        mut writer: Writer,
        group: Vec<Queued<Frame>>,
    ) -> (Writer, Vec<Outcome<Sent>>, Vec<Queued<Frame>>) {
        struct Member {
            ticket: u64,
            waiter: thread::Thread,
            deadline: Instant,
            notify: bool,
            message: RpcMessage,
            /// The new stream's id, for an `Open` frame.
            id: Option<i32>,
        }
        let mut outcomes = Vec::with_capacity(group.len());
        // A failure always wakes its waiter; a frame sent only when it asked to be told.
        let done = |q: Member, result: Sent| Outcome {
            ticket: q.ticket,
            waiter: q.waiter,
            notify: q.notify || result.is_err(),
            result,
        };
        if writer.broken || self.closing.load(Ordering::Acquire) {
            let reason = self.close_reason().unwrap_or(CloseReason::PeerClosed);
            for q in group {
                outcomes.push(Outcome {
                    ticket: q.ticket,
                    waiter: q.waiter,
                    notify: true,
                    result: Err(Error::Closed(reason.clone())),
                });
            }
            return (writer, outcomes, Vec::new());
        }
        let now = Instant::now();
        writer.clear();
        let mut next_id = writer.next_stream_id;
        let mut members = Vec::with_capacity(group.len());
        let mut opens = Vec::new();
        for q in group {
            let (message, opened) = match q.job {
                Frame::Open { message, opened } => (message, Some(opened)),
                Frame::Control(message) => (message, None),
            };
            let mut member = Member {
                ticket: q.ticket,
                waiter: q.waiter,
                deadline: q.deadline,
                notify: q.notify,
                message,
                id: None,
            };
            if member.deadline <= now {
                outcomes.push(done(member, Err(Error::Timeout(TimeoutKind::Write))));
                continue;
            }
            if opened.is_some() {
                if next_id <= 0 {
                    let exhausted = ProtocolError::StreamIdsExhausted.into();
                    outcomes.push(done(member, Err(exhausted)));
                    continue;
                }
                member.message.stream_id = next_id;
            }
            if let Err(e) = writer.append(&member.message) {
                outcomes.push(done(member, Err(e)));
                continue;
            }
            if let Some(opened) = opened {
                let id = next_id;
                if let Opened::Subscription(_, queue) = &opened {
                    queue.set_close_request(self.close_hook(id));
                }
                member.id = Some(id);
                opens.push((id, opened));
                // i32::MAX + 1 wraps to a negative sentinel: ids are exhausted.
                next_id = id.wrapping_add(1);
            }
            members.push(member);
        }
        let Some(deadline) = members.iter().map(|m| m.deadline).min() else {
            return (writer, outcomes, Vec::new());
        };
        {
            let mut routes = self.routes.lock();
            if let Some(reason) = routes.closed.clone() {
                drop(routes);
                for m in members {
                    outcomes.push(done(m, Err(Error::Closed(reason.clone()))));
                }
                return (writer, outcomes, Vec::new());
            }
            for (id, opened) in opens {
                routes.session.open(id, opened);
            }
        }
        let mut requeue = Vec::new();
        match writer.flush(deadline) {
            Ok(()) => {
                writer.next_stream_id = next_id;
                for m in members {
                    let id = m.id.unwrap_or(0);
                    outcomes.push(done(m, Ok(id)));
                }
            }
            Err(WriteError::Timeout) if !writer.broken => {
                // Not a byte went out: the ids are free again (the counter was not
                // advanced) and the streams are taken back.
                let now = Instant::now();
                let mut routes = self.routes.lock();
                for m in members {
                    let opened = m.id.map(|id| routes.session.withdraw(id));
                    match opened {
                        // (Guard → `false` is equivalent: a late frame put back is withdrawn
                        // at once by its own thread, with the same Timeout(Write).)
                        _ if m.deadline <= now => {
                            outcomes.push(done(m, Err(Error::Timeout(TimeoutKind::Write))));
                        }
                        // Not waiting for its reply any more (a server answering an id
                        // it never saw): give up on it.
                        Some(None) => {
                            outcomes.push(done(m, Err(Error::Timeout(TimeoutKind::Write))));
                        }
                        Some(Some(opened)) => requeue.push(Queued {
                            ticket: m.ticket,
                            waiter: m.waiter,
                            deadline: m.deadline,
                            notify: m.notify,
                            job: Frame::Open {
                                message: m.message,
                                opened,
                            },
                        }),
                        None => requeue.push(Queued {
                            ticket: m.ticket,
                            waiter: m.waiter,
                            deadline: m.deadline,
                            notify: m.notify,
                            job: Frame::Control(m.message),
                        }),
                    }
                }
            }
            Err(e) => {
                {
                    let mut routes = self.routes.lock();
                    for id in members.iter().filter_map(|m| m.id) {
                        routes.session.forget(id);
                    }
                }
                if writer.broken {
                    self.shutdown(e.close_reason());
                }
                let reason = self.close_reason().unwrap_or_else(|| e.close_reason());
                for m in members {
                    outcomes.push(done(m, Err(e.group_error(&reason))));
                }
            }
        }
        (writer, outcomes, requeue)
    }

    /// What runs when the handler of the subscription on stream `id` asks to close: end
    /// the stream from our side.
    fn close_hook(&self, id: i32) -> crate::dispatch::CloseRequest {
        let connection = self.this.clone();
        Box::new(move || {
            if let Some(connection) = connection.upgrade() {
                if let Err(e) = connection.end_stream(id, deadline_after(CONTROL_WRITE_BUDGET)) {
                    log::debug!("could not terminate stream {id}: {e}");
                }
            }
        })
    }

    /// Ends a stream from the client side: forgets it and, if the server has not
    /// terminated it, sends TERMINATE. Idempotent; returns whether anything was sent.
    pub(crate) fn end_stream(&self, id: i32, deadline: Instant) -> Result<bool> {
        if !self.routes.lock().session.end(id) {
            return Ok(false);
        }
        self.send_control(terminate(id), deadline).map(|()| true)
    }

    fn send_terminate(&self, id: i32, deadline: Instant) {
        if let Err(e) = self.send_control(terminate(id), deadline) {
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
                Ending::Caller(reply_to) => drop(reply_to),
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
            Action::Reply(reply_to, message) => {
                // The caller decides; for a subscription it may still fail the call (an
                // error, a response that does not decode) and then no callback runs.
                reply_to.deliver(message);
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
    /// A channel for a started call; a slot for a call whose thread waits at once
    /// ([`Connection::call`]: the reply wakes it with `unpark`, see [`ReplyTo`]).
    inbox: Inbox,
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
    /// disconnects when the connection closes. `None` for a call started by
    /// [`Connection::call`], whose thread waits for it at once.
    pub(crate) fn receiver(&self) -> Option<&Receiver<RpcMessage>> {
        self.inbox.receiver()
    }

    /// Waits for the first reply until `deadline`; then abandons the stream and reports
    /// a timeout (unless the reply was being handed over at that moment: then it is
    /// taken). Call once: afterwards the stream is settled.
    pub(crate) fn wait(&mut self, deadline: Instant) -> Result<RpcMessage> {
        let received = self
            .inbox
            .recv_deadline(deadline, self.connection.reply_spin);
        self.settled = true;
        match received {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => match self.abandon() {
                true => Err(Error::Timeout(TimeoutKind::Response)),
                // The deadline passed just as the I/O thread claimed the reply (it hands
                // it over without blocking): take it rather than report a timeout for a
                // call the server answered, or a subscription whose events already flow.
                // (Mutant `+` → `-` below not killed: it needs the deadline to pass during
                // the hand-over itself, which no test can time.)
                false => match self
                    .inbox
                    .recv_deadline(Instant::now() + REPLY_HANDOVER_BOUND, Duration::ZERO)
                {
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
        let taken = match self.inbox.try_recv() {
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
    use crate::codec::Limits;
    use crossbeam_channel::bounded;

    /// A connection over one end of a socket pair (no handshake, no I/O thread); the
    /// other end plays the server.
    fn pair() -> (Arc<Connection>, UnixStream) {
        let (client, server) = UnixStream::pair().unwrap();
        let writer = Writer::new(client.try_clone().unwrap(), Limits::default());
        let connection = Connection::new(writer, client, false, Duration::ZERO);
        (connection, server)
    }

    /// This thread holds the write role (as a caller with a frame of its own would)
    /// until [`release`]: frames queued meanwhile wait behind it.
    struct Role {
        ticket: u64,
        writer: Writer,
        group: Vec<Queued<Frame>>,
    }

    fn hold(connection: &Connection) -> Role {
        let mut outbox = connection.outbox.lock();
        let far = Instant::now() + Duration::from_secs(60);
        let ping = Frame::Control(RpcMessage::new(MessageType::PingResponse, 0, 0));
        let ticket = outbox.push(ping, far, thread::current(), true);
        match outbox.poll(ticket, Instant::now()) {
            Turn::Write(writer, group) => Role {
                ticket,
                writer,
                group,
            },
            _ => panic!("the role is free"),
        }
    }

    /// Starts a PublishToTopic call with a 5 s deadline.
    fn start_publish(connection: &Arc<Connection>) -> InFlight {
        connection
            .start(
                "aws.greengrass#PublishToTopic".into(),
                "aws.greengrass#PublishToTopicRequest".into(),
                b"{}".to_vec().into(),
                Instant::now() + Duration::from_secs(5),
                None,
            )
            .unwrap()
    }

    /// An `Ok` outcome for each frame of `group`, as if written.
    fn sent_ok(group: Vec<Queued<Frame>>) -> Vec<Outcome<Sent>> {
        group
            .into_iter()
            .map(|q| Outcome {
                ticket: q.ticket,
                waiter: q.waiter,
                notify: q.notify,
                result: Ok(0),
            })
            .collect()
    }

    /// Hands the role back without writing the holder's own frame; the first queued
    /// frame's thread takes it.
    fn release(connection: &Connection, role: Role) {
        let me = thread::current();
        let outcomes = sent_ok(role.group);
        let wake = {
            let mut outbox = connection.outbox.lock();
            let wake = outbox.finish(role.writer, outcomes, Vec::new(), &me);
            assert!(matches!(
                outbox.poll(role.ticket, Instant::now()),
                Turn::Done(Ok(0))
            ));
            wake
        };
        for thread in wake {
            thread.unpark();
        }
    }

    fn wait_queued(connection: &Connection, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while connection.outbox.lock().queued() < n {
            assert!(Instant::now() < deadline, "{n} frames queued within 5 s");
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn writes(connection: &Connection) -> usize {
        connection
            .outbox
            .lock()
            .writer()
            .expect("the role is free")
            .writes
    }

    /// Starts a publish on another thread; its result (the stream id) arrives on the
    /// returned channel.
    fn publish(
        connection: &Arc<Connection>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Receiver<Result<i32>> {
        let (tx, rx) = bounded(1);
        let connection = connection.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            let started = connection.start(
                "aws.greengrass#PublishToTopic".into(),
                "aws.greengrass#PublishToTopicRequest".into(),
                body.into(),
                deadline,
                None,
            );
            // Nobody answers here: dropping the call forgets its stream.
            let _ = tx.send(started.map(|call| call.id()));
        });
        rx
    }

    fn result_of(rx: &Receiver<Result<i32>>) -> Result<i32> {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the caller returns within 10 s")
    }

    /// Reads `n` frames from the server's end, within a bound.
    fn read_frames(server: &mut UnixStream, n: usize) -> Vec<RpcMessage> {
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while frames.len() < n {
            assert!(Instant::now() < deadline, "{n} frames within 5 s");
            match decoder.next_message().unwrap() {
                Some(frame) => frames.push(RpcMessage::from_frame(frame).unwrap()),
                None => assert!(decoder.read_from(server).unwrap() > 0, "end of stream"),
            }
        }
        frames
    }

    #[test]
    fn frames_queued_behind_a_busy_writer_leave_in_one_write_with_consecutive_ids() {
        let (connection, mut server) = pair();
        let role = hold(&connection);
        // Deadlines far beyond `result_of`'s bound: each started call returns once its
        // frame is written (its writer wakes it), not at its deadline.
        let callers: Vec<_> = (0..8u8)
            .map(|i| {
                let rx = publish(&connection, vec![b'0' + i], Duration::from_secs(60));
                wait_queued(&connection, usize::from(i) + 1);
                rx
            })
            .collect();
        let before = role.writer.writes;
        release(&connection, role);
        let ids: Vec<i32> = callers.iter().map(|rx| result_of(rx).unwrap()).collect();
        // Queued in order 0..8, they got ids 1..=8 in that order, in one write.
        assert_eq!(ids, (1..=8).collect::<Vec<_>>());
        assert_eq!(writes(&connection), before + 1);
        let frames = read_frames(&mut server, 8);
        for (i, frame) in frames.iter().enumerate() {
            assert_eq!(frame.stream_id, i as i32 + 1);
            assert_eq!(frame.payload[..], [b'0' + i as u8]);
        }
        assert_eq!(
            connection.open_streams(),
            0,
            "every caller forgot its stream"
        );
        assert!(connection.close_reason().is_none());
    }

    #[test]
    fn a_group_that_times_out_part_way_fails_every_caller_in_it_and_closes_the_connection() {
        // The server reads nothing; the group (3 MiB) cannot fit in the socket buffer.
        let (connection, _server) = pair();
        let role = hold(&connection);
        let callers: Vec<_> = (0..3)
            .map(|i| {
                let rx = publish(&connection, vec![b'x'; 1 << 20], Duration::from_millis(600));
                wait_queued(&connection, i + 1);
                rx
            })
            .collect();
        release(&connection, role);
        for rx in &callers {
            let result = result_of(rx);
            assert!(
                matches!(result, Err(Error::Timeout(TimeoutKind::Write))),
                "{result:?}"
            );
        }
        assert_eq!(connection.close_reason(), Some(CloseReason::WriteTimeout));
        let after = result_of(&publish(&connection, vec![1], Duration::from_secs(1)));
        assert!(
            matches!(after, Err(Error::Closed(CloseReason::WriteTimeout))),
            "{after:?}"
        );
        assert_eq!(connection.open_streams(), 0);
    }

    #[test]
    fn a_group_that_wrote_nothing_by_a_deadline_fails_only_the_late_and_frees_their_ids() {
        let (connection, mut server) = pair();
        // Fill the socket buffer with small frames until one cannot go: a small frame
        // goes whole or not at all, so the buffer is full at a frame boundary. On another
        // thread, so that a write that ignores its deadline fails the test, not hangs it.
        let (filled_tx, filled) = bounded(1);
        let filler = connection.clone();
        thread::spawn(move || {
            let mut fillers = 0;
            loop {
                let pong = RpcMessage::new(MessageType::PingResponse, 0, 0);
                match filler.send_control(pong, Instant::now() + Duration::from_millis(20)) {
                    Ok(()) => fillers += 1,
                    Err(Error::Timeout(TimeoutKind::Write)) => break,
                    Err(e) => panic!("{e}"),
                }
                assert!(fillers < 1_000_000, "the socket buffer never filled");
            }
            let _ = filled_tx.send(fillers);
        });
        let fillers: usize = filled
            .recv_timeout(Duration::from_secs(10))
            .expect("the socket buffer fills within 10 s, every write bounded by its deadline");
        assert!(
            connection.close_reason().is_none(),
            "nothing went out part-way"
        );
        let role = hold(&connection);
        let late = publish(&connection, b"late".to_vec(), Duration::from_millis(300));
        wait_queued(&connection, 1);
        let patient = publish(&connection, b"patient".to_vec(), Duration::from_secs(10));
        wait_queued(&connection, 2);
        release(&connection, role);
        // The group {late, patient} is bounded by late's deadline and writes nothing.
        let result = result_of(&late);
        assert!(
            matches!(result, Err(Error::Timeout(TimeoutKind::Write))),
            "{result:?}"
        );
        assert!(connection.close_reason().is_none());
        // The server reads again: `patient` goes out on its own, with id 1.
        let frames = read_frames(&mut server, fillers + 1);
        assert_eq!(result_of(&patient).unwrap(), 1);
        let last = frames.last().unwrap();
        assert_eq!((last.stream_id, &last.payload[..]), (1, &b"patient"[..]));
        assert!(frames[..fillers]
            .iter()
            .all(|f| f.message_type == MessageType::PingResponse));
    }

    #[test]
    fn a_frame_taken_by_a_writer_that_never_hands_back_fails_after_a_bound() {
        let (connection, _server) = pair();
        let first = hold(&connection);
        let start = Instant::now();
        let caller = publish(&connection, b"lost".to_vec(), Duration::from_secs(1));
        wait_queued(&connection, 1);
        // Under one lock: the first holder hands the role back without waking the caller,
        // and a second writer takes the queued frame with its own and never finishes.
        let role = {
            let mut outbox = connection.outbox.lock();
            let me = thread::current();
            let outcomes = sent_ok(first.group);
            outbox.finish(first.writer, outcomes, Vec::new(), &me);
            assert!(matches!(
                outbox.poll(first.ticket, Instant::now()),
                Turn::Done(Ok(0))
            ));
            let far = Instant::now() + Duration::from_secs(60);
            let ping = Frame::Control(RpcMessage::new(MessageType::PingResponse, 0, 0));
            let ticket = outbox.push(ping, far, me, true);
            match outbox.poll(ticket, Instant::now()) {
                Turn::Write(writer, group) => (writer, group),
                _ => panic!("the role is free"),
            }
        };
        assert_eq!(role.1.len(), 2, "the caller's frame is in the group");
        let result = result_of(&caller);
        assert!(matches!(result, Err(Error::Internal(_))), "{result:?}");
        assert!(
            start.elapsed() >= LOST_FRAME_GRACE,
            "it waited out the grace after its deadline: {:?}",
            start.elapsed()
        );
        drop(role);
    }

    /// Connects (`on_open` as in [`connect`]) to a one-connection server on a fresh socket
    /// path of this process that hands the accepted socket to `serve`, and checks that the
    /// connection is rejected.
    fn assert_connect_rejected(
        name: &str,
        serve: impl FnOnce(UnixStream) + Send + 'static,
        on_open: &dyn Fn(Abort),
    ) {
        let path = std::env::temp_dir().join(format!("ggipc-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = thread::spawn(move || serve(listener.accept().unwrap().0));
        let config = crate::config::ClientBuilder::new()
            .socket_path(&path)
            .auth_token("t")
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let result = connect(&config, "t", on_open);
        server.join().unwrap();
        let _ = std::fs::remove_file(&path);
        match result {
            Err(Error::ConnectRejected { .. }) => {}
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("connected to a closed socket"),
        }
    }

    #[test]
    fn a_server_that_closes_before_the_connect_is_written_rejects_the_connection() {
        let (closed_tx, closed_rx) = bounded(1);
        let serve = move |socket: UnixStream| {
            drop(socket);
            let _ = closed_tx.send(());
        };
        // The socket is open; the CONNECT is written only once the server has closed.
        assert_connect_rejected("closes-before-connect", serve, &|_abort| {
            closed_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the server closes within 5 s");
        });
    }

    #[test]
    fn a_server_that_closes_with_the_connect_unread_rejects_the_connection() {
        let serve = |mut socket: UnixStream| {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            // One byte: the CONNECT arrived; the rest stays unread, so the close resets
            // the client's read (ECONNRESET) rather than ending it.
            io::Read::read_exact(&mut socket, &mut [0u8; 1]).unwrap();
        };
        assert_connect_rejected("closes-with-connect-unread", serve, &|_abort| {});
    }

    #[test]
    fn a_call_holds_its_stream_until_dropped_unanswered() {
        let (connection, _server) = pair();
        let call = start_publish(&connection);
        assert_eq!(call.id(), 1);
        assert_eq!(connection.open_streams(), 1);
        assert_eq!(
            format!("{call:?}"),
            "InFlight { stream_id: 1, settled: false, .. }"
        );
        drop(call);
        assert_eq!(connection.open_streams(), 0);
    }

    #[test]
    fn a_group_on_a_closed_connection_fails_closed_even_past_its_deadline() {
        let (connection, _server) = pair();
        let mut role = hold(&connection);
        connection.shutdown(CloseReason::ByUser);
        let deadline = Instant::now();
        thread::sleep(Duration::from_millis(2));
        role.group.push(Queued {
            ticket: role.ticket + 1,
            waiter: thread::current(),
            deadline,
            notify: true,
            job: Frame::Control(RpcMessage::new(MessageType::PingResponse, 0, 0)),
        });
        let (_writer, outcomes, requeue) = connection.write_group(role.writer, role.group);
        assert!(requeue.is_empty());
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            assert!(
                matches!(outcome.result, Err(Error::Closed(CloseReason::ByUser))),
                "{:?}",
                outcome.result
            );
        }
    }

    /// A blocking PublishToTopic call (10 s deadline) on another thread; its reply or
    /// error arrives on the returned channel.
    fn call_publish(connection: &Arc<Connection>) -> Receiver<Result<RpcMessage>> {
        let (tx, rx) = bounded(1);
        let connection = connection.clone();
        thread::spawn(move || {
            let called = connection.call(
                "aws.greengrass#PublishToTopic".into(),
                "aws.greengrass#PublishToTopicRequest".into(),
                b"{}".to_vec().into(),
                Instant::now() + Duration::from_secs(10),
                None,
            );
            let _ = tx.send(called.map(|(_, reply)| reply));
        });
        rx
    }

    fn wait_open_streams(connection: &Connection, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while connection.open_streams() < n {
            assert!(Instant::now() < deadline, "{n} streams open within 5 s");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_blocked_call_whose_frame_another_thread_wrote_is_woken_by_its_reply() {
        let (connection, mut server) = pair();
        let role = hold(&connection);
        // A started call queues first, so its thread takes the role and writes both.
        let started = publish(&connection, b"{}".to_vec(), Duration::from_secs(10));
        wait_queued(&connection, 1);
        let blocked = call_publish(&connection);
        wait_queued(&connection, 2);
        release(&connection, role);
        assert_eq!(result_of(&started).unwrap(), 1);
        let frames = read_frames(&mut server, 2);
        assert_eq!(frames[1].stream_id, 2, "the blocked call's frame went out");
        let reply = RpcMessage::json(
            MessageType::ApplicationMessage,
            FLAG_TERMINATE_STREAM,
            2,
            Some("aws.greengrass#PublishToTopicResponse"),
            Bytes::from_static(b"{}"),
        );
        connection.route_stream_message(reply).unwrap();
        let answered = blocked
            .recv_timeout(Duration::from_secs(2))
            .expect("the blocked caller returns within 2 s of its reply");
        assert_eq!(answered.unwrap().stream_id, 2);
    }

    #[test]
    fn a_blocked_call_fails_at_once_when_the_connection_closes() {
        let (connection, _server) = pair();
        let blocked = call_publish(&connection);
        wait_open_streams(&connection, 1);
        connection.fail_all(CloseReason::PeerClosed);
        // Not its 10 s deadline: dropping its route wakes the sleeping caller.
        let result = blocked
            .recv_timeout(Duration::from_secs(2))
            .expect("the blocked caller returns within 2 s of the close");
        assert!(
            matches!(result, Err(Error::Closed(CloseReason::PeerClosed))),
            "{result:?}"
        );
    }

    #[test]
    fn a_pending_call_fails_at_once_with_the_reason_the_connection_closed() {
        let (connection, _server) = pair();
        let mut call = start_publish(&connection);
        let mut polled = start_publish(&connection);
        assert!(polled.try_take().is_none(), "no reply yet");
        connection.fail_all(CloseReason::PeerClosed);
        assert_eq!(connection.open_streams(), 0);
        let taken = polled.try_take();
        assert!(
            matches!(taken, Some(Err(Error::Closed(CloseReason::PeerClosed)))),
            "{taken:?}"
        );
        // Not its 10 s deadline: the closed channel answers at once.
        let result = call.wait(Instant::now() + Duration::from_secs(10));
        assert!(
            matches!(result, Err(Error::Closed(CloseReason::PeerClosed))),
            "{result:?}"
        );
    }

    /// A subscription handler that does nothing (its queue's fate is what is looked at).
    struct Quiet;

    impl crate::dispatch::EventSink for Quiet {
        fn event(&mut self, _: RpcMessage) -> Option<crate::error::StreamEnd> {
            None
        }
        fn error(&mut self, _: Error) -> Option<crate::error::StreamEnd> {
            None
        }
        fn closed(&mut self, _: &crate::error::StreamEnd) {}
        fn dropped(&mut self, _: u64) {}
        fn interrupted(&mut self, _: &Error) {}
        fn resumed(&mut self) {}
    }

    #[test]
    fn an_open_subscription_ends_as_connection_lost_when_the_peer_closes() {
        let (connection, _server) = pair();
        let pool = crate::dispatch::Dispatcher::start(1, Duration::ZERO).unwrap();
        let queue = pool.queue(Box::new(Quiet), 16, 1 << 20, "test".into());
        let mut call = connection
            .start(
                "aws.greengrass#SubscribeToTopic".into(),
                "aws.greengrass#SubscribeToTopicRequest".into(),
                b"{}".to_vec().into(),
                Instant::now() + Duration::from_secs(5),
                Some(queue.clone()),
            )
            .unwrap();
        let response = RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            call.id(),
            Some("aws.greengrass#SubscribeToTopicResponse"),
            &b"{}"[..],
        );
        connection.route_stream_message(response).unwrap();
        call.wait(Instant::now() + Duration::from_secs(2)).unwrap();
        connection.fail_all(CloseReason::PeerClosed);
        let end = queue.fate().get();
        assert!(
            matches!(
                end,
                Some(crate::error::StreamEnd::ConnectionLost(Error::Closed(
                    CloseReason::PeerClosed
                )))
            ),
            "{end:?}"
        );
        pool.shutdown(Instant::now() + Duration::from_secs(2));
    }

    /// Runs the I/O thread's body until the server's end (`script`'s) is gone; returns
    /// the reason the connection closed.
    fn read_until_closed(script: impl FnOnce(&Connection, UnixStream)) -> Option<CloseReason> {
        let (client, server) = UnixStream::pair().unwrap();
        let writer = Writer::new(client.try_clone().unwrap(), Limits::default());
        let connection =
            Connection::new(writer, client.try_clone().unwrap(), false, Duration::ZERO);
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        script(&connection, server);
        // On its own thread, so that a reader that never stops fails the test.
        let (done_tx, done) = bounded(1);
        let reading = connection.clone();
        thread::spawn(move || {
            reader::run(reading, client, FrameDecoder::new(Limits::default()));
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(10))
            .expect("the reader stops within 10 s");
        connection.close_reason()
    }

    #[test]
    fn a_connection_marked_closing_stops_reading_though_its_socket_stays_open() {
        let started = Instant::now();
        let mut server = None;
        let reason = read_until_closed(|connection, open| {
            connection.closing.store(true, Ordering::Release);
            server = Some(open);
        });
        // Not the 5 s read timeout: the I/O thread looks before reading.
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(reason, Some(CloseReason::ByUser));
        drop(server);
    }

    #[test]
    fn the_server_closing_between_frames_is_a_peer_close() {
        let reason = read_until_closed(|_, server| drop(server));
        assert_eq!(reason, Some(CloseReason::PeerClosed));
    }

    #[test]
    fn the_server_closing_inside_a_frame_is_a_truncated_frame() {
        let reason = read_until_closed(|_, mut server| {
            io::Write::write_all(&mut server, &[0, 0, 0, 16, 0]).unwrap();
        });
        assert_eq!(
            reason,
            Some(CloseReason::Codec(crate::codec::CodecError::Truncated {
                buffered: 5
            }))
        );
    }

    #[test]
    fn the_server_closing_with_our_frame_unread_is_a_reset() {
        let reason = read_until_closed(|connection, server| {
            let pong = RpcMessage::new(MessageType::PingResponse, 0, 0);
            connection
                .send_control(pong, Instant::now() + Duration::from_secs(5))
                .unwrap();
            drop(server);
        });
        assert!(
            matches!(
                reason,
                Some(CloseReason::Io {
                    kind: io::ErrorKind::ConnectionReset,
                    ..
                })
            ),
            "{reason:?}"
        );
    }

    #[test]
    fn debug_shows_whether_the_connection_is_closing() {
        let (connection, _server) = pair();
        assert_eq!(
            format!("{connection:?}"),
            "Connection { closing: false, .. }"
        );
    }

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
