//! The worker pool that runs subscription handlers: the only code that calls user code.
//!
//! Each subscription owns a [`StreamQueue`]. The I/O thread pushes into it without ever
//! waiting (a full queue drops the new event and counts it). A queue with work is put on
//! the pool's ready channel at most once at a time, so one subscription's events run in
//! order and never concurrently, while different subscriptions run on different workers.
//! A worker runs at most [`BATCH`] items of one queue before putting it back, so a busy
//! subscription cannot starve the others. Every callback runs under `catch_unwind`.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvError, Sender, TryRecvError};
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, StreamEnd};
use crate::rpc::RpcMessage;
use crate::spin;

/// Items one worker runs from one queue before letting other queues go first.
const BATCH: usize = 64;

/// A type-erased subscription handler, as the pool sees it.
pub(crate) trait EventSink: Send {
    /// One message received on the stream after the initial response. Returns why the
    /// stream must be closed, when the handler asked for that.
    fn event(&mut self, message: RpcMessage) -> Option<StreamEnd>;
    /// An error for the stream. Returns why the stream must be closed, if it must.
    fn error(&mut self, error: Error) -> Option<StreamEnd>;
    /// The stream is closed (`end` says why); called exactly once, last.
    fn closed(&mut self, end: &StreamEnd);
    /// `count` events were dropped because the queue was full.
    fn dropped(&mut self, count: u64);
    /// The connection was lost; the client is reconnecting.
    fn interrupted(&mut self, reason: &Error);
    /// The stream was re-established on a new connection.
    fn resumed(&mut self);
    /// No event arrived for `period` (the staleness watchdog); the stream stays open.
    fn stale(&mut self, _period: Duration) {}
}

/// How a subscription ended, once it has: set once (the first cause wins), waited on by
/// the subscription's handle.
#[derive(Debug, Default)]
pub(crate) struct Fate {
    end: Mutex<Option<StreamEnd>>,
    changed: Condvar,
}

impl Fate {
    /// Records `end` unless an end is already recorded.
    pub(crate) fn note(&self, end: StreamEnd) {
        let mut slot = self.end.lock();
        if slot.is_none() {
            *slot = Some(end);
            self.changed.notify_all();
        }
    }

    /// The end, if the stream has ended.
    pub(crate) fn get(&self) -> Option<StreamEnd> {
        self.end.lock().clone()
    }

    /// Waits until the stream has ended or `deadline` passes.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<StreamEnd> {
        let mut slot = self.end.lock();
        while slot.is_none() {
            if self.changed.wait_until(&mut slot, deadline).timed_out() {
                break;
            }
        }
        slot.clone()
    }
}

/// Counters of one subscription.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub panicked: AtomicU64,
}

enum Item {
    Event(RpcMessage),
    Error(Error),
    Interrupted(Error),
    Resumed,
    Stale(Duration),
    Closed,
}

struct QueueState {
    items: VecDeque<Item>,
    queued_bytes: usize,
    scheduled: bool,
    /// Delivery is held (see [`StreamQueue::hold`]): items queue up, no callback runs.
    held: bool,
    accepting: bool,
    dropped_unreported: u64,
    sink: Option<Box<dyn EventSink>>,
    /// When the last event arrived (or the watchdog last reported, or started).
    last_seen: Instant,
    /// The staleness watchdog's period, once watched.
    watch: Option<Duration>,
}

pub(crate) type CloseRequest = Box<dyn FnOnce() + Send>;

/// The queue of one subscription.
pub(crate) struct StreamQueue {
    state: Mutex<QueueState>,
    counters: StreamCounters,
    max_events: usize,
    max_bytes: usize,
    ready: Sender<Task>,
    pool_panics: Arc<AtomicU64>,
    on_close_request: Mutex<Option<CloseRequest>>,
    fate: Arc<Fate>,
    label: String,
}

impl std::fmt::Debug for StreamQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamQueue")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl StreamQueue {
    /// Queues an event. Never blocks; returns false when it was dropped (queue full or
    /// the subscription is closing).
    pub(crate) fn push_event(self: &Arc<Self>, message: RpcMessage) -> bool {
        let len = message.payload.len();
        let mut st = self.state.lock();
        if !st.accepting {
            return false;
        }
        // The byte cap bounds what waits behind an event, never one event: an event of
        // any size the frame limit let through enters a queue with no bytes queued.
        st.last_seen = Instant::now();
        if st.items.len() >= self.max_events
            || (st.queued_bytes > 0 && st.queued_bytes.saturating_add(len) > self.max_bytes)
        {
            st.dropped_unreported += 1;
            // `total` only paces the warning below (mutating `+ 1` changes a log line only).
            let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            drop(st);
            if total.is_power_of_two() {
                log::warn!(
                    "{}: handler queue full, {total} event(s) dropped so far",
                    self.label
                );
            }
            return false;
        }
        st.queued_bytes += len;
        st.last_seen = Instant::now();
        st.items.push_back(Item::Event(message));
        self.schedule(st);
        true
    }

    /// Stops accepting events and queues the end of the stream: `error` (if any) for the
    /// handler's error callback, then the closed callback. Idempotent. Unless an end was
    /// noted before, the stream's fate is "closed by the server" without an error, else
    /// "connection lost" for [`Error::Closed`] and "failed" for any other error.
    pub(crate) fn finish(self: &Arc<Self>, error: Option<Error>) {
        let mut st = self.state.lock();
        if !st.accepting {
            return;
        }
        self.fate.note(StreamEnd::from_finish(error.clone()));
        st.accepting = false;
        self.on_close_request.lock().take();
        if let Some(e) = error {
            st.items.push_back(Item::Error(e));
        }
        st.items.push_back(Item::Closed);
        self.schedule(st);
    }

    /// Ends the stream from the client side: events still queued are discarded (the user
    /// or the handler asked to stop), then the closed callback runs. Idempotent.
    pub(crate) fn close_now(self: &Arc<Self>) {
        self.note_end(StreamEnd::ClosedByClient);
        {
            let mut st = self.state.lock();
            if !st.accepting {
                return;
            }
            st.items.retain(|item| !matches!(item, Item::Event(_)));
            st.queued_bytes = 0;
        }
        self.finish(None);
    }

    /// Queues an error for the handler's error callback; the stream stays open unless the
    /// callback asks to close it.
    pub(crate) fn push_error(self: &Arc<Self>, error: Error) {
        let mut st = self.state.lock();
        if !st.accepting {
            return;
        }
        st.items.push_back(Item::Error(error));
        self.schedule(st);
    }

    /// Queues an interruption notice (the connection was lost, a reconnect is under way).
    /// Control items are queued whatever the bounds: at most two per reconnect.
    pub(crate) fn interrupt(self: &Arc<Self>, reason: Error) {
        let mut st = self.state.lock();
        if !st.accepting {
            return;
        }
        st.items.push_back(Item::Interrupted(reason));
        self.schedule(st);
    }

    /// Queues a resumption notice (the stream is open again on a new connection).
    pub(crate) fn resumed(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if !st.accepting {
            return;
        }
        st.items.push_back(Item::Resumed);
        self.schedule(st);
    }

    /// Starts (or re-times) the staleness watchdog: when no event arrives for `period`,
    /// a stale notice is queued (whatever the bounds: at most one per period), and again
    /// after each further period without one. The watchdog's thread ends when the stream
    /// ends.
    pub(crate) fn watch_staleness(self: &Arc<Self>, period: Duration) -> std::io::Result<()> {
        {
            let mut st = self.state.lock();
            let first = st.watch.is_none();
            st.watch = Some(period);
            st.last_seen = Instant::now();
            if !first || !st.accepting {
                return Ok(());
            }
        }
        let queue = self.clone();
        thread::Builder::new()
            .name("ggipc-watch".into())
            .spawn(move || queue.watchdog())?;
        Ok(())
    }

    fn watchdog(self: &Arc<Self>) {
        loop {
            let due = {
                let st = self.state.lock();
                let (Some(period), true) = (st.watch, st.accepting) else {
                    return;
                };
                st.last_seen.checked_add(period)
            };
            let Some(due) = due else { return };
            // Wakes at once when the stream ends.
            if self.fate.wait_until(due).is_some() {
                return;
            }
            let now = Instant::now();
            let mut st = self.state.lock();
            let Some(period) = st.watch else { return };
            if !st.accepting {
                return;
            }
            if st.last_seen.checked_add(period).is_some_and(|d| d <= now) {
                st.last_seen = now;
                st.items.push_back(Item::Stale(period));
                self.schedule(st);
            }
        }
    }

    /// Holds delivery: items are queued (within the bounds) but no callback runs until
    /// [`release`](Self::release). A subscription's queue is held until its caller has
    /// accepted the initial response, so that a failed subscribe never calls its handler.
    pub(crate) fn hold(&self) {
        self.state.lock().held = true;
    }

    /// Ends a [`hold`](Self::hold): what was queued meanwhile is delivered, in order.
    pub(crate) fn release(self: &Arc<Self>) {
        let mut st = self.state.lock();
        st.held = false;
        if !st.items.is_empty() {
            self.schedule(st);
        }
    }

    /// Whether the stream still delivers (not finished, closed or abandoned).
    pub(crate) fn is_accepting(&self) -> bool {
        self.state.lock().accepting
    }

    /// Drops the handler without calling it: the subscribe call failed, so the caller
    /// hears about it from the call's result instead.
    pub(crate) fn abandon(&self) {
        let sink = {
            let mut st = self.state.lock();
            st.accepting = false;
            st.items.clear();
            st.scheduled = true;
            st.sink.take()
        };
        self.on_close_request.lock().take();
        drop(sink);
    }

    /// Registers what to do when the handler asks to close the stream (send TERMINATE).
    pub(crate) fn set_close_request(&self, f: CloseRequest) {
        *self.on_close_request.lock() = Some(f);
    }

    pub(crate) fn counters(&self) -> &StreamCounters {
        &self.counters
    }

    /// How the stream ended, shared with its handle.
    pub(crate) fn fate(&self) -> &Arc<Fate> {
        &self.fate
    }

    /// Records why the stream is about to end (before the end is queued), unless the
    /// stream has already ended.
    pub(crate) fn note_end(&self, end: StreamEnd) {
        let st = self.state.lock();
        if st.accepting {
            self.fate.note(end);
        }
    }

    fn schedule(self: &Arc<Self>, mut st: parking_lot::MutexGuard<'_, QueueState>) {
        // `scheduled` only saves redundant wake-ups: the sink, taken by `run`, is what keeps
        // one queue on one worker at a time (mutating its `&&` to `||` adds wake-ups only).
        // `held` keeps a queue whose subscribe has no answer yet off the workers.
        if !st.scheduled && !st.held && st.sink.is_some() {
            st.scheduled = true;
            drop(st);
            // The receiver lives as long as any worker; if the pool is gone the items
            // simply stay queued and are dropped with the queue.
            let _ = self.ready.send(Task::Run(self.clone()));
        }
    }

    /// Runs up to `limit` items; returns whether the queue must be scheduled again.
    fn run(self: &Arc<Self>, limit: usize) -> bool {
        let Some(mut sink) = self.state.lock().sink.take() else {
            return false;
        };
        for _ in 0..limit {
            let (item, dropped) = {
                let mut st = self.state.lock();
                match st.items.pop_front() {
                    Some(item) => {
                        if let Item::Event(m) = &item {
                            st.queued_bytes -= m.payload.len();
                        }
                        (item, std::mem::take(&mut st.dropped_unreported))
                    }
                    None => {
                        st.sink = Some(sink);
                        st.scheduled = false;
                        return false;
                    }
                }
            };
            if dropped > 0 {
                self.guard(|| sink.dropped(dropped));
            }
            let close = match item {
                Item::Event(m) => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    self.guard(|| sink.event(m)).flatten()
                }
                Item::Error(e) => self.guard(|| sink.error(e)).flatten(),
                Item::Interrupted(e) => {
                    self.guard(|| sink.interrupted(&e));
                    None
                }
                Item::Resumed => {
                    self.guard(|| sink.resumed());
                    None
                }
                Item::Stale(period) => {
                    self.guard(|| sink.stale(period));
                    None
                }
                Item::Closed => {
                    let end = self.fate.get().unwrap_or(StreamEnd::ClosedByClient);
                    self.guard(|| sink.closed(&end));
                    // The handler is dropped here; the queue stays scheduled forever so
                    // nothing can run it again.
                    return false;
                }
            };
            if let Some(end) = close {
                self.note_end(end);
                let request = self.on_close_request.lock().take();
                if let Some(request) = request {
                    request();
                }
                self.close_now();
            }
        }
        self.state.lock().sink = Some(sink);
        true
    }

    fn guard<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(panic) => {
                self.counters.panicked.fetch_add(1, Ordering::Relaxed);
                self.pool_panics.fetch_add(1, Ordering::Relaxed);
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "<non-string panic>".into());
                log::error!("{}: subscription handler panicked: {text}", self.label);
                None
            }
        }
    }
}

pub(crate) enum Task {
    Run(Arc<StreamQueue>),
    Exit,
}

/// The pool.
pub(crate) struct Dispatcher {
    ready: Sender<Task>,
    workers: Mutex<Vec<(ThreadId, JoinHandle<()>)>>,
    exited: Receiver<ThreadId>,
    panics: Arc<AtomicU64>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("workers", &self.workers.lock().len())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts `threads` workers; an idle one watches for work for up to `spin` before it
    /// sleeps ([`spin::watch`]).
    pub(crate) fn start(threads: usize, spin: Duration) -> std::io::Result<Dispatcher> {
        let (ready, rx) = unbounded::<Task>();
        let (exited_tx, exited) = unbounded();
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = rx.clone();
            let tx = ready.clone();
            let exited_tx = exited_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("ggipc-handler-{i}"))
                .spawn(move || {
                    worker(rx, tx, spin);
                    let _ = exited_tx.send(thread::current().id());
                });
            match spawned {
                Ok(handle) => workers.push((handle.thread().id(), handle)),
                Err(e) => {
                    // Stop the workers already started: they would wait forever.
                    for _ in &workers {
                        let _ = ready.send(Task::Exit);
                    }
                    for (_, handle) in workers {
                        let _ = handle.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Dispatcher {
            ready,
            workers: Mutex::new(workers),
            exited,
            panics: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A queue for a new subscription whose handler is `sink`.
    pub(crate) fn queue(
        &self,
        sink: Box<dyn EventSink>,
        max_events: usize,
        max_bytes: usize,
        label: String,
    ) -> Arc<StreamQueue> {
        Arc::new(StreamQueue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                queued_bytes: 0,
                scheduled: false,
                held: false,
                accepting: true,
                dropped_unreported: 0,
                sink: Some(sink),
                last_seen: Instant::now(),
                watch: None,
            }),
            counters: StreamCounters::default(),
            max_events,
            max_bytes,
            ready: self.ready.clone(),
            pool_panics: self.panics.clone(),
            on_close_request: Mutex::new(None),
            fate: Arc::new(Fate::default()),
            label,
        })
    }

    /// Handler panics caught so far, over every subscription.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Lets the workers finish what is queued, then stops them, waiting until `deadline`.
    /// The current thread is not waited for (close from inside a handler). Returns the
    /// number of workers still running at the deadline (left detached).
    pub(crate) fn shutdown(&self, deadline: Instant) -> usize {
        let workers = std::mem::take(&mut *self.workers.lock());
        for _ in 0..workers.len() {
            let _ = self.ready.send(Task::Exit);
        }
        let me = thread::current().id();
        let mut waiting: Vec<_> = workers.into_iter().filter(|(id, _)| *id != me).collect();
        while !waiting.is_empty() {
            match self.exited.recv_deadline(deadline) {
                Ok(id) => {
                    if let Some(pos) = waiting.iter().position(|(w, _)| *w == id) {
                        let (_, handle) = waiting.swap_remove(pos);
                        let _ = handle.join();
                    }
                }
                Err(_) => break,
            }
        }
        // Only a log line depends on this test (the count is returned either way).
        if !waiting.is_empty() {
            log::warn!(
                "{} handler thread(s) still busy at shutdown; left to finish on their own",
                waiting.len()
            );
        }
        waiting.len()
    }
}

fn worker(rx: Receiver<Task>, tx: Sender<Task>, spin: Duration) {
    // Events often come in a stream: a worker that has just run its tasks watches for
    // the next for a while, rather than going to sleep and being woken for each one.
    let next = || {
        spin::watch(spin, None, || match rx.try_recv() {
            Ok(task) => Some(Ok(task)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => None,
        })
        .unwrap_or_else(|| rx.recv())
    };
    while let Ok(task) = next() {
        match task {
            Task::Run(queue) => {
                if queue.run(BATCH) {
                    let _ = tx.send(Task::Run(queue));
                }
            }
            Task::Exit => {
                // Finish whatever is still queued (closed callbacks) before leaving.
                while let Ok(task) = rx.try_recv() {
                    match task {
                        Task::Run(queue) => while queue.run(usize::MAX) {},
                        Task::Exit => {
                            // Another worker's exit token: hand it back.
                            let _ = tx.send(Task::Exit);
                            break;
                        }
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pool's bookkeeping, observed through a recording handler. Every wait is bounded.

    use std::time::Duration;

    use crossbeam_channel::{bounded, Receiver, Sender};

    use super::*;
    use crate::error::TimeoutKind;
    use crate::rpc::MessageType;

    const WAIT: Duration = Duration::from_secs(5);

    #[derive(Debug, PartialEq)]
    enum Seen {
        Event(usize),
        Error,
        Closed,
        Dropped(u64),
        Interrupted,
        Resumed,
    }

    /// An event of this length makes the handler panic (after recording it).
    const PANIC: usize = 13;
    /// An event of this length makes the handler ask to close the stream.
    const CLOSE: usize = 99;

    /// Records every callback; each event first waits (bounded) for a token on `gate`, if any.
    struct Recorder {
        seen: Sender<Seen>,
        gate: Option<Receiver<()>>,
    }

    impl EventSink for Recorder {
        fn event(&mut self, message: RpcMessage) -> Option<StreamEnd> {
            let len = message.payload.len();
            let _ = self.seen.send(Seen::Event(len));
            if let Some(gate) = &self.gate {
                let _ = gate.recv_timeout(WAIT);
            }
            assert_ne!(len, PANIC, "the handler panics");
            (len == CLOSE).then_some(StreamEnd::ClosedByClient)
        }
        fn error(&mut self, _error: Error) -> Option<StreamEnd> {
            let _ = self.seen.send(Seen::Error);
            None
        }
        fn closed(&mut self, _end: &StreamEnd) {
            let _ = self.seen.send(Seen::Closed);
        }
        fn dropped(&mut self, count: u64) {
            let _ = self.seen.send(Seen::Dropped(count));
        }
        fn interrupted(&mut self, _reason: &Error) {
            let _ = self.seen.send(Seen::Interrupted);
        }
        fn resumed(&mut self) {
            let _ = self.seen.send(Seen::Resumed);
        }
    }

    /// A pool of one worker and a queue whose handler never waits.
    fn ungated() -> (Dispatcher, Arc<StreamQueue>, Receiver<Seen>) {
        let pool = Dispatcher::start(1, Duration::ZERO).unwrap();
        let (seen_tx, seen) = bounded(64);
        let queue = pool.queue(
            Box::new(Recorder {
                seen: seen_tx,
                gate: None,
            }),
            100,
            1 << 20,
            "test-queue".into(),
        );
        (pool, queue, seen)
    }

    fn event(len: usize) -> RpcMessage {
        let mut m = RpcMessage::new(MessageType::ApplicationMessage, 0, 1);
        m.payload = vec![b'x'; len].into();
        m
    }

    fn next(seen: &Receiver<Seen>, what: &str) -> Seen {
        seen.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
    }

    /// A pool of one worker and a queue whose handler blocks on each event until released.
    fn gated(
        max_events: usize,
        max_bytes: usize,
    ) -> (Dispatcher, Arc<StreamQueue>, Receiver<Seen>, Sender<()>) {
        let pool = Dispatcher::start(1, Duration::ZERO).unwrap();
        let (seen_tx, seen) = bounded(64);
        let (gate_tx, gate) = bounded(64);
        let queue = pool.queue(
            Box::new(Recorder {
                seen: seen_tx,
                gate: Some(gate),
            }),
            max_events,
            max_bytes,
            "test".into(),
        );
        (pool, queue, seen, gate_tx)
    }

    #[test]
    fn the_byte_bound_counts_what_waits_and_never_refuses_one_event_alone() {
        let (pool, queue, seen, gate) = gated(100, 10);
        // Alone in the queue, an event larger than the byte bound is accepted.
        assert!(
            queue.push_event(event(50)),
            "one event over the bound, queue empty"
        );
        assert_eq!(next(&seen, "the large event"), Seen::Event(50));
        // It is being handled (off the queue): what waits behind it is bounded.
        assert!(queue.push_event(event(6)));
        assert!(
            queue.push_event(event(4)),
            "6 + 4 bytes is exactly the bound"
        );
        assert!(!queue.push_event(event(1)), "one byte more is over it");
        for len in [6, 4] {
            gate.send(()).unwrap();
            if len == 6 {
                assert_eq!(next(&seen, "the drop report"), Seen::Dropped(1));
            }
            assert_eq!(next(&seen, "a queued event"), Seen::Event(len));
        }
        gate.send(()).unwrap();
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn a_held_queue_delivers_nothing_until_released_then_everything_in_order() {
        let (pool, queue, seen) = ungated();
        queue.hold();
        assert!(queue.push_event(event(1)));
        assert!(queue.push_event(event(2)));
        queue.push_error(Error::Timeout(TimeoutKind::Response));
        // Held: nothing reaches the handler, however long it is given.
        assert!(
            seen.recv_timeout(Duration::from_millis(200)).is_err(),
            "a held queue delivered"
        );
        queue.release();
        assert_eq!(next(&seen, "the first event"), Seen::Event(1));
        assert_eq!(next(&seen, "the second event"), Seen::Event(2));
        assert_eq!(next(&seen, "the error"), Seen::Error);
        // Released: what comes next is delivered at once.
        assert!(queue.push_event(event(3)));
        assert_eq!(next(&seen, "an event after the release"), Seen::Event(3));
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn a_delivered_event_releases_its_bytes_and_an_event_of_exactly_the_byte_bound_fits() {
        let (pool, queue, seen, gate) = gated(100, 10);
        assert!(queue.push_event(event(6)));
        assert_eq!(next(&seen, "the first event"), Seen::Event(6));
        gate.send(()).unwrap();
        // The first event's bytes were released when it was taken off the queue, so an
        // event of exactly the bound is accepted into the (empty) queue.
        assert!(queue.push_event(event(10)), "an event of exactly max_bytes");
        assert_eq!(next(&seen, "the second event"), Seen::Event(10));
        // While it runs, the queue is empty again: one more byte-bound event fits, and
        // then nothing more (its bytes are held until it is taken).
        assert!(queue.push_event(event(10)));
        assert!(!queue.push_event(event(1)), "one byte over the bound");
        gate.send(()).unwrap();
        // The drop is reported before the next item runs.
        assert_eq!(next(&seen, "the drop report"), Seen::Dropped(1));
        assert_eq!(next(&seen, "the third event"), Seen::Event(10));
        gate.send(()).unwrap();
        assert_eq!(queue.counters().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(queue.counters().delivered.load(Ordering::Relaxed), 3);
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn the_event_bound_counts_queued_events_not_the_one_running() {
        let (pool, queue, seen, gate) = gated(2, 1 << 20);
        assert!(queue.push_event(event(1)));
        assert_eq!(next(&seen, "the running event"), Seen::Event(1));
        assert!(queue.push_event(event(2)));
        assert!(queue.push_event(event(3)));
        assert!(!queue.push_event(event(4)), "a third queued event");
        for _ in 0..3 {
            gate.send(()).unwrap();
        }
        assert_eq!(next(&seen, "the drop report"), Seen::Dropped(1));
        assert_eq!(next(&seen, "event 2"), Seen::Event(2));
        assert_eq!(next(&seen, "event 3"), Seen::Event(3));
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn no_drop_report_is_made_when_nothing_was_dropped() {
        let (pool, queue, seen) = ungated();
        for len in 1..=3 {
            assert!(queue.push_event(event(len)));
        }
        queue.finish(None);
        let all: Vec<Seen> = (0..4).map(|_| next(&seen, "a callback")).collect();
        assert_eq!(
            all,
            [Seen::Event(1), Seen::Event(2), Seen::Event(3), Seen::Closed]
        );
        pool.shutdown(Instant::now() + WAIT);
        assert!(seen.try_recv().is_err(), "no further callback");
    }

    #[test]
    fn close_now_discards_queued_events_but_keeps_queued_errors() {
        let (pool, queue, seen, gate) = gated(100, 1 << 20);
        assert!(queue.push_event(event(1)));
        assert_eq!(next(&seen, "the running event"), Seen::Event(1));
        assert!(queue.push_event(event(2)));
        queue.push_error(Error::Timeout(TimeoutKind::Response));
        queue.close_now();
        assert!(!queue.is_accepting());
        assert!(
            !queue.push_event(event(3)),
            "closed: nothing more is queued"
        );
        gate.send(()).unwrap();
        assert_eq!(next(&seen, "the queued error"), Seen::Error);
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        pool.shutdown(Instant::now() + WAIT);
        assert!(seen.try_recv().is_err(), "the queued event was discarded");
    }

    #[test]
    fn close_now_releases_the_bytes_of_the_events_it_discards() {
        let (pool, queue, seen, gate) = gated(100, 10);
        assert!(queue.push_event(event(1)));
        assert_eq!(next(&seen, "the running event"), Seen::Event(1));
        assert!(queue.push_event(event(10)));
        queue.close_now();
        gate.send(()).unwrap();
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        assert_eq!(queue.state.lock().queued_bytes, 0);
        pool.shutdown(Instant::now() + WAIT);
    }

    /// Sends, from each event's handler, the worker thread's record of its watches.
    struct WatchRecorder(Sender<crate::spin::Spin>);

    impl EventSink for WatchRecorder {
        fn event(&mut self, _message: RpcMessage) -> Option<StreamEnd> {
            let _ = self.0.send(crate::spin::record());
            None
        }
        fn error(&mut self, _error: Error) -> Option<StreamEnd> {
            None
        }
        fn closed(&mut self, _end: &StreamEnd) {}
        fn dropped(&mut self, _count: u64) {}
        fn interrupted(&mut self, _reason: &Error) {}
        fn resumed(&mut self) {}
    }

    #[test]
    fn an_idle_worker_watches_for_work_before_it_sleeps() {
        let pool = Dispatcher::start(1, Duration::from_micros(200)).unwrap();
        let (tx, records) = bounded(4);
        let queue = pool.queue(Box::new(WatchRecorder(tx)), 100, 1 << 20, "q".into());
        // (The worker may already have watched, and missed, before this first event.)
        assert!(queue.push_event(event(1)));
        records.recv_timeout(WAIT).unwrap();
        // Nothing for 30 ms: the worker's watch misses (or, after a first miss, it
        // sleeps at once, as its record says), and this event wakes it.
        thread::sleep(Duration::from_millis(30));
        assert!(queue.push_event(event(2)));
        let record = records.recv_timeout(WAIT).unwrap();
        // (Read here, not asked of `spin::several_cpus`: one CPU never watches.)
        let status = std::fs::read("/proc/self/status").unwrap_or_default();
        match crate::spin::several_allowed(&status) {
            true => assert_eq!(record.misses, 1, "{record:?}"),
            false => assert_eq!(record, crate::spin::Spin::default()),
        }
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn shutdown_waits_for_a_busy_worker_to_finish_what_is_queued() {
        let (pool, queue, seen, gate) = gated(100, 1 << 20);
        assert!(queue.push_event(event(1)));
        assert_eq!(next(&seen, "the running event"), Seen::Event(1));
        queue.finish(None);
        let release = thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            gate.send(()).unwrap();
        });
        let left = pool.shutdown(Instant::now() + WAIT);
        assert_eq!(left, 0, "every worker stopped before the deadline");
        // shutdown returned only after the worker ran the closed callback.
        assert_eq!(seen.try_recv(), Ok(Seen::Closed));
        release.join().unwrap();
    }

    #[test]
    fn shutdown_gives_up_at_its_deadline_and_counts_the_busy_worker() {
        let (pool, queue, seen, gate) = gated(100, 1 << 20);
        assert!(queue.push_event(event(1)));
        assert_eq!(next(&seen, "the running event"), Seen::Event(1));
        let left = pool.shutdown(Instant::now() + Duration::from_millis(50));
        assert_eq!(left, 1, "the worker is still in the handler");
        gate.send(()).unwrap();
    }

    #[test]
    fn a_panicking_handler_is_counted_and_keeps_receiving() {
        let (pool, queue, seen) = ungated();
        assert!(queue.push_event(event(PANIC)));
        assert!(queue.push_event(event(PANIC)));
        assert!(queue.push_event(event(2)));
        assert_eq!(next(&seen, "the panicking event"), Seen::Event(PANIC));
        assert_eq!(next(&seen, "the panicking event"), Seen::Event(PANIC));
        assert_eq!(next(&seen, "the next event"), Seen::Event(2));
        assert_eq!(queue.counters().panicked.load(Ordering::Relaxed), 2);
        assert_eq!(queue.counters().delivered.load(Ordering::Relaxed), 3);
        assert_eq!(pool.panics(), 2);
        assert!(queue.is_accepting());
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn a_handler_asking_to_close_runs_the_close_request_once_and_ends_the_stream() {
        let (pool, queue, seen, gate) = gated(100, 1 << 20);
        let (asked_tx, asked) = bounded(4);
        queue.set_close_request(Box::new(move || {
            let _ = asked_tx.send(());
        }));
        assert!(queue.push_event(event(CLOSE)));
        assert_eq!(next(&seen, "the closing event"), Seen::Event(CLOSE));
        assert!(
            queue.push_event(event(2)),
            "queued before the handler returned"
        );
        gate.send(()).unwrap();
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        assert!(asked.recv_timeout(WAIT).is_ok(), "the close request ran");
        assert!(!queue.is_accepting());
        pool.shutdown(Instant::now() + WAIT);
        assert!(asked.try_recv().is_err(), "once");
        assert!(seen.try_recv().is_err(), "the queued event was discarded");
    }

    #[test]
    fn a_finished_stream_does_not_run_its_close_request() {
        let (pool, queue, seen) = ungated();
        let (asked_tx, asked) = bounded(4);
        queue.set_close_request(Box::new(move || {
            let _ = asked_tx.send(());
        }));
        queue.finish(None);
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        pool.shutdown(Instant::now() + WAIT);
        assert!(asked.try_recv().is_err());
    }

    #[test]
    fn interruptions_errors_and_resumptions_run_in_order_and_stop_after_the_end() {
        let (pool, queue, seen) = ungated();
        queue.interrupt(Error::Timeout(TimeoutKind::Connect));
        queue.resumed();
        queue.push_error(Error::Timeout(TimeoutKind::Response));
        assert!(queue.push_event(event(1)));
        queue.finish(Some(Error::Timeout(TimeoutKind::Write)));
        // After the end nothing more is queued.
        queue.finish(None);
        queue.close_now();
        queue.interrupt(Error::Timeout(TimeoutKind::Connect));
        queue.resumed();
        queue.push_error(Error::Timeout(TimeoutKind::Response));
        assert!(!queue.push_event(event(2)));
        let all: Vec<Seen> = (0..6).map(|_| next(&seen, "a callback")).collect();
        assert_eq!(
            all,
            [
                Seen::Interrupted,
                Seen::Resumed,
                Seen::Error,
                Seen::Event(1),
                Seen::Error,
                Seen::Closed
            ]
        );
        pool.shutdown(Instant::now() + WAIT);
        assert!(seen.try_recv().is_err(), "no callback after the end");
    }

    #[test]
    fn an_abandoned_queue_never_calls_its_handler() {
        let (pool, queue, seen, gate) = gated(100, 1 << 20);
        let (asked_tx, asked) = bounded(4);
        queue.set_close_request(Box::new(move || {
            let _ = asked_tx.send(());
        }));
        queue.abandon();
        assert!(!queue.is_accepting());
        assert!(!queue.push_event(event(1)));
        queue.push_error(Error::Timeout(TimeoutKind::Response));
        queue.finish(None);
        drop(gate);
        pool.shutdown(Instant::now() + WAIT);
        assert!(seen.try_recv().is_err());
        assert!(asked.try_recv().is_err());
    }

    #[test]
    fn the_first_end_noted_is_the_fate_and_finish_records_one_when_none_was_noted() {
        let (pool, queue, seen) = ungated();
        assert!(queue.fate().get().is_none());
        assert!(queue
            .fate()
            .wait_until(Instant::now() + Duration::from_millis(10))
            .is_none());
        // A server-side finish with a lost connection...
        queue.finish(Some(Error::Closed(crate::error::CloseReason::PeerClosed)));
        assert!(matches!(
            queue.fate().get(),
            Some(StreamEnd::ConnectionLost(Error::Closed(_)))
        ));
        // ...is not overwritten by a later client-side close.
        queue.close_now();
        queue.note_end(StreamEnd::ClosedByClient);
        assert!(matches!(
            queue.fate().wait_until(Instant::now() + WAIT),
            Some(StreamEnd::ConnectionLost(_))
        ));
        assert_eq!(next(&seen, "the error"), Seen::Error);
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        pool.shutdown(Instant::now() + WAIT);

        // A client close noted first wins over the finish that follows it.
        let (pool, queue, _seen) = ungated();
        queue.note_end(StreamEnd::ClosedByClient);
        queue.finish(None);
        assert!(matches!(
            queue.fate().get(),
            Some(StreamEnd::ClosedByClient)
        ));
        pool.shutdown(Instant::now() + WAIT);

        // A plain finish: closed by the server.
        let (pool, queue, _seen) = ungated();
        queue.finish(None);
        assert!(matches!(
            queue.fate().get(),
            Some(StreamEnd::ClosedByServer)
        ));
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn a_handler_that_closes_on_an_event_records_its_cause() {
        let (pool, queue, seen) = ungated();
        assert!(queue.push_event(event(CLOSE)));
        assert_eq!(next(&seen, "the closing event"), Seen::Event(CLOSE));
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        assert!(matches!(
            queue.fate().wait_until(Instant::now() + WAIT),
            Some(StreamEnd::ClosedByClient)
        ));
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn the_watchdog_queues_a_stale_notice_and_stops_with_the_stream() {
        struct Stale(Sender<Duration>);
        impl EventSink for Stale {
            fn event(&mut self, _m: RpcMessage) -> Option<StreamEnd> {
                None
            }
            fn error(&mut self, _e: Error) -> Option<StreamEnd> {
                None
            }
            fn closed(&mut self, _end: &StreamEnd) {}
            fn dropped(&mut self, _count: u64) {}
            fn interrupted(&mut self, _reason: &Error) {}
            fn resumed(&mut self) {}
            fn stale(&mut self, period: Duration) {
                let _ = self.0.send(period);
            }
        }
        let pool = Dispatcher::start(1, Duration::ZERO).unwrap();
        let (tx, rx) = bounded(16);
        let queue = pool.queue(Box::new(Stale(tx)), 10, 1 << 20, "stale".into());
        let period = Duration::from_millis(30);
        queue.watch_staleness(period).unwrap();
        assert_eq!(rx.recv_timeout(WAIT), Ok(period));
        // The stream ends: the watchdog stops queueing (its thread ending is checked in
        // tests/pull.rs), and the sink is dropped after its closed callback.
        queue.finish(None);
        assert!(!queue.is_accepting());
        pool.shutdown(Instant::now() + WAIT);
    }

    #[test]
    fn debug_names_the_queue_and_counts_the_workers() {
        let (pool, queue, _seen) = ungated();
        assert!(format!("{queue:?}").contains("test-queue"));
        let pool_text = format!("{pool:?}");
        assert!(pool_text.contains("workers: 1"), "{pool_text}");
        pool.shutdown(Instant::now() + WAIT);
        assert!(format!("{pool:?}").contains("workers: 0"));
    }

    #[test]
    fn one_busy_subscription_does_not_hold_up_another() {
        // Two workers, two queues: while the first handler blocks, the second runs.
        let pool = Dispatcher::start(2, Duration::ZERO).unwrap();
        let (seen_a_tx, seen_a) = bounded(64);
        let (gate_tx, gate) = bounded(64);
        let a = pool.queue(
            Box::new(Recorder {
                seen: seen_a_tx,
                gate: Some(gate),
            }),
            100,
            1 << 20,
            "a".into(),
        );
        let (seen_b_tx, seen_b) = bounded(64);
        let b = pool.queue(
            Box::new(Recorder {
                seen: seen_b_tx,
                gate: None,
            }),
            100,
            1 << 20,
            "b".into(),
        );
        assert!(a.push_event(event(1)));
        assert_eq!(next(&seen_a, "a blocks"), Seen::Event(1));
        assert!(b.push_event(event(2)));
        assert_eq!(next(&seen_b, "b runs meanwhile"), Seen::Event(2));
        gate_tx.send(()).unwrap();
        assert_eq!(pool.shutdown(Instant::now() + WAIT), 0);
    }

    #[test]
    fn a_queue_longer_than_a_batch_is_delivered_whole_and_in_order() {
        let pool = Dispatcher::start(1, Duration::ZERO).unwrap();
        let (seen_tx, seen) = bounded(1024);
        let queue = pool.queue(
            Box::new(Recorder {
                seen: seen_tx,
                gate: None,
            }),
            1000,
            1 << 20,
            "long".into(),
        );
        let n = BATCH * 3 + 5;
        // Sizes above PANIC and CLOSE: these events are ordinary ones.
        let size = |i: usize| 1000 + i;
        for i in 1..=n {
            assert!(queue.push_event(event(size(i))));
        }
        queue.finish(None);
        for i in 1..=n {
            assert_eq!(next(&seen, "an event"), Seen::Event(size(i)));
        }
        assert_eq!(next(&seen, "the end"), Seen::Closed);
        pool.shutdown(Instant::now() + WAIT);
    }
}
