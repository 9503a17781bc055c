//! Pull subscriptions: a subscription whose events the caller receives from a channel
//! (`recv`, `recv_timeout`, `try_recv`, an iterator, `crossbeam_channel::select!`) instead
//! of a handler.
//!
//! Events go through the same per-subscription [`StreamQueue`](crate::dispatch) as a
//! handler's, and a pool worker decodes them and forwards them to the caller's channel,
//! so order, bounds and drop counting are the handler's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::config::CallOptions;
use crate::dispatch::EventSink;
use crate::error::{Error, Result, StreamEnd};
use crate::model::{Operation, Shape, StreamingOperation};
use crate::rpc::RpcMessage;
use crate::subscription::{decode_payload, Subscription, SubscriptionStats};
use crate::Client;

/// Room in a pull subscription's channel kept for notices (drops, interruptions,
/// resumptions, the end), beyond the event capacity. The last slot is only ever used by
/// the end, so the end always arrives.
const NOTICE_ROOM: usize = 16;

/// What a [`PullSubscription`] delivers, in order. [`StreamItem::End`] is always the last
/// item; after it the channel is empty and disconnected.
///
/// ```
/// use ggipc::{StreamEnd, StreamItem};
/// let item: StreamItem<u32> = StreamItem::End(StreamEnd::ClosedByServer);
/// assert!(item.is_end());
/// assert_eq!(StreamItem::Event(7).into_event(), Some(7));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamItem<E> {
    /// One event.
    Event(E),
    /// This many events were dropped just before the next item, because the puller was
    /// slower than the events (the subscription's queue was full).
    Dropped(u64),
    /// The connection was lost and the client is reconnecting (only with
    /// [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect)); events published
    /// until [`StreamItem::Resumed`] are missed. The error is an [`Error::Disconnected`].
    Interrupted(Error),
    /// The subscription was re-established on a new connection.
    Resumed,
    /// No event arrived for the staleness period set with
    /// [`PullSubscription::watch_staleness`] (or
    /// [`Subscription::watch_staleness`]); the subscription is still open. Repeated once
    /// per further period without an event.
    Stale(Duration),
    /// The subscription ended, and why. Always the last item.
    End(StreamEnd),
}

impl<E> StreamItem<E> {
    /// Whether this is the end of the stream.
    pub fn is_end(&self) -> bool {
        matches!(self, StreamItem::End(_))
    }

    /// The event, if this is one.
    pub fn into_event(self) -> Option<E> {
        match self {
            StreamItem::Event(e) => Some(e),
            _ => None,
        }
    }
}

/// A request whose operation streams events: lets [`Client::pull`] find the operation
/// (and so the event type) from the request alone.
///
/// ```
/// use ggipc::model::{SubscribeToTopic, SubscribeToTopicRequest};
/// use ggipc::StreamRequest;
/// fn operation_name<Q: StreamRequest>(_: &Q) -> &'static str {
///     <Q::Operation as ggipc::model::Operation>::NAME
/// }
/// assert_eq!(operation_name(&SubscribeToTopicRequest::new("t")), "SubscribeToTopic");
/// # let _: Option<SubscribeToTopic> = None;
/// ```
pub trait StreamRequest: Shape {
    /// The streaming operation this request opens.
    type Operation: StreamingOperation<Request = Self>;
}

macro_rules! stream_requests {
    ($($op:ident => $request:ident;)*) => {
        $(
            impl StreamRequest for crate::model::$request {
                type Operation = crate::model::$op;
            }
        )*
    };
}

stream_requests! {
    SubscribeToTopic => SubscribeToTopicRequest;
    SubscribeToIoTCore => SubscribeToIoTCoreRequest;
    SubscribeToIoTCoreConnectionStatus => SubscribeToIoTCoreConnectionStatusRequest;
    SubscribeToComponentUpdates => SubscribeToComponentUpdatesRequest;
    SubscribeToConfigurationUpdate => SubscribeToConfigurationUpdateRequest;
    SubscribeToValidateConfigurationUpdates => SubscribeToValidateConfigurationUpdatesRequest;
    SubscribeToCertificateUpdates => SubscribeToCertificateUpdatesRequest;
}

/// The event type of the operation a request opens.
type EventOf<Q> = <<Q as StreamRequest>::Operation as StreamingOperation>::Event;

/// Forwards a subscription's items, decoded, to the puller's channel (runs on a pool
/// worker, one item at a time).
struct PullSink<E> {
    tx: Sender<StreamItem<E>>,
    /// Events the channel may hold; the rest of its capacity is [`NOTICE_ROOM`].
    events: usize,
    /// Drops not yet reported to the puller.
    unreported: u64,
    /// What became of the events handed here, shared with the handle's stats.
    counts: Arc<PullCounts>,
}

/// A pull subscription's own counts, updated once an event has been handled here (so
/// that an event still on its way is in neither).
#[derive(Debug, Default)]
struct PullCounts {
    /// Events put in the puller's channel.
    sent: AtomicU64,
    /// Events dropped here because the channel was full.
    dropped: AtomicU64,
}

impl<E> PullSink<E> {
    /// Sends a notice if there is room for it, keeping the last slot for the end.
    fn notice(&self, item: StreamItem<E>) -> bool {
        if self.tx.len() + 1 < self.events + NOTICE_ROOM {
            self.tx.try_send(item).is_ok()
        } else {
            log::warn!("pull subscription: notice dropped, the puller is not reading");
            false
        }
    }

    fn report_drops(&mut self) {
        if self.unreported > 0 && self.notice(StreamItem::Dropped(self.unreported)) {
            self.unreported = 0;
        }
    }
}

impl<E: Shape> EventSink for PullSink<E> {
    fn event(&mut self, message: RpcMessage) -> Option<StreamEnd> {
        let event = match decode_payload::<E>(&message) {
            Ok(event) => event,
            Err(e) => return Some(StreamEnd::Failed(e)),
        };
        // Room for the event (the drop report before it uses the notice room). An event
        // never overtakes an unreported drop.
        if self.tx.len() < self.events {
            self.report_drops();
            if self.unreported == 0 && self.tx.try_send(StreamItem::Event(event)).is_ok() {
                self.counts.sent.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        self.unreported += 1;
        let total = self.counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            log::warn!("pull subscription full: {total} event(s) dropped so far");
        }
        None
    }

    fn error(&mut self, error: Error) -> Option<StreamEnd> {
        Some(StreamEnd::Failed(error))
    }

    fn closed(&mut self, end: &StreamEnd) {
        self.report_drops();
        // The last slot is the end's: every other sender stops one short of it.
        let _ = self.tx.try_send(StreamItem::End(end.clone()));
    }

    fn dropped(&mut self, count: u64) {
        // Reported before the next item.
        self.unreported += count;
    }

    fn interrupted(&mut self, reason: &Error) {
        self.report_drops();
        self.notice(StreamItem::Interrupted(reason.clone()));
    }

    fn resumed(&mut self) {
        self.report_drops();
        self.notice(StreamItem::Resumed);
    }

    fn stale(&mut self, period: Duration) {
        self.report_drops();
        self.notice(StreamItem::Stale(period));
    }
}

/// A subscription whose items the caller pulls: made by [`Client::pull`]. `E` is the
/// operation's event type, the one the caller handles (e.g.
/// [`SubscriptionResponseMessage`](crate::model::SubscriptionResponseMessage) for
/// `SubscribeToTopic`, so a struct field reads
/// `PullSubscription<SubscriptionResponseMessage>`); items are [`StreamItem`]`<E>`.
/// Dropping it closes the subscription, as [`close`](PullSubscription::close) does.
///
/// Items are received in the order they arrived, with the same bound as a handler's
/// queue ([`ClientBuilder::event_queue`](crate::ClientBuilder::event_queue)): when the
/// puller falls behind, new events are dropped, counted in
/// [`stats`](PullSubscription::stats) and reported by a [`StreamItem::Dropped`] before
/// the next event. The last item is [`StreamItem::End`] with the cause.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest};
/// use ggipc::{StreamEnd, StreamItem};
///
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// # let client = emulator.connect()?;
/// let subscription = client.pull(SubscribeToTopicRequest::new("sensors/1"))?;
/// client.publish_to_topic(PublishToTopicRequest::json("sensors/1", serde_json::json!({"t": 20})))?;
/// match subscription.recv_timeout(Duration::from_secs(5))? {
///     StreamItem::Event(message) => assert_eq!(message.topic(), "sensors/1"),
///     other => panic!("{other:?}"),
/// }
/// assert!(subscription.try_recv().is_err(), "nothing more yet");
///
/// // With other channels: `select!` on the receiver.
/// let (_tx, ticks) = crossbeam_channel::bounded::<()>(1);
/// crossbeam_channel::select! {
///     recv(subscription.receiver()) -> item => println!("{item:?}"),
///     recv(ticks) -> _ => {}
///     default(Duration::from_millis(10)) => {}
/// }
///
/// client.close();
/// // The end comes last; then the iterator stops.
/// let rest: Vec<_> = subscription.iter().collect();
/// assert!(matches!(rest.last(), Some(StreamItem::End(StreamEnd::ClosedByClient))));
/// # Ok(()) }
/// ```
#[must_use = "dropping a PullSubscription closes it at once"]
pub struct PullSubscription<E> {
    subscription: Subscription,
    rx: Receiver<StreamItem<E>>,
    counts: Arc<PullCounts>,
    operation: &'static str,
}

impl<E> std::fmt::Debug for PullSubscription<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSubscription")
            .field("operation", &self.operation)
            .field("stream_id", &self.subscription.stream_id())
            .field("queued", &self.rx.len())
            .field("end", &self.subscription.end())
            .finish_non_exhaustive()
    }
}

impl<E> PullSubscription<E> {
    /// Blocks until the next item. `None` once the end has been received (or the client
    /// is gone).
    pub fn recv(&self) -> Option<StreamItem<E>> {
        self.rx.recv().ok()
    }

    /// The next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] when nothing arrived in time,
    /// [`RecvTimeoutError::Disconnected`] after the end was received.
    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<StreamItem<E>, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next item if one is waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when none is, [`TryRecvError::Disconnected`] after the end
    /// was received.
    pub fn try_recv(&self) -> std::result::Result<StreamItem<E>, TryRecvError> {
        self.rx.try_recv()
    }

    /// A blocking iterator over the items; it ends after [`StreamItem::End`].
    pub fn iter(&self) -> crossbeam_channel::Iter<'_, StreamItem<E>> {
        self.rx.iter()
    }

    /// The channel the items arrive on, for `crossbeam_channel::select!` (re-exported as
    /// [`ggipc::crossbeam_channel`](crate::crossbeam_channel)). Only this handle's
    /// methods and this receiver take items from it.
    pub fn receiver(&self) -> &Receiver<StreamItem<E>> {
        &self.rx
    }

    /// The server's initial response to the subscribe call, as its type `R` (see
    /// [`Subscription::response`]).
    pub fn response<R: Shape>(&self) -> Option<&R> {
        self.subscription.response()
    }

    /// Whether the subscription is still open (see [`Subscription::is_open`]); items may
    /// still wait in the channel after it ended.
    pub fn is_open(&self) -> bool {
        self.subscription.is_open()
    }

    /// Why it ended, or `None` while open (see [`Subscription::end`]).
    pub fn end(&self) -> Option<StreamEnd> {
        self.subscription.end()
    }

    /// Waits up to `timeout` for the end (see [`Subscription::wait_end`]); the items
    /// before it stay in the channel.
    pub fn wait_end(&self, timeout: Duration) -> Option<StreamEnd> {
        self.subscription.wait_end(timeout)
    }

    /// Events handed to the puller, events dropped (by the queue or because the channel
    /// was full), and panics (always 0: no user code runs).
    pub fn stats(&self) -> SubscriptionStats {
        // Counted here, after the sink handled them: an event the pool has taken from the
        // queue but not yet handed over is in neither figure.
        let mut stats = self.subscription.stats();
        stats.delivered = self.counts.sent.load(Ordering::Relaxed);
        stats.dropped += self.counts.dropped.load(Ordering::Relaxed);
        stats
    }

    /// Closes the subscription (see [`Subscription::close`]). Items already in the
    /// channel are lost with the handle.
    ///
    /// # Errors
    /// As [`Subscription::close`].
    pub fn close(self) -> Result<()> {
        self.subscription.close()
    }

    /// Starts the staleness watchdog: see [`Subscription::watch_staleness`] (the notice
    /// arrives as [`StreamItem::Stale`]).
    ///
    /// # Errors
    /// As [`Subscription::watch_staleness`].
    pub fn watch_staleness(&self, period: Duration) -> Result<()> {
        self.subscription.watch_staleness(period)
    }

    /// The handle without its channel, for code written against [`Subscription`].
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }
}

impl<'a, E> IntoIterator for &'a PullSubscription<E> {
    type Item = StreamItem<E>;
    type IntoIter = crossbeam_channel::Iter<'a, StreamItem<E>>;
    fn into_iter(self) -> Self::IntoIter {
        self.rx.iter()
    }
}

/// The owning iterator of a [`PullSubscription`]: the subscription stays open while it
/// lives.
#[derive(Debug)]
pub struct IntoIter<E> {
    subscription: PullSubscription<E>,
}

impl<E> Iterator for IntoIter<E> {
    type Item = StreamItem<E>;
    fn next(&mut self) -> Option<Self::Item> {
        self.subscription.recv()
    }
}

impl<E> IntoIterator for PullSubscription<E> {
    type Item = StreamItem<E>;
    type IntoIter = IntoIter<E>;
    fn into_iter(self) -> IntoIter<E> {
        IntoIter { subscription: self }
    }
}

impl Client {
    /// Opens a subscription whose items the caller pulls (see [`PullSubscription`]);
    /// the operation follows from the request's type, so no annotation is needed.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest};
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let subscription = client.pull(SubscribeToTopicRequest::new("hello"))?;
    /// client.publish_to_topic(PublishToTopicRequest::json("hello", serde_json::json!(1)))?;
    /// for item in &subscription {
    ///     if let ggipc::StreamItem::Event(message) = item {
    ///         assert_eq!(message.json(), Some(&serde_json::json!(1)));
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn pull<Q: StreamRequest>(&self, request: Q) -> Result<PullSubscription<EventOf<Q>>> {
        self.pull_with(request, CallOptions::default())
    }

    /// [`Client::pull`] with per-call options (timeout).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let options = ggipc::CallOptions::timeout(std::time::Duration::from_secs(2));
    /// let updates = client.pull_with(ggipc::model::SubscribeToComponentUpdatesRequest::new(), options)?;
    /// assert!(updates.is_open());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn pull_with<Q: StreamRequest>(
        &self,
        request: Q,
        options: CallOptions,
    ) -> Result<PullSubscription<EventOf<Q>>> {
        let events = self.event_queue_capacity();
        let (tx, rx) = bounded(events + NOTICE_ROOM);
        let counts = Arc::new(PullCounts::default());
        let sink = PullSink::<EventOf<Q>> {
            tx,
            events,
            unreported: 0,
            counts: counts.clone(),
        };
        let subscription =
            self.subscribe_sink::<Q::Operation>(&request, Box::new(sink), options)?;
        Ok(PullSubscription {
            subscription,
            rx,
            counts,
            operation: <Q::Operation as Operation>::NAME,
        })
    }
}
