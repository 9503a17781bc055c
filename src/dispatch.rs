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
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::error::Error;
use crate::rpc::RpcMessage;

/// Items one worker runs from one queue before letting other queues go first.
const BATCH: usize = 64;

/// A type-erased subscription handler, as the pool sees it.
pub(crate) trait EventSink: Send {
    /// One message received on the stream after the initial response. Returns whether the
    /// handler asked for the stream to be closed.
    fn event(&mut self, message: RpcMessage) -> bool;
    /// An error for the stream. Returns whether to close the stream.
    fn error(&mut self, error: Error) -> bool;
    /// The stream is closed; called exactly once, last.
    fn closed(&mut self);
    /// `count` events were dropped because the queue was full.
    fn dropped(&mut self, count: u64);
    /// The connection was lost; the client is reconnecting.
    fn interrupted(&mut self, reason: &Error);
    /// The stream was re-established on a new connection.
    fn resumed(&mut self);
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
}

type CloseRequest = Box<dyn FnOnce() + Send>;

/// The queue of one subscription.
pub(crate) struct StreamQueue {
    state: Mutex<QueueState>,
    counters: StreamCounters,
    max_events: usize,
    max_bytes: usize,
    ready: Sender<Task>,
    pool_panics: Arc<AtomicU64>,
    on_close_request: Mutex<Option<CloseRequest>>,
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
        if st.items.len() >= self.max_events
            || (st.queued_bytes > 0 && st.queued_bytes.saturating_add(len) > self.max_bytes)
        {
            st.dropped_unreported += 1;
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
        st.items.push_back(Item::Event(message));
        self.schedule(st);
        true
    }

    /// Stops accepting events and queues the end of the stream: `error` (if any) for the
    /// handler's error callback, then the closed callback. Idempotent.
    pub(crate) fn finish(self: &Arc<Self>, error: Option<Error>) {
        let mut st = self.state.lock();
        if !st.accepting {
            return;
        }
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

    fn schedule(self: &Arc<Self>, mut st: parking_lot::MutexGuard<'_, QueueState>) {
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
                    self.guard(|| sink.event(m)).unwrap_or(false)
                }
                Item::Error(e) => self.guard(|| sink.error(e)).unwrap_or(false),
                Item::Interrupted(e) => {
                    self.guard(|| sink.interrupted(&e));
                    false
                }
                Item::Resumed => {
                    self.guard(|| sink.resumed());
                    false
                }
                Item::Closed => {
                    self.guard(|| sink.closed());
                    // The handler is dropped here; the queue stays scheduled forever so
                    // nothing can run it again.
                    return false;
                }
            };
            if close {
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
    /// Starts `threads` workers.
    pub(crate) fn start(threads: usize) -> std::io::Result<Dispatcher> {
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
                    worker(rx, tx);
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
            }),
            counters: StreamCounters::default(),
            max_events,
            max_bytes,
            ready: self.ready.clone(),
            pool_panics: self.panics.clone(),
            on_close_request: Mutex::new(None),
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
        if !waiting.is_empty() {
            log::warn!(
                "{} handler thread(s) still busy at shutdown; left to finish on their own",
                waiting.len()
            );
        }
        waiting.len()
    }
}

fn worker(rx: Receiver<Task>, tx: Sender<Task>) {
    while let Ok(task) = rx.recv() {
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
