//! The public blocking client: the typed and generic calls. Connection management lives
//! in the link ([`crate::link`]); this file only turns requests into calls on the current
//! connection and replies into typed results.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::codec::CodecError;
use crate::config::{CallOptions, ClientBuilder};
use crate::deadline::deadline_after;
use crate::dispatch::EventSink;
use crate::error::{stream_error, CloseReason, Error, Result};
use crate::link::{Binding, Link, Resubscribe, SubEntry};
use crate::model::{Operation, Shape, StreamingOperation};
use crate::pending::Pending;
use crate::rpc::{json_body, MessageType, RpcMessage};
use crate::subscription::{decode_reply, InitialResponse, StreamHandler, Subscription, TypedSink};

/// A connection to the Greengrass IPC service.
///
/// `Client` is a cheap handle (`Clone`, `Send`, `Sync`): clone it into every thread that
/// makes calls. Every method blocks the calling thread until the answer arrives or its
/// deadline passes. The connection closes when [`close`](Client::close) is called or the
/// last handle is dropped; both return within the configured shutdown timeout, also from
/// inside a subscription handler. With [`ClientBuilder::reconnect`] the client survives a
/// lost connection (see there).
///
/// A component connects, calls, and subscribes. The nucleus sets the two variables
/// [`Client::connect`] reads; here the in-process emulator stands in for it:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::model::{GetConfigurationRequest, PublishToTopicRequest, SubscriptionResponseMessage};
/// use ggipc::serde_json::json;
///
/// let emulator = ggipc::emulator::Emulator::start()?;
/// std::env::set_var(ggipc::SOCKET_PATH_ENV, emulator.socket_path());
/// std::env::set_var(ggipc::AUTH_TOKEN_ENV, emulator.auth_token());
///
/// // Connect (on a device, this line alone):
/// let client = ggipc::Client::connect()?;
///
/// // A call:
/// let config = client.get_configuration(GetConfigurationRequest::all())?;
/// assert_eq!(config.value, Some(json!({})));
///
/// // A subscription: the handler runs on the client's handler pool. A request with one
/// // required member can be given as that member (here `SubscribeToTopicRequest`'s topic).
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let forward = move |event: SubscriptionResponseMessage| {
///     let _ = tx.send(event.json().cloned());
/// };
/// let _subscription = client.subscribe_to_topic("commands", forward)?;
///
/// // Clones share the connection; use them from any thread.
/// let publisher = client.clone();
/// std::thread::spawn(move || {
///     publisher.publish_to_topic(PublishToTopicRequest::json("commands", json!({"go": true})))
/// })
/// .join()
/// .unwrap()?;
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, Some(json!({"go": true})));
///
/// client.close();
/// assert!(!client.is_connected());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Owned by the user's handles only: dropping the last one closes the client.
struct Inner {
    link: Arc<Link>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket_path", &self.inner.link.config().socket_path)
            .field("closed", &self.close_reason())
            .field("reconnect", &self.inner.link.config().reconnect)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Connects and performs the handshake.
    ///
    /// # Errors
    /// [`Error::MissingEnvVar`] naming an unset variable, [`Error::InvalidArgument`] for a
    /// bad setting, [`Error::Io`] when the socket cannot be opened,
    /// [`Error::ConnectRejected`], [`Error::Timeout`] (`Handshake`).
    pub fn connect(self) -> Result<Client> {
        let link = crate::link::start(self.build()?)?;
        Ok(Client {
            inner: Arc::new(Inner { link }),
        })
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

    /// Calls a request/response operation by its model type: the generic form behind
    /// every typed method.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let request = PublishToTopicRequest::json("my/topic", serde_json::json!({"on": true}));
    /// client.call::<PublishToTopic>(&request, ggipc::CallOptions::default())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Service`] when the service answers with an error, [`Error::Timeout`],
    /// [`Error::Closed`], [`Error::RequestTooLarge`] when the request exceeds the frame limit
    /// (nothing is sent), [`Error::FrameRefused`] when the server closed the connection
    /// after a frame larger than nucleus lite accepts,
    /// [`Error::Json`] when the response does not decode.
    pub fn call<O: Operation>(
        &self,
        request: &O::Request,
        options: CallOptions,
    ) -> Result<O::Response> {
        let payload =
            request_payload(request).map_err(|e| Error::json(O::Request::MODEL_TYPE, e))?;
        let reply = self.call_raw(
            O::OPERATION.into(),
            O::Request::MODEL_TYPE.into(),
            payload,
            options,
        )?;
        decode_reply::<O::Response>(&reply)
    }

    /// The part of [`Client::call`] (and [`Client::call_json`]) that does not depend on
    /// the operation's types, one copy in the binary for all of them: sends the encoded
    /// request and waits for the reply (which may be an application error).
    fn call_raw(
        &self,
        operation: Cow<'static, str>,
        model_type: Cow<'static, str>,
        payload: Bytes,
        options: CallOptions,
    ) -> Result<RpcMessage> {
        let deadline = self.deadline(options);
        let link = &self.inner.link;
        let payload_len = payload.len();
        let (_, reply) = link
            .current(deadline, options.wait_for_reconnect)?
            // Clones of borrowed names (every typed call) copy no text.
            .call(
                operation.clone(),
                model_type.clone(),
                payload,
                deadline,
                None,
            )
            .map_err(|e| explain_size(link.map_err(e), &operation, &model_type, payload_len))?;
        Ok(reply)
    }

    /// Starts a request/response operation and returns at once, without waiting for the
    /// reply: the [`Pending`] is waited on later (with a deadline), many of them
    /// together if need be ([`crate::pending::wait_any`]), or dropped to abandon the
    /// call. One thread can keep many calls in flight this way. The call's deadline
    /// (`options.timeout`, else the client's request timeout) counts from now. For
    /// streaming operations use [`Client::subscribe`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
    /// let emulator = ggipc::emulator::Emulator::start()?;
    /// let client = emulator.connect()?;
    /// let pending: Vec<_> = (0..8)
    ///     .map(|i| {
    ///         let request = PublishToTopicRequest::json("demo/topic", serde_json::json!(i));
    ///         client.start::<PublishToTopic>(&request, ggipc::CallOptions::default())
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// for result in ggipc::pending::wait_all(pending) {
    ///     result?;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Only what prevents sending: [`Error::Closed`], [`Error::Disconnected`],
    /// [`Error::Timeout`] (`Write`, or `Connect` while waiting for a reconnect),
    /// [`Error::Codec`] when the request exceeds the frame limit, [`Error::Json`]. The
    /// reply's errors come from the [`Pending`].
    pub fn start<O: Operation>(
        &self,
        request: &O::Request,
        options: CallOptions,
    ) -> Result<Pending<O::Response>> {
        let payload =
            request_payload(request).map_err(|e| Error::json(O::Request::MODEL_TYPE, e))?;
        let (call, deadline) = self.start_raw(
            O::OPERATION.into(),
            O::Request::MODEL_TYPE.into(),
            payload,
            options,
        )?;
        Ok(Pending::new(call, self.inner.link.clone(), deadline))
    }

    /// The part of [`Client::start`] that does not depend on the operation's types (one
    /// copy for all of them): sends the encoded request; returns the call and its deadline.
    fn start_raw(
        &self,
        operation: Cow<'static, str>,
        model_type: Cow<'static, str>,
        payload: Bytes,
        options: CallOptions,
    ) -> Result<(crate::connection::InFlight, Instant)> {
        let deadline = self.deadline(options);
        let link = &self.inner.link;
        let call = link
            .current(deadline, options.wait_for_reconnect)?
            .start(operation, model_type, payload, deadline, None)
            .map_err(|e| link.map_err(e))?;
        Ok((call, deadline))
    }

    /// How many streams are open on the current connection: calls whose reply has not
    /// arrived yet (from blocked callers and [`Pending`] handles) plus open
    /// subscriptions. A dropped or timed-out [`Pending`] no longer counts.
    pub fn open_streams(&self) -> usize {
        self.inner.link.open_streams()
    }

    /// Calls a streaming operation: sends the request, waits for the initial response,
    /// and from then on hands every event to `handler` on the handler pool.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{SubscribeToTopic, SubscribeToTopicRequest, SubscriptionResponseMessage};
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let subscription = client.subscribe::<SubscribeToTopic, _>(
    ///     &SubscribeToTopicRequest::new("commands"),
    ///     |event: SubscriptionResponseMessage| println!("{:?}", event.json()),
    ///     ggipc::CallOptions::default(),
    /// )?;
    /// subscription.close()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::call`]. When the call fails, the handler is dropped without being
    /// called.
    pub fn subscribe<O, H>(
        &self,
        request: &O::Request,
        handler: H,
        options: CallOptions,
    ) -> Result<Subscription>
    where
        O: StreamingOperation,
        H: StreamHandler<O::Event>,
    {
        self.subscribe_sink::<O>(
            request,
            Box::new(TypedSink::<O::Event, H>::new(handler)),
            options,
        )
    }

    /// [`Client::subscribe`] with the handler already type-erased (a typed handler or a
    /// pull subscription's channel).
    pub(crate) fn subscribe_sink<O: StreamingOperation>(
        &self,
        request: &O::Request,
        sink: Box<dyn EventSink>,
        options: CallOptions,
    ) -> Result<Subscription> {
        let payload =
            request_payload(request).map_err(|e| Error::json(O::Request::MODEL_TYPE, e))?;
        self.subscribe_raw(
            Resubscribe {
                operation: O::OPERATION,
                model_type: O::Request::MODEL_TYPE,
                payload,
            },
            O::NAME,
            sink,
            options,
            |reply| {
                decode_reply::<O::Response>(reply).map(|r| Box::new(r) as Box<dyn InitialResponse>)
            },
        )
    }

    /// The part of [`Client::subscribe`] that does not depend on the operation's types
    /// (one copy for all of them); `decode` turns the accepted reply into the typed
    /// initial response.
    fn subscribe_raw(
        &self,
        request: Resubscribe,
        name: &str,
        sink: Box<dyn EventSink>,
        options: CallOptions,
        decode: fn(&RpcMessage) -> Result<Box<dyn InitialResponse>>,
    ) -> Result<Subscription> {
        let deadline = self.deadline(options);
        let link = &self.inner.link;
        let config = link.config();
        let connection = link.current(deadline, options.wait_for_reconnect)?;
        let queue = link.dispatcher().queue(
            sink,
            config.event_queue_capacity,
            config.event_queue_bytes,
            name.to_owned(),
        );
        // Nothing reaches the handler before the response is accepted below: messages that
        // arrive meanwhile wait in the queue, and are dropped with the handler if the
        // subscribe fails (whatever the order of the server's frames).
        queue.hold();
        let (id, reply) = match connection.call(
            request.operation.into(),
            request.model_type.into(),
            request.payload.clone(),
            deadline,
            Some(queue.clone()),
        ) {
            Ok(r) => r,
            Err(e) => {
                queue.abandon();
                return Err(explain_size(
                    link.map_err(e),
                    request.operation,
                    request.model_type,
                    request.payload.len(),
                ));
            }
        };
        let response = match decode(&reply) {
            Ok(response) => response,
            Err(e) => {
                queue.abandon();
                let _ = connection.end_stream(id, deadline.max(Instant::now()));
                return Err(e);
            }
        };
        let entry = Arc::new(SubEntry {
            request,
            queue,
            binding: Mutex::new(Binding {
                connection: connection.clone(),
                stream_id: id,
            }),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let key = link.register(entry.clone(), &connection);
        if reply.is_terminate() {
            // Accepted, then ended at once: the handler sees the close.
            entry.queue.finish(None);
        }
        entry.queue.release();
        Ok(Subscription::new(
            response,
            entry,
            key,
            Arc::downgrade(link),
            config.request_timeout,
        ))
    }

    /// Calls an operation this crate does not model yet (for servers newer than the
    /// crate): `operation` is the short name (`"PublishToTopic"`), `request` the JSON of
    /// the request shape. Returns the response JSON. Streaming operations are not
    /// supported this way.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::serde_json::json;
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let response = client.call_json("GetConfiguration", &json!({"keyPath": []}), ggipc::CallOptions::default())?;
    /// assert_eq!(response["value"], json!({}));
    /// # Ok(()) }
    /// ```
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
        let payload = request_payload(request).map_err(|e| Error::json(operation, e))?;
        let full_operation = format!("aws.greengrass#{operation}");
        let model_type = format!("aws.greengrass#{operation}Request");
        let reply = self.call_raw(full_operation.into(), model_type.into(), payload, options)?;
        if reply.message_type == MessageType::ApplicationError {
            return Err(stream_error(&reply));
        }
        serde_json::from_slice(json_body(&reply.payload)).map_err(|e| Error::json(operation, e))
    }

    /// Whether the connection is open now (with reconnect, `false` while reconnecting).
    pub fn is_connected(&self) -> bool {
        self.close_reason().is_none()
    }

    /// Why the current connection closed, if it has (with reconnect, why the last one
    /// was lost while a new one is being made).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.link.close_reason()
    }

    /// Subscription handler panics caught so far (each was logged at error).
    pub fn handler_panics(&self) -> u64 {
        self.inner.link.dispatcher().panics()
    }

    /// Closes the connection for every handle: pending calls fail with
    /// [`Error::Closed`]`(`[`CloseReason::ByUser`]`)`, subscriptions get
    /// `on_stream_closed`, and the background threads stop. Returns within the shutdown
    /// timeout, also when called from inside a handler. Idempotent. A handler that is
    /// still blocked then is left to finish on its own thread (logged at warn); every
    /// other background thread has ended when this returns.
    pub fn close(&self) {
        self.inner.link.shutdown();
    }

    /// Why the client is closed for good (reconnect off and the connection closed,
    /// reconnecting gave up, or closed by the user); `None` while connected or
    /// reconnecting.
    pub(crate) fn lost_for_good(&self) -> Option<CloseReason> {
        self.inner.link.lost_for_good()
    }

    /// The per-subscription event bound.
    pub(crate) fn event_queue_capacity(&self) -> usize {
        self.inner.link.config().event_queue_capacity
    }

    fn deadline(&self, options: CallOptions) -> Instant {
        deadline_after(
            options
                .timeout
                .unwrap_or(self.inner.link.config().request_timeout),
        )
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.link.shutdown();
    }
}

/// Nucleus lite's IPC buffer: a frame whose length after the 12-byte prelude exceeds it
/// makes lite close the connection.
const LITE_BUFFER: u64 = 10_000;

/// Names the frame in a failed call's error: a frame over the limit becomes
/// [`Error::RequestTooLarge`] (nothing was sent); a connection the server closed while a
/// frame larger than nucleus lite accepts was pending becomes [`Error::FrameRefused`].
fn explain_size(error: Error, operation: &str, model_type: &str, payload_len: usize) -> Error {
    match error {
        Error::Codec(CodecError::FrameTooLarge { total_length, max }) => Error::RequestTooLarge {
            payload: payload_len as u64,
            frame: total_length,
            max,
        },
        Error::Closed(ref reason) | Error::Disconnected(ref reason)
            if matches!(reason, CloseReason::PeerClosed | CloseReason::Io { .. })
                && payload_len as u64 > LITE_BUFFER / 2 =>
        {
            match request_frame_len(operation, model_type, payload_len) {
                Some(frame) if frame > LITE_BUFFER => Error::FrameRefused {
                    frame,
                    reason: reason.clone(),
                },
                _ => error,
            }
        }
        other => other,
    }
}

/// The encoded length of a request frame with a payload of `payload_len` bytes (the
/// stream id's value does not change it).
fn request_frame_len(operation: &str, model_type: &str, payload_len: usize) -> Option<u64> {
    let mut message = RpcMessage::json(
        MessageType::ApplicationMessage,
        0,
        1,
        Some(model_type.to_owned()),
        Bytes::new(),
    );
    message.operation = Some(operation.to_owned().into());
    let without_payload = message.to_frame().encoded_len().ok()?;
    Some(without_payload.saturating_add(payload_len) as u64)
}

/// The largest serialization buffer a thread keeps between requests; a larger one (after
/// a large request) is freed, so an idle thread holds at most this much.
const KEPT_REQUEST_BUFFER: usize = 16 * 1024;

thread_local! {
    /// The buffer [`request_payload`] serializes into, kept for the thread's next request.
    static REQUEST_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A request's JSON payload (written with its blobs as base64 text straight into the
/// output, see `model::write_json`): into a buffer kept per thread, then copied once into
/// a `Bytes` of its exact size. One allocation per request, where `serde_json::to_vec`
/// takes up to three (the vector, its growth, and the `Bytes` of a vector with spare
/// room).
fn request_payload<T: serde::Serialize + ?Sized>(request: &T) -> serde_json::Result<Bytes> {
    let fresh = || {
        let mut buffer = Vec::new();
        crate::model::write_json(&mut buffer, request).map(|()| Bytes::from(buffer))
    };
    REQUEST_BUFFER
        .try_with(|buffer| {
            // Borrowed already: a request whose serialization makes a call of its own.
            let Ok(mut buffer) = buffer.try_borrow_mut() else {
                return fresh();
            };
            buffer.clear();
            let payload = crate::model::write_json(&mut buffer, request)
                .map(|()| Bytes::copy_from_slice(&buffer));
            if buffer.capacity() > KEPT_REQUEST_BUFFER {
                *buffer = Vec::new();
            }
            payload
        })
        // The thread is exiting (its locals are gone).
        .unwrap_or_else(|_| fresh())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> usize {
        REQUEST_BUFFER.with(|buffer| buffer.borrow().capacity())
    }

    #[test]
    fn a_thread_keeps_its_request_buffer_only_while_it_is_small() {
        let small = serde_json::json!({ "topic": "t", "n": 1 });
        let big = serde_json::json!({ "topic": "t", "text": "x".repeat(100_000) });
        for request in [&small, &big, &small] {
            let payload = request_payload(request).expect("payload");
            assert_eq!(payload, serde_json::to_vec(request).unwrap());
            let kept = kept();
            if std::ptr::eq(request, &big) {
                assert_eq!(
                    kept, 0,
                    "a buffer grown past {KEPT_REQUEST_BUFFER} is freed"
                );
            } else {
                assert!(kept > 0 && kept <= KEPT_REQUEST_BUFFER, "{kept} bytes kept");
            }
        }
    }
}
