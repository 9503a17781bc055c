//! The public blocking client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver};
use parking_lot::Mutex;

use crate::config::{CallOptions, ClientBuilder, Config};
use crate::connection::{self, reader, Connection};
use crate::dispatch::Dispatcher;
use crate::error::{CloseReason, Error, Result};
use crate::model::{Operation, Shape, StreamingOperation};
use crate::rpc::MessageType;
use crate::subscription::{decode_payload, StreamHandler, Subscription, TypedSink};

/// A connection to the Greengrass IPC service.
///
/// `Client` is a cheap handle (`Clone`, `Send`, `Sync`): clone it into every thread that
/// makes calls. Every method blocks the calling thread until the answer arrives or its
/// deadline passes. The connection closes when [`close`](Client::close) is called or the
/// last handle is dropped; both return within the configured shutdown timeout, also from
/// inside a subscription handler.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Arc<Connection>,
    dispatcher: Dispatcher,
    io_thread: Mutex<Option<(ThreadId, JoinHandle<()>)>>,
    io_done: Receiver<()>,
    config: Config,
    closed: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket_path", &self.inner.config.socket_path)
            .field("closed", &self.inner.connection.close_reason())
            .finish_non_exhaustive()
    }
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
        let established = connection::connect(&config)?;
        let connection = established.connection.clone();
        let dispatcher = match Dispatcher::start(config.handler_threads) {
            Ok(d) => d,
            Err(e) => {
                connection.shutdown(CloseReason::ByUser);
                return Err(e.into());
            }
        };
        let (done_tx, io_done) = bounded(1);
        let io_connection = connection.clone();
        let spawned = thread::Builder::new()
            .name("ggipc-io".into())
            .spawn(move || {
                reader::run(io_connection, established.read_half, established.decoder);
                let _ = done_tx.send(());
            });
        let io_thread = match spawned {
            Ok(handle) => (handle.thread().id(), handle),
            Err(e) => {
                connection.shutdown(CloseReason::ByUser);
                dispatcher.shutdown(Instant::now() + config.shutdown_timeout);
                return Err(e.into());
            }
        };
        log::info!(
            "connected to the IPC socket {}",
            config.socket_path.display()
        );
        Ok(Client {
            inner: Arc::new(Inner {
                connection,
                dispatcher,
                io_thread: Mutex::new(Some(io_thread)),
                io_done,
                config,
                closed: AtomicBool::new(false),
            }),
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
        let (_, reply) = self.inner.connection.call(
            O::OPERATION,
            O::Request::MODEL_TYPE,
            payload.into(),
            deadline,
            None,
        )?;
        if reply.message_type == MessageType::ApplicationError {
            return Err(connection::stream_error(&reply));
        }
        decode_payload::<O::Response>(&reply)
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
        let deadline = self.deadline(options);
        let config = &self.inner.config;
        let queue = self.inner.dispatcher.queue(
            Box::new(TypedSink::<O::Event, H>::new(handler)),
            config.event_queue_capacity,
            config.event_queue_bytes,
            O::NAME.to_owned(),
        );
        let connection = &self.inner.connection;
        let (id, reply) = connection.call(
            O::OPERATION,
            O::Request::MODEL_TYPE,
            payload.into(),
            deadline,
            Some(queue.clone()),
        )?;
        let response = if reply.message_type == MessageType::ApplicationError {
            Err(connection::stream_error(&reply))
        } else {
            decode_payload::<O::Response>(&reply)
        };
        match response {
            Ok(response) => Ok(Subscription::new(
                response,
                id,
                connection.clone(),
                queue,
                config.request_timeout,
            )),
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
    /// As [`Client::call`].
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
        let payload = serde_json::to_vec(request).map_err(|e| Error::json(operation, e))?;
        let deadline = self.deadline(options);
        let (_, reply) = self.inner.connection.call(
            &format!("aws.greengrass#{operation}"),
            &format!("aws.greengrass#{operation}Request"),
            payload.into(),
            deadline,
            None,
        )?;
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

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.inner.connection.close_reason().is_none()
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.connection.close_reason()
    }

    /// Subscription handler panics caught so far (each was logged at error).
    pub fn handler_panics(&self) -> u64 {
        self.inner.dispatcher.panics()
    }

    /// Closes the connection for every handle: pending calls fail with
    /// [`Error::Closed`]`(`[`CloseReason::ByUser`]`)`, subscriptions get
    /// `on_stream_closed`, and the background threads stop. Returns within the shutdown
    /// timeout, also when called from inside a handler. Idempotent.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for reporting a failed flush.
    pub fn close(&self) -> Result<()> {
        self.inner.shutdown();
        Ok(())
    }

    fn deadline(&self, options: CallOptions) -> Instant {
        Instant::now() + options.timeout.unwrap_or(self.inner.config.request_timeout)
    }
}

impl Inner {
    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = Instant::now() + self.config.shutdown_timeout;
        self.connection.shutdown(CloseReason::ByUser);
        if let Some((id, handle)) = self.io_thread.lock().take() {
            if id != thread::current().id() && self.io_done.recv_deadline(deadline).is_ok() {
                let _ = handle.join();
            }
        }
        self.connection.fail_all(CloseReason::ByUser);
        self.dispatcher.shutdown(deadline);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
