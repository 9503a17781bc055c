//! Calls in flight without a runtime: [`Client::start`](crate::Client::start) sends a
//! request and returns a [`Pending`] at once; the reply is taken later, from the same
//! thread or another one. One thread can keep many calls in flight this way, where the
//! blocking methods need one thread per call.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::VecDeque;
//! use ggipc::model::{PublishToTopic, PublishToTopicRequest};
//! use ggipc::CallOptions;
//!
//! let emulator = ggipc::emulator::Emulator::start()?;
//! let client = emulator.connect()?;
//! // Up to 64 publishes in flight from this one thread.
//! let mut window = VecDeque::new();
//! for i in 0..1000 {
//!     if window.len() == 64 {
//!         let oldest: ggipc::Pending<_> = window.pop_front().unwrap();
//!         oldest.wait()?;
//!     }
//!     let request = PublishToTopicRequest::json("demo/topic", serde_json::json!({ "i": i }));
//!     window.push_back(client.start::<PublishToTopic>(&request, CallOptions::default())?);
//! }
//! for result in ggipc::pending::wait_all(window) {
//!     result?;
//! }
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Select;

use crate::connection::InFlight;
use crate::deadline::deadline_after;
use crate::error::Result;
use crate::link::Link;
use crate::model::Shape;
use crate::subscription::decode_reply;

/// A request/response call whose request is sent and whose reply is taken later: made
/// by [`Client::start`](crate::Client::start).
///
/// * [`wait`](Pending::wait) blocks until the reply arrives or the call's own deadline
///   (its [`CallOptions`](crate::CallOptions) timeout, else the client's request
///   timeout, counted from `start`) passes; [`wait_timeout`](Pending::wait_timeout)
///   gives up earlier; [`try_wait`](Pending::try_wait) never blocks.
/// * Dropping a `Pending` (or giving up on it) **abandons** the call: its entry in the
///   connection is freed at once, and the reply, if it still comes, is discarded. The
///   request itself was already sent: the service may still act on it.
/// * When the connection closes, every `Pending` of it fails promptly with
///   [`Error::Closed`](crate::Error::Closed) (or [`Error::Disconnected`](crate::Error::Disconnected) while the client reconnects); a call
///   is never resent on a new connection.
/// * Many at once: [`wait_any`] (the first reply of several) and [`wait_all`].
///
/// `Pending` is `Send`: it may be waited on by another thread than the one that
/// started it.
pub struct Pending<R> {
    call: InFlight,
    link: Arc<Link>,
    deadline: Instant,
    _response: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Pending<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("stream_id", &self.call.id())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<R: Shape> Pending<R> {
    pub(crate) fn new(call: InFlight, link: Arc<Link>, deadline: Instant) -> Self {
        Pending {
            call,
            link,
            deadline,
            _response: PhantomData,
        }
    }

    /// The call's own deadline: [`wait`](Pending::wait) reports [`Error::Timeout`](crate::Error::Timeout) once
    /// it has passed without a reply.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Waits for the reply until the call's deadline.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
    /// let emulator = ggipc::emulator::Emulator::start()?;
    /// let client = emulator.connect()?;
    /// let request = PublishToTopicRequest::json("demo/topic", serde_json::json!("hello"));
    /// let pending = client.start::<PublishToTopic>(&request, ggipc::CallOptions::default())?;
    /// // ... other work while the request is on its way ...
    /// pending.wait()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::call`](crate::Client::call): [`Error::Service`](crate::Error::Service), [`Error::Timeout`](crate::Error::Timeout)
    /// (`Response`) when the deadline passes, [`Error::Closed`](crate::Error::Closed) or
    /// [`Error::Disconnected`](crate::Error::Disconnected) when the connection is lost, [`Error::Json`](crate::Error::Json).
    pub fn wait(self) -> Result<R> {
        let deadline = self.deadline;
        self.wait_deadline(deadline)
    }

    /// Waits for the reply at most `timeout` (and never past the call's deadline); if it
    /// has not come by then, the call is abandoned.
    ///
    /// # Errors
    /// As [`wait`](Pending::wait); [`Error::Timeout`](crate::Error::Timeout) (`Response`) when `timeout`
    /// passes first.
    pub fn wait_timeout(self, timeout: Duration) -> Result<R> {
        self.wait_deadline(deadline_after(timeout))
    }

    /// Waits for the reply until `deadline` (and never past the call's deadline); if it
    /// has not come by then, the call is abandoned.
    ///
    /// # Errors
    /// As [`wait_timeout`](Pending::wait_timeout).
    pub fn wait_deadline(mut self, deadline: Instant) -> Result<R> {
        let reply = self.call.wait(deadline.min(self.deadline));
        self.finish(reply)
    }

    /// The reply if it has come, without waiting; otherwise the `Pending` back (also
    /// after its deadline: then [`wait`](Pending::wait) reports the timeout).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
    /// let emulator = ggipc::emulator::Emulator::start()?;
    /// let client = emulator.connect()?;
    /// let request = PublishToTopicRequest::json("demo/topic", serde_json::json!(1));
    /// let mut pending = client.start::<PublishToTopic>(&request, ggipc::CallOptions::default())?;
    /// let response = loop {
    ///     match pending.try_wait() {
    ///         Ok(result) => break result?,
    ///         Err(still) => pending = still, // do something else meanwhile
    ///     }
    /// };
    /// # let _ = response;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The inner result: as [`wait`](Pending::wait).
    #[allow(clippy::result_large_err)]
    pub fn try_wait(mut self) -> std::result::Result<Result<R>, Pending<R>> {
        match self.call.try_take() {
            Some(reply) => Ok(self.finish(reply)),
            None => Err(self),
        }
    }

    fn finish(&self, reply: Result<crate::rpc::RpcMessage>) -> Result<R> {
        match reply {
            Ok(message) => decode_reply::<R>(&message),
            Err(e) => Err(self.link.map_err(e)),
        }
    }
}

/// Waits until the first of `pending` has its reply (or its own deadline passes), or
/// until `deadline`: removes that call from the vector and returns its index (before
/// removal) and its result. `None` when `deadline` passed first or `pending` is empty;
/// the calls left in the vector stay in flight.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::model::{PublishToTopic, PublishToTopicRequest};
/// let emulator = ggipc::emulator::Emulator::start()?;
/// let client = emulator.connect()?;
/// let mut pending = Vec::new();
/// for topic in ["a", "b", "c"] {
///     let request = PublishToTopicRequest::json(topic, serde_json::json!(0));
///     pending.push(client.start::<PublishToTopic>(&request, ggipc::CallOptions::default())?);
/// }
/// let deadline = std::time::Instant::now() + Duration::from_secs(5);
/// while let Some((_index, result)) = ggipc::pending::wait_any(&mut pending, deadline) {
///     result?;
/// }
/// assert!(pending.is_empty());
/// # Ok(()) }
/// ```
pub fn wait_any<R: Shape>(
    pending: &mut Vec<Pending<R>>,
    deadline: Instant,
) -> Option<(usize, Result<R>)> {
    let (first_due, due) = pending
        .iter()
        .enumerate()
        .min_by_key(|(_, p)| p.deadline)
        .map(|(i, p)| (i, p.deadline))?;
    let ready = {
        // (Every pending call has a channel: it was started, not called; `never` only
        // keeps the indices in step should one not.)
        let never = crossbeam_channel::never();
        let mut select = Select::new();
        for p in pending.iter() {
            select.recv(p.call.receiver().unwrap_or(&never));
        }
        select.ready_deadline(deadline.min(due))
    };
    let index = match ready {
        Ok(index) => index,
        // The earliest call deadline came first: that call reports its timeout.
        Err(_) if due <= deadline => first_due,
        Err(_) => return None,
    };
    let p = pending.remove(index);
    let own = p.deadline;
    Some((index, p.wait_deadline(own)))
}

/// Waits for every call of `pending`, in order, each until its own deadline; returns
/// their results in the same order.
pub fn wait_all<R: Shape>(pending: impl IntoIterator<Item = Pending<R>>) -> Vec<Result<R>> {
    pending.into_iter().map(Pending::wait).collect()
}
