//! Subscription handles and the handler trait.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::deadline::deadline_after;
use crate::dispatch::EventSink;
use crate::error::{stream_error, Error, Result, StreamEnd};
use crate::link::{Link, SubEntry};
use crate::model::Shape;
use crate::rpc::{json_body, MessageType, ProtocolError, RpcMessage, CONTENT_TYPE_JSON};

/// What a handler's [`on_stream_error`](StreamHandler::on_stream_error) asks for.
///
/// ```
/// use ggipc::StreamControl;
/// let keep = StreamControl::KeepOpen;
/// assert!(!keep.is_close());
/// assert!(StreamControl::Close.is_close());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamControl {
    /// Keep the subscription open: later events are still delivered.
    KeepOpen,
    /// Close the subscription: the client ends the stream, drops the events still
    /// queued, and calls [`on_stream_closed`](StreamHandler::on_stream_closed).
    Close,
}

impl StreamControl {
    /// Whether this asks to close the subscription.
    pub fn is_close(self) -> bool {
        self == StreamControl::Close
    }
}

/// Receives what arrives on a subscription. Runs on the client's handler pool, never on
/// the I/O thread: a handler may block and may call any client method (publish,
/// subscribe, close) without deadlock.
///
/// Calls for one subscription are never concurrent and arrive in order:
/// events, then at most one [`on_stream_closed`](StreamHandler::on_stream_closed), last.
/// A closure `FnMut(E)` is a handler that only cares about events; it may return a
/// `Result<(), impl Display>`, whose error is logged (see [`HandlerReturn`]).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
/// use ggipc::{Error, StreamControl, StreamHandler};
///
/// struct Printer;
/// impl StreamHandler<SubscriptionResponseMessage> for Printer {
///     fn on_stream_event(&mut self, event: SubscriptionResponseMessage) {
///         println!("{:?} on {}", event.json(), event.topic());
///     }
///     fn on_stream_error(&mut self, error: Error) -> StreamControl {
///         eprintln!("stream error: {error}");
///         StreamControl::KeepOpen
///     }
///     fn on_stream_closed(&mut self) {
///         println!("closed");
///     }
/// }
///
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// # let client = emulator.connect()?;
/// let subscription = client.subscribe_to_topic(SubscribeToTopicRequest::new("sensors/#"), Printer)?;
/// subscription.close()?;
/// # Ok(()) }
/// ```
pub trait StreamHandler<E>: Send + 'static {
    /// One event.
    fn on_stream_event(&mut self, event: E);

    /// An error on the stream: an error message from the server, an event that could not
    /// be decoded, or the loss of the connection (then the stream closes whatever this
    /// returns). Return [`StreamControl::Close`] to close the subscription,
    /// [`StreamControl::KeepOpen`] to go on. The default logs the error at warn and
    /// closes, as the official SDKs do.
    fn on_stream_error(&mut self, error: Error) -> StreamControl {
        log::warn!("subscription error: {error}");
        StreamControl::Close
    }

    /// The subscription is closed (by either side, or because the connection ended).
    /// Called exactly once, after every other callback.
    fn on_stream_closed(&mut self) {}

    /// `count` events were dropped because this subscription's queue was full (the
    /// handler was slower than the events). Called before the next event is delivered.
    /// The default logs at warn.
    fn on_events_dropped(&mut self, count: u64) {
        log::warn!("{count} subscription event(s) dropped: the handler is too slow");
    }

    /// The connection was lost and the client is reconnecting (only with
    /// [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect); without it a lost
    /// connection ends the subscription through `on_stream_error` and
    /// `on_stream_closed`). `reason` is an [`Error::Disconnected`]. Events published
    /// until [`on_stream_resumed`](StreamHandler::on_stream_resumed) are missed. The
    /// default logs at warn.
    fn on_stream_interrupted(&mut self, reason: &Error) {
        log::warn!("subscription interrupted: {reason}");
    }

    /// The subscription was re-established on a new connection with its original
    /// request; events flow again. Events sent while it was interrupted may have been
    /// missed. The default logs at info.
    fn on_stream_resumed(&mut self) {
        log::info!("subscription resumed");
    }

    /// No event arrived for `period`, the period given to
    /// [`Subscription::watch_staleness`] (only when it was called). The subscription is
    /// still open: this is a notice, called again after each further period without an
    /// event. A server may lose a subscription while the socket stays up; closing and
    /// subscribing again is one way out. The default logs at warn.
    fn on_stream_stale(&mut self, period: Duration) {
        log::warn!("subscription stale: no event for {period:?}");
    }
}

/// What a closure handler may return: `()`, or a `Result` whose error is logged at error level
/// (so a closure can use `?`; the subscription goes on either way). With no logger installed
/// (the `log` crate's level still at its initial `Off`) the error is printed to stderr
/// instead, which the nucleus keeps in the component's log: a failing handler is never silent.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// # let client = emulator.connect()?;
/// let relay = client.clone();
/// let _subscription = client.subscribe_to_topic(
///     SubscribeToTopicRequest::new("in"),
///     move |message: SubscriptionResponseMessage| -> ggipc::Result<()> {
///         relay.publish_to_topic(PublishToTopicRequest::new("out", message))?;
///         Ok(())
///     },
/// )?;
/// # Ok(()) }
/// ```
pub trait HandlerReturn {
    /// Reports the outcome of one call of the handler.
    fn report(self);
}

impl HandlerReturn for () {
    fn report(self) {}
}

impl<E: fmt::Display> HandlerReturn for std::result::Result<(), E> {
    fn report(self) {
        if let Err(e) = self {
            if log::max_level() == log::LevelFilter::Off {
                eprintln!("ggipc: subscription handler failed: {e}");
            } else {
                log::error!("subscription handler failed: {e}");
            }
        }
    }
}

impl<E, F, R> StreamHandler<E> for F
where
    F: FnMut(E) -> R + Send + 'static,
    R: HandlerReturn,
{
    fn on_stream_event(&mut self, event: E) {
        self(event).report()
    }
}

/// The typed result of a first reply: the service's error for an APPLICATION_ERROR,
/// else the decoded response.
pub(crate) fn decode_reply<T: Shape>(message: &RpcMessage) -> Result<T> {
    if message.message_type == MessageType::ApplicationError {
        return Err(stream_error(message));
    }
    decode_payload(message)
}

/// Decodes a reply's JSON into `T`, checking content and model type.
pub(crate) fn decode_payload<T: Shape>(message: &RpcMessage) -> Result<T> {
    if let Some(ct) = &message.content_type {
        if ct != CONTENT_TYPE_JSON {
            return Err(ProtocolError::UnsupportedContentType {
                content_type: Some(ct.to_string()),
            }
            .into());
        }
    }
    if let Some(mt) = &message.model_type {
        if mt != T::MODEL_TYPE {
            return Err(ProtocolError::UnexpectedModelType {
                expected: T::MODEL_TYPE,
                actual: mt.to_string(),
            }
            .into());
        }
    }
    serde_json::from_slice(json_body(&message.payload)).map_err(|e| Error::json(T::MODEL_TYPE, e))
}

/// Adapts a typed [`StreamHandler`] to the pool: decodes each event on the worker.
pub(crate) struct TypedSink<E, H> {
    handler: H,
    _event: PhantomData<fn() -> E>,
}

impl<E, H> TypedSink<E, H> {
    pub(crate) fn new(handler: H) -> Self {
        TypedSink {
            handler,
            _event: PhantomData,
        }
    }
}

impl<E: Shape, H: StreamHandler<E>> EventSink for TypedSink<E, H> {
    fn event(&mut self, message: RpcMessage) -> Option<StreamEnd> {
        match decode_payload::<E>(&message) {
            Ok(event) => {
                self.handler.on_stream_event(event);
                None
            }
            Err(e) => self.error(e),
        }
    }
    fn error(&mut self, error: Error) -> Option<StreamEnd> {
        let cause = error.clone();
        self.handler
            .on_stream_error(error)
            .is_close()
            .then_some(StreamEnd::Failed(cause))
    }
    fn closed(&mut self, _end: &StreamEnd) {
        self.handler.on_stream_closed()
    }
    fn dropped(&mut self, count: u64) {
        self.handler.on_events_dropped(count)
    }
    fn interrupted(&mut self, reason: &Error) {
        self.handler.on_stream_interrupted(reason)
    }
    fn resumed(&mut self) {
        self.handler.on_stream_resumed()
    }
    fn stale(&mut self, period: Duration) {
        self.handler.on_stream_stale(period)
    }
}

/// Counters of one subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionStats {
    /// Events handed to the handler.
    pub delivered: u64,
    /// Events dropped because the handler's queue was full.
    pub dropped: u64,
    /// Handler calls that panicked (the panic was caught; the subscription goes on).
    pub panicked: u64,
}

/// The initial response kept by a [`Subscription`], whatever its type.
pub(crate) trait InitialResponse: Any + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + fmt::Debug + Send + Sync> InitialResponse for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open subscription. Dropping it closes it; [`close`](Subscription::close) does the
/// same and reports errors.
///
/// The type is the same for every operation, so a subscription is stored without naming
/// anything (`struct Component { updates: Subscription }`); the server's initial response
/// is available through [`response`](Subscription::response).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::model::{PublishToTopicRequest, ReceiveMode, SubscribeToTopicRequest, SubscriptionResponseMessage};
/// use ggipc::serde_json::json;
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// # let client = emulator.connect()?;
///
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let subscription = client.subscribe_to_topic(
///     // A wildcard filter receives only other components' messages unless told otherwise
///     // (the nucleus' default); this component wants its own too.
///     SubscribeToTopicRequest::new("alerts/#").with_receive_mode(ReceiveMode::ReceiveAllMessages),
///     move |event: SubscriptionResponseMessage| {
///         let _ = tx.send(event);
///     },
/// )?;
/// client.publish_to_topic(PublishToTopicRequest::json("alerts/fire", json!({"level": 3})))?;
///
/// let event = rx.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!(event.topic(), "alerts/fire");
/// assert_eq!(subscription.stats().dropped, 0);
///
/// // Closing (or dropping) ends the stream: no more events reach the handler.
/// subscription.close()?;
/// # Ok(()) }
/// ```
#[must_use = "dropping a Subscription closes it at once"]
pub struct Subscription {
    response: Box<dyn InitialResponse>,
    entry: Arc<SubEntry>,
    key: u64,
    link: Weak<Link>,
    close_timeout: Duration,
    closed: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("stream_id", &self.stream_id())
            .field("response", &self.response)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        response: Box<dyn InitialResponse>,
        entry: Arc<SubEntry>,
        key: u64,
        link: Weak<Link>,
        close_timeout: Duration,
    ) -> Self {
        Subscription {
            response,
            entry,
            key,
            link,
            close_timeout,
            closed: false,
        }
    }

    /// The server's initial response to the subscribe call, as its type `R` (the
    /// operation's `Response`, e.g. `SubscribeToTopicResponse`); `None` for any other
    /// type. Every initial response of the service is empty today, except
    /// `SubscribeToTopicResponse`'s deprecated `topicName`, which servers omit.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{SubscribeToIoTCoreResponse, SubscribeToTopicRequest, SubscribeToTopicResponse};
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let subscription = client.pull(SubscribeToTopicRequest::new("t"))?;
    /// let response = subscription.response::<SubscribeToTopicResponse>();
    /// assert_eq!(response.and_then(|r| r.topic_name.as_deref()), None);
    /// assert!(subscription.response::<SubscribeToIoTCoreResponse>().is_none());
    /// # Ok(()) }
    /// ```
    pub fn response<R: Shape>(&self) -> Option<&R> {
        // Deref first: the Box itself would match the blanket impl.
        (*self.response).as_any().downcast_ref()
    }

    /// The eventstream id of this subscription on its connection (it changes when the
    /// subscription is resumed on a new connection).
    pub fn stream_id(&self) -> i32 {
        self.entry.binding.lock().stream_id
    }

    /// Whether the subscription is still open: not closed by either side, not ended by an
    /// error or a lost connection. (With reconnect, an interrupted subscription is still
    /// open: it resumes on the new connection.)
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
    /// use ggipc::StreamEnd;
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let subscription = client.subscribe_to_topic(SubscribeToTopicRequest::new("t"), |_: SubscriptionResponseMessage| {})?;
    /// assert!(subscription.is_open());
    /// assert!(subscription.wait_end(Duration::from_millis(10)).is_none());
    /// client.close();
    /// assert!(!subscription.is_open());
    /// assert!(matches!(subscription.wait_end(Duration::from_secs(2)), Some(StreamEnd::ClosedByClient)));
    /// # Ok(()) }
    /// ```
    pub fn is_open(&self) -> bool {
        self.entry.queue.fate().get().is_none()
    }

    /// Why the subscription ended, or `None` while it is open.
    pub fn end(&self) -> Option<StreamEnd> {
        self.entry.queue.fate().get()
    }

    /// Waits up to `timeout` for the subscription to end, and says why it did; `None`
    /// when it is still open at the deadline. Works whatever the handler is (a closure
    /// sees no end otherwise). The handler's `on_stream_closed` may still be running when
    /// this returns. See [`Subscription::is_open`] for an example.
    pub fn wait_end(&self, timeout: Duration) -> Option<StreamEnd> {
        self.entry.queue.fate().wait_until(deadline_after(timeout))
    }

    /// Starts the staleness watchdog (opt-in): when no event arrives for `period`, the
    /// handler's [`on_stream_stale`](StreamHandler::on_stream_stale) runs (a pull
    /// subscription receives [`StreamItem::Stale`](crate::StreamItem::Stale)), and again
    /// after each further period without an event. The subscription stays open. The
    /// period starts now; calling again changes it. Costs one thread, which ends with the
    /// subscription.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ggipc::model::SubscribeToTopicRequest;
    /// use ggipc::StreamItem;
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let subscription = client.pull(SubscribeToTopicRequest::new("heartbeat"))?;
    /// subscription.watch_staleness(Duration::from_millis(50))?;
    /// // Nobody publishes: a notice arrives, and the subscription stays open.
    /// let item = subscription.recv_timeout(Duration::from_secs(5))?;
    /// assert!(matches!(item, StreamItem::Stale(p) if p == Duration::from_millis(50)));
    /// assert!(subscription.is_open());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero period, [`Error::Io`] when the thread cannot
    /// be started.
    pub fn watch_staleness(&self, period: Duration) -> Result<()> {
        if period.is_zero() {
            return Err(Error::InvalidArgument(
                "the staleness period must be longer than zero".into(),
            ));
        }
        Ok(self.entry.queue.watch_staleness(period)?)
    }

    /// Delivered, dropped and panicked counts so far.
    pub fn stats(&self) -> SubscriptionStats {
        let c = self.entry.queue.counters();
        SubscriptionStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
        }
    }

    /// Closes the subscription: sends TERMINATE (unless the server already ended the
    /// stream or the connection is gone) and stops delivery. The handler's
    /// `on_stream_closed` then runs on the pool; this call does not wait for it, so it is
    /// safe from inside the handler.
    ///
    /// # Errors
    /// [`Error::Timeout`] (`Write`) or [`Error::Io`] when the TERMINATE could not be sent.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        let (connection, stream_id) = {
            let binding = self.entry.binding.lock();
            self.entry.closed.store(true, Ordering::Release);
            self.entry.queue.note_end(StreamEnd::ClosedByClient);
            (binding.connection.clone(), binding.stream_id)
        };
        if let Some(link) = self.link.upgrade() {
            link.forget_subscription(self.key);
        }
        let sent = connection.end_stream(stream_id, deadline_after(self.close_timeout));
        self.entry.queue.close_now();
        match sent {
            Ok(_) | Err(Error::Closed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Err(e) = self.close_inner() {
            log::debug!(
                "closing subscription on stream {} failed: {e}",
                self.stream_id()
            );
        }
    }
}
