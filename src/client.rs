//! The public blocking client.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::config::{deadline_after, CallOptions, ClientBuilder, Config};
use crate::connection::reconnect::{self, Notice};
use crate::connection::{self, reader, Connection, Established};
use crate::dispatch::Dispatcher;
use crate::error::{CloseReason, Error, Result, TimeoutKind};
use crate::model::{Operation, Shape, StreamingOperation};
use crate::rpc::MessageType;
use crate::subscription::{
    decode_reply, Binding, Resubscribe, StreamHandler, SubEntry, Subscription, TypedSink,
};

/// A connection to the Greengrass IPC service.
///
/// `Client` is a cheap handle (`Clone`, `Send`, `Sync`): clone it into every thread that
/// makes calls. Every method blocks the calling thread until the answer arrives or its
/// deadline passes. The connection closes when [`close`](Client::close) is called or the
/// last handle is dropped; both return within the configured shutdown timeout, also from
/// inside a subscription handler. With [`ClientBuilder::reconnect`] the client survives a
/// lost connection (see there).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Owned by the user's handles only: dropping the last one closes the client.
struct Inner {
    core: Arc<Core>,
}

/// A running I/O thread and the channel it signals its end on.
pub(crate) struct IoThread {
    id: ThreadId,
    handle: JoinHandle<()>,
    done: Receiver<()>,
}

impl IoThread {
    /// Joins the thread if it ends before `deadline` (never the current thread).
    fn join_until(self, deadline: Instant) {
        if self.id != thread::current().id() && self.done.recv_deadline(deadline).is_ok() {
            let _ = self.handle.join();
        }
    }
}

/// The current connection.
pub(crate) struct Slot {
    pub(crate) connection: Arc<Connection>,
    io: Option<IoThread>,
    /// Reconnecting gave up for this reason: the client stays closed.
    gave_up: bool,
}

/// The client's state, shared by the handles, the subscriptions and the reconnect
/// supervisor.
pub(crate) struct Core {
    pub(crate) config: Config,
    dispatcher: Dispatcher,
    pub(crate) slot: Mutex<Slot>,
    /// Signalled when the slot gets a new connection, the client closes or gives up.
    changed: Condvar,
    /// Live subscriptions (for re-subscribing and for ending them at close).
    subs: Mutex<HashMap<u64, Arc<SubEntry>>>,
    next_sub: AtomicU64,
    closed: AtomicBool,
    /// The socket of a reconnect attempt under way, so that `close()` can abort it.
    pub(crate) connecting: Mutex<Option<UnixStream>>,
    /// Tells the supervisor about lost connections and new subscriptions to resume.
    notices: Option<Sender<Notice>>,
    supervisor: Mutex<Option<IoThread>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket_path", &self.inner.core.config.socket_path)
            .field("closed", &self.close_reason())
            .field("reconnect", &self.inner.core.config.reconnect)
            .finish_non_exhaustive()
    }
}

/// Starts the I/O thread of `established`; it tells the supervisor (if any) when it ends.
pub(crate) fn spawn_io(
    established: Established,
    notices: Option<Sender<Notice>>,
) -> std::io::Result<IoThread> {
    let (done_tx, done) = bounded(1);
    let connection = established.connection;
    let handle = thread::Builder::new()
        .name("ggipc-io".into())
        .spawn(move || {
            reader::run(connection, established.read_half, established.decoder);
            let _ = done_tx.send(());
            if let Some(notices) = notices {
                let _ = notices.send(Notice::Lost);
            }
        })?;
    Ok(IoThread {
        id: handle.thread().id(),
        handle,
        done,
    })
}

impl Client {
    /// Connects as a Greengrass component: the socket path comes from
    /// `AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT` and the token from `SVCUID`,
    /// with every other setting at its default. Use [`Client::builder`] to change them.
    ///
    /// # Errors
    /// [`Error::MissingEnvVar`] naming the variable that is not set, [`Error::Io`] when
    /// the socket cannot be opened, [`Error::ConnectRejected`] when the token is refused,
    /// [`Error::Timeout`] when the server does not answer the handshake.
    pub fn connect() -> Result<Client> {
        ClientBuilder::new().connect()
    }

    /// A builder for explicit settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    pub(crate) fn connect_with(config: Config) -> Result<Client> {
        let established = connection::connect(&config, &config.auth_token, &|_| {})?;
        let connection = established.connection.clone();
        let dispatcher = match Dispatcher::start(config.handler_threads) {
            Ok(d) => d,
            Err(e) => {
                connection.shutdown(CloseReason::ByUser);
                return Err(e.into());
            }
        };
        let (notices, notices_rx) = match config.reconnect {
            Some(_) => {
                let (tx, rx) = crossbeam_channel::unbounded();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let io = match spawn_io(established, notices.clone()) {
            Ok(io) => io,
            Err(e) => {
                connection.shutdown(CloseReason::ByUser);
                dispatcher.shutdown(deadline_after(config.shutdown_timeout));
                return Err(e.into());
            }
        };
        log::info!(
            "connected to the IPC socket {}",
            config.socket_path.display()
        );
        let core = Arc::new(Core {
            config,
            dispatcher,
            slot: Mutex::new(Slot {
                connection,
                io: Some(io),
                gave_up: false,
            }),
            changed: Condvar::new(),
            subs: Mutex::new(HashMap::new()),
            next_sub: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            connecting: Mutex::new(None),
            notices,
            supervisor: Mutex::new(None),
        });
        if let Some(rx) = notices_rx {
            let (done_tx, done) = bounded(1);
            let supervisor_core = core.clone();
            let spawned = thread::Builder::new()
                .name("ggipc-reconnect".into())
                .spawn(move || {
                    reconnect::run(&supervisor_core, &rx);
                    let _ = done_tx.send(());
                });
            match spawned {
                Ok(handle) => {
                    *core.supervisor.lock() = Some(IoThread {
                        id: handle.thread().id(),
                        handle,
                        done,
                    })
                }
                Err(e) => {
                    core.shutdown();
                    return Err(e.into());
                }
            }
        }
        Ok(Client {
            inner: Arc::new(Inner { core }),
        })
    }

    /// Calls a request/response operation by its model type: the generic form behind
    /// every typed method.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ggipc::Error> {
    /// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
    /// let client = ggipc::Client::connect()?;
    /// let request = PublishToTopicRequest::json("my/topic", serde_json::json!({"on": true}));
    /// client.call::<PublishToTopic>(&request, ggipc::CallOptions::default())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Service`] when the service answers with an error, [`Error::Timeout`],
    /// [`Error::Closed`], [`Error::Codec`] when the request exceeds the frame limit,
    /// [`Error::Json`] when the response does not decode.
    pub fn call<O: Operation>(
        &self,
        request: &O::Request,
        options: CallOptions,
    ) -> Result<O::Response> {
        let payload =
            serde_json::to_vec(request).map_err(|e| Error::json(O::Request::MODEL_TYPE, e))?;
        let deadline = self.deadline(options);
        let core = &self.inner.core;
        let (_, reply) = core
            .current(deadline, options.wait_for_reconnect)?
            .call(
                O::OPERATION,
                O::Request::MODEL_TYPE,
                payload.into(),
                deadline,
                None,
            )
            .map_err(|e| core.map_err(e))?;
        decode_reply::<O::Response>(&reply)
    }

    /// Calls a streaming operation: sends the request, waits for the initial response,
    /// and from then on hands every event to `handler` on the handler pool.
    ///
    /// # Errors
    /// As [`Client::call`]. When the call fails, the handler is dropped without being
    /// called.
    pub fn subscribe<O, H>(
        &self,
        request: &O::Request,
        handler: H,
        options: CallOptions,
    ) -> Result<Subscription<O::Response>>
    where
        O: StreamingOperation,
        H: StreamHandler<O::Event>,
    {
        let payload =
            serde_json::to_vec(request).map_err(|e| Error::json(O::Request::MODEL_TYPE, e))?;
        let payload = Bytes::from(payload);
        let deadline = self.deadline(options);
        let core = &self.inner.core;
        let config = &core.config;
        let connection = core.current(deadline, options.wait_for_reconnect)?;
        let queue = core.dispatcher.queue(
            Box::new(TypedSink::<O::Event, H>::new(handler)),
            config.event_queue_capacity,
            config.event_queue_bytes,
            O::NAME.to_owned(),
        );
        let (id, reply) = match connection.call(
            O::OPERATION,
            O::Request::MODEL_TYPE,
            payload.clone(),
            deadline,
            Some(queue.clone()),
        ) {
            Ok(r) => r,
            Err(e) => {
                queue.abandon();
                return Err(core.map_err(e));
            }
        };
        let response = decode_reply::<O::Response>(&reply);
        match response {
            Ok(response) => {
                let entry = Arc::new(SubEntry {
                    request: Resubscribe {
                        operation: O::OPERATION,
                        model_type: O::Request::MODEL_TYPE,
                        payload,
                    },
                    queue,
                    binding: Mutex::new(Binding {
                        connection: connection.clone(),
                        stream_id: id,
                    }),
                    closed: AtomicBool::new(false),
                });
                let key = core.register(entry.clone(), &connection);
                if reply.is_terminate() {
                    // Accepted, then ended at once: the handler sees the close.
                    entry.queue.finish(None);
                }
                Ok(Subscription::new(
                    response,
                    entry,
                    key,
                    Arc::downgrade(core),
                    config.request_timeout,
                ))
            }
            Err(e) => {
                queue.abandon();
                let _ = connection.end_stream(id, deadline.max(Instant::now()));
                Err(e)
            }
        }
    }

    /// Calls an operation this crate does not model yet (for servers newer than the
    /// crate): `operation` is the short name (`"PublishToTopic"`), `request` the JSON of
    /// the request shape. Returns the response JSON. Streaming operations are not
    /// supported this way.
    ///
    /// # Errors
    /// As [`Client::call`]; [`Error::InvalidArgument`] for a name that is not a short
    /// name or that names a streaming operation this crate knows.
    pub fn call_json(
        &self,
        operation: &str,
        request: &serde_json::Value,
        options: CallOptions,
    ) -> Result<serde_json::Value> {
        if operation.is_empty() || operation.contains('#') {
            return Err(Error::InvalidArgument(format!(
                "operation name {operation:?} must be a short name"
            )));
        }
        if crate::model::operation_info(operation).is_some_and(|op| op.streaming) {
            // Its stream would stay open on the server with nobody reading it.
            return Err(Error::InvalidArgument(format!(
                "{operation} is a streaming operation: use Client::subscribe"
            )));
        }
        let payload = serde_json::to_vec(request).map_err(|e| Error::json(operation, e))?;
        let deadline = self.deadline(options);
        let core = &self.inner.core;
        let (_, reply) = core
            .current(deadline, options.wait_for_reconnect)?
            .call(
                &format!("aws.greengrass#{operation}"),
                &format!("aws.greengrass#{operation}Request"),
                payload.into(),
                deadline,
                None,
            )
            .map_err(|e| core.map_err(e))?;
        if reply.message_type == MessageType::ApplicationError {
            return Err(connection::stream_error(&reply));
        }
        let bytes: &[u8] = if reply.payload.is_empty() {
            b"{}"
        } else {
            &reply.payload
        };
        serde_json::from_slice(bytes).map_err(|e| Error::json(operation, e))
    }

    /// Whether the connection is open now (with reconnect, `false` while reconnecting).
    pub fn is_connected(&self) -> bool {
        self.close_reason().is_none()
    }

    /// Why the current connection closed, if it has (with reconnect, why the last one
    /// was lost while a new one is being made).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.core.slot.lock().connection.close_reason()
    }

    /// Subscription handler panics caught so far (each was logged at error).
    pub fn handler_panics(&self) -> u64 {
        self.inner.core.dispatcher.panics()
    }

    /// Closes the connection for every handle: pending calls fail with
    /// [`Error::Closed`]`(`[`CloseReason::ByUser`]`)`, subscriptions get
    /// `on_stream_closed`, and the background threads stop. Returns within the shutdown
    /// timeout, also when called from inside a handler. Idempotent. A handler that is
    /// still blocked then is left to finish on its own thread (logged at warn); every
    /// other background thread has ended when this returns.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for reporting a failed flush.
    pub fn close(&self) -> Result<()> {
        self.inner.core.shutdown();
        Ok(())
    }

    fn deadline(&self, options: CallOptions) -> Instant {
        deadline_after(
            options
                .timeout
                .unwrap_or(self.inner.core.config.request_timeout),
        )
    }
}

impl Core {
    /// The connection to call on. While reconnecting: [`Error::Disconnected`] at once, or
    /// (with `wait`) the new connection once it is up, or a timeout at `deadline`. Without
    /// reconnect, after `close()` or after giving up: the closed connection (whose calls
    /// fail with [`Error::Closed`]).
    fn current(&self, deadline: Instant, wait: bool) -> Result<Arc<Connection>> {
        let mut slot = self.slot.lock();
        loop {
            if self.is_closed() {
                return Err(Error::Closed(CloseReason::ByUser));
            }
            let connection = slot.connection.clone();
            let Some(reason) = connection.close_reason() else {
                return Ok(connection);
            };
            if self.config.reconnect.is_none() || slot.gave_up || self.is_closed() {
                return Ok(connection);
            }
            if !wait {
                return Err(Error::Disconnected(reason));
            }
            if self.changed.wait_until(&mut slot, deadline).timed_out()
                && slot.connection.close_reason().is_some()
            {
                return Err(Error::Timeout(TimeoutKind::Connect));
            }
        }
    }

    /// With reconnect under way, a call that failed because its connection was lost
    /// reports [`Error::Disconnected`].
    fn map_err(&self, e: Error) -> Error {
        match e {
            Error::Closed(reason)
                if reason != CloseReason::ByUser
                    && self.config.reconnect.is_some()
                    && !self.is_closed()
                    && !self.slot.lock().gave_up =>
            {
                Error::Disconnected(reason)
            }
            other => other,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Registers a new subscription; returns its key. If the connection it was made on
    /// was lost meanwhile, the supervisor is asked to resume it.
    fn register(&self, entry: Arc<SubEntry>, connection: &Arc<Connection>) -> u64 {
        let key = self.next_sub.fetch_add(1, Ordering::Relaxed);
        self.subs.lock().insert(key, entry.clone());
        if self.is_closed() {
            entry.queue.finish(None);
        } else if connection.close_reason().is_some() {
            if let Some(notices) = &self.notices {
                let _ = notices.send(Notice::Resync);
            }
        }
        key
    }

    pub(crate) fn forget_subscription(&self, key: u64) {
        self.subs.lock().remove(&key);
    }

    /// The live subscriptions.
    pub(crate) fn subscriptions(&self) -> Vec<Arc<SubEntry>> {
        self.subs.lock().values().cloned().collect()
    }

    /// Installs a new connection (from the supervisor). Fails if the client was closed
    /// meanwhile (the new connection is then shut down).
    pub(crate) fn install(&self, connection: Arc<Connection>, io: IoThread) -> bool {
        let old = {
            let mut slot = self.slot.lock();
            if self.is_closed() {
                drop(slot);
                connection.shutdown(CloseReason::ByUser);
                io.join_until(deadline_after(self.config.shutdown_timeout));
                return false;
            }
            slot.connection = connection;
            slot.io.replace(io)
        };
        self.changed.notify_all();
        if let Some(old) = old {
            // It has ended (that is why we reconnected).
            old.join_until(deadline_after(self.config.shutdown_timeout));
        }
        true
    }

    /// Reconnecting gave up: calls now fail with `Closed`, subscriptions end.
    pub(crate) fn give_up(&self, reason: &CloseReason) {
        self.slot.lock().gave_up = true;
        self.changed.notify_all();
        for entry in std::mem::take(&mut *self.subs.lock()).into_values() {
            entry.queue.finish(Some(Error::Closed(reason.clone())));
        }
    }

    /// Notices for the supervisor (I/O threads it starts report to it).
    pub(crate) fn notices(&self) -> Option<Sender<Notice>> {
        self.notices.clone()
    }

    /// Closes for good: see [`Client::close`].
    pub(crate) fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = deadline_after(self.config.shutdown_timeout);
        let (connection, io) = {
            let mut slot = self.slot.lock();
            slot.connection.shutdown(CloseReason::ByUser);
            (slot.connection.clone(), slot.io.take())
        };
        if let Some(socket) = self.connecting.lock().take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.changed.notify_all();
        if let Some(notices) = &self.notices {
            let _ = notices.send(Notice::Stop);
        }
        if let Some(io) = io {
            io.join_until(deadline);
        }
        if let Some(supervisor) = self.supervisor.lock().take() {
            supervisor.join_until(deadline);
        }
        connection.fail_all(CloseReason::ByUser);
        for entry in std::mem::take(&mut *self.subs.lock()).into_values() {
            entry.queue.finish(None);
        }
        self.dispatcher.shutdown(deadline);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}
