//! The outbound side of one emulator connection: a bounded queue of encoded frames,
//! written by the connection's reading thread (its replies, at each pause in its reading)
//! or by its writer thread (events pushed while the reading thread waits), several queued
//! frames per write, under one total deadline per write.
//!
//! # Policy
//! - **Events** (stream messages pushed by publishers, the cloud stand-in, configuration
//!   and lifecycle notifications, scripted pushes) are queued without ever blocking the
//!   thread that pushes them. When the connection's queue already holds
//!   `max_events` events, or `max_bytes` bytes and the event would not fit, the event is
//!   **dropped**: counted (per connection and in [`Emulator::dropped_events`]), logged at
//!   warn when a run of drops starts and summarized when it ends. An event always fits an
//!   empty queue, whatever its size. A publish therefore returns as soon as the event is
//!   queued, whatever any subscriber does. Queuing an event wakes the writer thread,
//!   unless the connection's own reading thread queues it (a component publishing to
//!   its own subscription): that thread writes the queue before it next waits, so the
//!   event leaves with the publish's reply.
//! - **Replies** (responses, errors, the CONNECT_ACK, PING responses, a subscription's
//!   response and its initial events) are never dropped. Only the connection's own
//!   reading thread queues them, and it writes them itself ([`Outbound::write_queued`])
//!   once it has served every request it has read, before it reads again: replies to
//!   requests that arrived together leave together, with no thread woken to write them.
//!   While it waits for room (the queue holds `max_bytes` or more) it writes too, so a
//!   component that does not read its replies only slows itself.
//! - **Writes**: one thread at a time holds the write role (a flag under the queue's
//!   lock): it takes every frame queued (up to [`BATCH_BYTES`] together; a larger frame
//!   alone) and writes them with one `write`, until the queue is empty. Each write must be
//!   whole within the write deadline ([`EmulatorBuilder::write_timeout`], default 5 s),
//!   counted from the first byte, not restarted by partial writes. A write that misses it
//!   closes the connection (logged at warn), so a subscriber that stops reading is
//!   dropped after that deadline.
//!
//! [`Emulator::dropped_events`]: crate::emulator::Emulator::dropped_events
//! [`EmulatorBuilder::write_timeout`]: crate::emulator::EmulatorBuilder::write_timeout

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::connection::WriteTimeout;

/// How long a thread waiting for room sleeps before checking the connection again.
const ROOM_POLL: Duration = Duration::from_millis(100);

/// Most bytes of queued frames the writer joins into one write (a larger frame is
/// written alone, uncopied).
const BATCH_BYTES: usize = 64 * 1024;

/// What the writer takes from the queue for one write.
enum Batch {
    /// One frame, written as it is.
    One(Bytes),
    /// Several frames, joined in the writer's buffer.
    Joined,
}

/// One queued item.
enum Item {
    /// An encoded frame (or raw bytes from fault injection); `true` = an event.
    Frame(Bytes, bool),
    /// Write what is before it, then close.
    Close,
}

/// The queue's state, behind its lock.
pub(crate) struct Queue {
    items: VecDeque<Item>,
    /// Bytes of the queued frames.
    bytes: usize,
    /// Queued events.
    events: usize,
    /// No more items are accepted; the writer stops.
    closed: bool,
    /// A `Close` is queued: events are refused, replies still accepted.
    finishing: bool,
    /// Once finishing: no frame may be written past this instant.
    finish_by: Option<Instant>,
    /// A thread holds the write role: it writes what is queued until the queue is empty.
    writing: bool,
    /// The socket's write timeout as last set, handed from one holder of the role to
    /// the next.
    timeout: WriteTimeout,
    /// Drops of the current run (reset when an event fits again).
    dropping: u64,
    /// Drops on this connection.
    dropped: u64,
    /// The connection's reading thread, once it runs: an event it queues itself (a
    /// component publishing to its own subscription) does not wake the writer thread, as
    /// the reading thread writes the queue before it next waits.
    reader: Option<ThreadId>,
}

/// The bounded outbound queue of one connection.
pub(crate) struct Outbound {
    queue: Mutex<Queue>,
    /// Signalled when an event is queued, the write role is released with items left,
    /// or the queue finishes or closes (the writer thread waits on it).
    ready: Condvar,
    /// Signalled when bytes leave the queue or it closes.
    room: Condvar,
    max_events: usize,
    max_bytes: usize,
    /// The emulator's total of dropped events.
    dropped_total: Arc<AtomicU64>,
    /// For log lines: `component (connection #id)`.
    who: String,
}

impl Outbound {
    pub(crate) fn new(
        max_events: usize,
        max_bytes: usize,
        dropped_total: Arc<AtomicU64>,
        who: String,
    ) -> Outbound {
        Outbound {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                events: 0,
                closed: false,
                finishing: false,
                finish_by: None,
                writing: false,
                timeout: WriteTimeout::default(),
                dropping: 0,
                dropped: 0,
                reader: None,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            max_events,
            max_bytes,
            dropped_total,
            who,
        }
    }

    /// Locks the queue (to queue several replies, or a reply and a registration, with no
    /// event in between).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock()
    }

    /// Records the calling thread as the connection's reading thread (see
    /// [`Outbound::push_event`]).
    pub(crate) fn set_reader(&self) {
        self.queue.lock().reader = Some(thread::current().id());
    }

    /// Queues a reply (never dropped) without waking the writer thread: the reading thread
    /// that queues it writes it at its next [`Outbound::write_queued`] (or while it waits
    /// for room); false when the connection is closed.
    pub(crate) fn push_reply_locked(&self, q: &mut Queue, frame: Bytes) -> bool {
        if q.closed {
            return false;
        }
        q.bytes += frame.len();
        q.items.push_back(Item::Frame(frame, false));
        true
    }

    /// As [`Outbound::push_reply_locked`].
    pub(crate) fn push_reply(&self, frame: Bytes) -> bool {
        let mut q = self.queue.lock();
        self.push_reply_locked(&mut q, frame)
    }

    /// Queues an event without blocking; false when it was dropped (queue full, counted
    /// and logged) or the connection is closing. It wakes the writer thread, unless the
    /// connection's own reading thread queues it: that thread writes what is queued
    /// before it next waits ([`Outbound::write_queued`], [`Outbound::wait_for_room`]), so
    /// the event leaves with the reply to the publish that sent it.
    pub(crate) fn push_event(&self, frame: Bytes) -> bool {
        let mut q = self.queue.lock();
        self.push_event_locked(&mut q, frame)
    }

    fn push_event_locked(&self, q: &mut Queue, frame: Bytes) -> bool {
        if q.closed || q.finishing {
            return false;
        }
        let full = q.events >= self.max_events
            || (!q.items.is_empty() && q.bytes + frame.len() > self.max_bytes);
        if full {
            q.dropping += 1;
            q.dropped += 1;
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            if q.dropping == 1 {
                log::warn!(
                    "the outbound queue of {} is full ({} events, {} bytes; \
                     limits {} events, {} bytes): dropping its events until it drains",
                    self.who,
                    q.events,
                    q.bytes,
                    self.max_events,
                    self.max_bytes
                );
            }
            return false;
        }
        self.end_drop_run(q);
        q.bytes += frame.len();
        q.events += 1;
        q.items.push_back(Item::Frame(frame, true));
        if q.reader != Some(thread::current().id()) {
            self.ready.notify_one();
        }
        true
    }

    /// As [`Outbound::push_event`], but waits up to `within` for room first (for the
    /// emulator's own test-side calls, such as `Emulator::publish`, never for a
    /// component's call).
    pub(crate) fn push_event_waiting(&self, frame: Bytes, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut q = self.queue.lock();
        while !q.closed
            && !q.finishing
            && (q.events >= self.max_events
                || (!q.items.is_empty() && q.bytes + frame.len() > self.max_bytes))
            && Instant::now() < deadline
        {
            let until = deadline.min(Instant::now() + ROOM_POLL);
            self.room.wait_until(&mut q, until);
        }
        self.push_event_locked(&mut q, frame)
    }

    fn end_drop_run(&self, q: &mut Queue) {
        if q.dropping > 0 {
            log::warn!(
                "dropped {} events for {} while its outbound queue was full \
                 ({} dropped on this connection)",
                q.dropping,
                self.who,
                q.dropped
            );
            q.dropping = 0;
        }
    }

    /// For the reading thread, before it serves the next request: while the queue holds
    /// `max_bytes` or more, writes what is queued (or, while the writer thread holds the
    /// write role, waits for it to make room), until the connection closes. The error of
    /// a failed write.
    pub(crate) fn wait_for_room(
        &self,
        write_timeout: Duration,
        mut write: impl FnMut(&[u8], Instant, &mut WriteTimeout) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut joined = Vec::new();
        let mut q = self.queue.lock();
        while !q.closed && q.bytes >= self.max_bytes {
            if self.claim(&mut q) {
                drop(q);
                self.write_held(write_timeout, &mut joined, &mut write)?;
                q = self.queue.lock();
            } else {
                self.room.wait_for(&mut q, ROOM_POLL);
            }
        }
        Ok(())
    }

    /// For the reading thread, before it waits (to read, or under a fault): writes
    /// everything queued, unless the writer thread holds the write role (it then writes
    /// it). The error of a failed write.
    pub(crate) fn write_queued(
        &self,
        write_timeout: Duration,
        mut write: impl FnMut(&[u8], Instant, &mut WriteTimeout) -> io::Result<()>,
    ) -> io::Result<()> {
        if !self.claim(&mut self.queue.lock()) {
            return Ok(());
        }
        self.write_held(write_timeout, &mut Vec::new(), &mut write)
    }

    /// The writer thread's loop: waits for frames that no other thread is writing, takes
    /// the write role and writes them, until the queue is closed or a queued `Close` is
    /// reached. Returns the error of a failed write.
    pub(crate) fn drain(
        &self,
        write_timeout: Duration,
        mut write: impl FnMut(&[u8], Instant, &mut WriteTimeout) -> io::Result<()>,
    ) -> Option<io::Error> {
        let mut joined = Vec::new();
        loop {
            {
                let mut q = self.queue.lock();
                loop {
                    if q.closed || (!q.writing && matches!(q.items.front(), Some(Item::Close))) {
                        return None;
                    }
                    if self.claim(&mut q) {
                        break;
                    }
                    self.ready.wait(&mut q);
                }
            }
            if let Err(e) = self.write_held(write_timeout, &mut joined, &mut write) {
                return Some(e);
            }
        }
    }

    /// Takes the write role when it is free and a frame is queued.
    fn claim(&self, q: &mut Queue) -> bool {
        let claimed = !q.closed && !q.writing && matches!(q.items.front(), Some(Item::Frame(..)));
        q.writing |= claimed;
        claimed
    }

    /// With the write role: writes batches until no frame is left at the front of the
    /// queue, then releases the role (waking the writer thread when a `Close` is left for
    /// it). `write` gets one frame or several joined, its deadline, and the socket's
    /// write timeout as last set.
    fn write_held(
        &self,
        write_timeout: Duration,
        joined: &mut Vec<u8>,
        write: &mut impl FnMut(&[u8], Instant, &mut WriteTimeout) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut q = self.queue.lock();
        let mut timeout = q.timeout;
        loop {
            let Some((batch, by)) = self.take_batch(&mut q, write_timeout, joined) else {
                break;
            };
            drop(q);
            let written = match &batch {
                Batch::One(frame) => write(frame, by, &mut timeout),
                Batch::Joined => write(joined, by, &mut timeout),
            };
            q = self.queue.lock();
            if let Err(e) = written {
                q.writing = false;
                return Err(e);
            }
        }
        q.writing = false;
        q.timeout = timeout;
        if !q.items.is_empty() {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// What to write next and the instant by which it must be written: the first queued
    /// frame, with the frames behind it joined into `joined` while the whole stays within
    /// [`BATCH_BYTES`]. `None` when the queue is closed or empty, or a `Close` is next.
    fn take_batch(
        &self,
        q: &mut Queue,
        write_timeout: Duration,
        joined: &mut Vec<u8>,
    ) -> Option<(Batch, Instant)> {
        if q.closed || !matches!(q.items.front(), Some(Item::Frame(..))) {
            return None;
        }
        let Some(Item::Frame(first, event)) = q.items.pop_front() else {
            return None;
        };
        let mut batch = Batch::One(Self::taken(q, first, event));
        while let Some(Item::Frame(next, _)) = q.items.front() {
            let next_len = next.len();
            let size = match &batch {
                Batch::One(first) => first.len(),
                Batch::Joined => joined.len(),
            };
            if size + next_len > BATCH_BYTES {
                break;
            }
            if let Batch::One(first) = &batch {
                joined.clear();
                joined.extend_from_slice(first);
                batch = Batch::Joined;
            }
            if let Some(Item::Frame(next, event)) = q.items.pop_front() {
                joined.extend_from_slice(&Self::taken(q, next, event));
            }
        }
        self.room.notify_all();
        let mut by = Instant::now() + write_timeout;
        if let Some(finish_by) = q.finish_by {
            by = by.min(finish_by);
        }
        Some((batch, by))
    }

    /// Accounts for a frame leaving the queue.
    fn taken(q: &mut Queue, frame: Bytes, event: bool) -> Bytes {
        q.bytes -= frame.len();
        if event {
            q.events -= 1;
        }
        frame
    }

    /// Refuses further events and queues a `Close` after what is queued: replies
    /// already queued are still written (within `within` in all), queued events are
    /// discarded.
    pub(crate) fn finish(&self, within: Duration) {
        let mut q = self.queue.lock();
        if q.closed || q.finishing {
            return;
        }
        q.finishing = true;
        q.finish_by = Some(Instant::now() + within);
        q.items.retain(|i| matches!(i, Item::Frame(_, false)));
        q.events = 0;
        q.bytes = q
            .items
            .iter()
            .map(|i| match i {
                Item::Frame(f, _) => f.len(),
                Item::Close => 0,
            })
            .sum();
        q.items.push_back(Item::Close);
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// Closes the queue at once: what is queued is discarded, the writer stops.
    pub(crate) fn close(&self) {
        let mut q = self.queue.lock();
        if q.closed {
            return;
        }
        self.end_drop_run(&mut q);
        q.closed = true;
        q.items.clear();
        q.bytes = 0;
        q.events = 0;
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// Events dropped on this connection so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.queue.lock().dropped
    }
}

/// Writes all of `bytes` to `socket` by `deadline`: one total deadline for the frame,
/// however many partial writes it takes (the socket's write timeout, as last set in
/// `timeout`, is armed from what is left before each). `TimedOut` when the deadline
/// passes.
pub(crate) fn write_all_by(
    socket: &UnixStream,
    bytes: &[u8],
    deadline: Instant,
    timeout: &mut WriteTimeout,
) -> io::Result<()> {
    let mut rest = bytes;
    let mut writer = socket;
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} of {} bytes written by the write deadline",
                    bytes.len() - rest.len(),
                    bytes.len()
                ),
            ));
        }
        timeout.arm(socket, left)?;
        match writer.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a socket read or write that failed this way may simply be tried again: a
/// timeout that only bounds one wait, or an interrupted call.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_events: usize, max_bytes: usize) -> Outbound {
        Outbound::new(max_events, max_bytes, Arc::default(), "test".into())
    }

    /// A write function that records each write's bytes in `into` and succeeds.
    fn recording(
        into: &mut Vec<Vec<u8>>,
    ) -> impl FnMut(&[u8], Instant, &mut WriteTimeout) -> io::Result<()> + '_ {
        |f, _, _| {
            into.push(f.to_vec());
            Ok(())
        }
    }

    /// What the holder of the write role would write next.
    fn take(q: &Outbound) -> Option<(Batch, Instant)> {
        q.take_batch(&mut q.lock(), Duration::from_secs(1), &mut Vec::new())
    }

    /// A writer thread draining `q` that reports each write as (bytes, writer's name).
    fn writer_thread(
        q: &Arc<Outbound>,
        gate: Option<crossbeam_channel::Receiver<()>>,
    ) -> (
        std::thread::JoinHandle<Option<io::Error>>,
        crossbeam_channel::Receiver<Vec<u8>>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let q = q.clone();
        let handle = std::thread::spawn(move || {
            q.drain(Duration::from_secs(1), |f, _, _| {
                if let Some(gate) = &gate {
                    let _ = gate.recv_timeout(Duration::from_secs(5));
                }
                let _ = tx.send(f.to_vec());
                Ok(())
            })
        });
        (handle, rx)
    }

    const BOUND: Duration = Duration::from_secs(5);
    const QUIET: Duration = Duration::from_millis(200);

    /// What a thread queues: a reply, an event, or an event from the connection's reading
    /// thread.
    enum Push {
        Reply,
        Event,
        OwnEvent,
    }

    /// Whether pushing a frame wakes a thread waiting on `ready`, as the writer thread
    /// does. The waiter holds the lock until it waits, so the push comes after: no race.
    fn push_wakes_the_writer(push: Push) -> bool {
        let q = Arc::new(queue(10, 1 << 20));
        let mut waiting = q.lock();
        let pusher = std::thread::spawn({
            let q = q.clone();
            move || {
                let frame = Bytes::from_static(b"f");
                match push {
                    Push::Reply => q.push_reply(frame),
                    Push::Event => q.push_event(frame),
                    Push::OwnEvent => {
                        q.set_reader();
                        q.push_event(frame)
                    }
                }
            }
        });
        let woken = !q.ready.wait_for(&mut waiting, QUIET).timed_out();
        drop(waiting);
        assert!(pusher.join().unwrap());
        woken
    }

    #[test]
    fn an_event_wakes_the_writer_thread_a_reply_does_not() {
        assert!(push_wakes_the_writer(Push::Event));
        assert!(!push_wakes_the_writer(Push::Reply));
    }

    #[test]
    fn an_event_the_reading_thread_queues_waits_for_its_write_of_the_queue() {
        assert!(!push_wakes_the_writer(Push::OwnEvent));
        // It leaves with the reply written after it, in the reading thread's write.
        let q = Arc::new(queue(10, 1 << 20));
        q.set_reader();
        assert!(q.push_event(Bytes::from_static(b"e1")));
        assert!(q.push_reply(Bytes::from_static(b"r1")));
        let mut mine = Vec::new();
        q.write_queued(Duration::from_secs(1), recording(&mut mine))
            .unwrap();
        assert_eq!(mine, [b"e1r1".to_vec()]);
        // Another thread's event still wakes the writer thread.
        let (writer, written_by_writer) = writer_thread(&q, None);
        let other = std::thread::spawn({
            let q = q.clone();
            move || q.push_event(Bytes::from_static(b"e2"))
        });
        assert!(other.join().unwrap());
        assert_eq!(written_by_writer.recv_timeout(BOUND).unwrap(), b"e2");
        q.close();
        assert!(writer.join().unwrap().is_none());
    }

    #[test]
    fn the_reading_thread_writes_queued_replies_together_and_the_writer_thread_events() {
        let q = Arc::new(queue(10, 1 << 20));
        assert!(q.push_reply(Bytes::from_static(b"r1")));
        assert!(q.push_reply(Bytes::from_static(b"r2")));
        let mut mine = Vec::new();
        q.write_queued(Duration::from_secs(1), recording(&mut mine))
            .unwrap();
        assert_eq!(
            mine,
            [b"r1r2".to_vec()],
            "both replies in one write, by this thread"
        );
        assert_eq!(q.lock().bytes, 0);
        assert!(!q.lock().writing, "the role is released");
        let (writer, written_by_writer) = writer_thread(&q, None);
        assert!(q.push_event(Bytes::from_static(b"e1")));
        assert_eq!(written_by_writer.recv_timeout(BOUND).unwrap(), b"e1");
        q.close();
        assert!(writer.join().unwrap().is_none());
    }

    #[test]
    fn while_the_writer_thread_writes_the_reading_thread_leaves_the_queue_to_it() {
        let q = Arc::new(queue(10, 1 << 20));
        let (open, gate) = crossbeam_channel::unbounded();
        let (writer, written) = writer_thread(&q, Some(gate));
        assert!(q.push_event(Bytes::from_static(b"e1")));
        // The writer thread holds the role (blocked in its write of e1).
        let deadline = Instant::now() + BOUND;
        while !(q.lock().writing && q.lock().items.is_empty()) {
            assert!(
                Instant::now() < deadline,
                "the writer thread took the event"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(q.push_reply(Bytes::from_static(b"r1")));
        let mut mine = 0;
        q.write_queued(Duration::from_secs(1), |_, _, _| {
            mine += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(mine, 0, "the holder of the role writes it");
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(written.recv_timeout(BOUND).unwrap(), b"e1");
        assert_eq!(written.recv_timeout(BOUND).unwrap(), b"r1");
        q.close();
        assert!(writer.join().unwrap().is_none());
    }

    #[test]
    fn waiting_for_room_writes_the_full_queue_from_the_reading_thread() {
        let q = queue(10, 4);
        assert!(q.push_reply(Bytes::from_static(b"r1r1")));
        assert!(q.push_reply(Bytes::from_static(b"r2")));
        let mut mine = Vec::new();
        q.wait_for_room(Duration::from_secs(1), recording(&mut mine))
            .unwrap();
        assert_eq!(mine, [b"r1r1r2".to_vec()]);
        // A failed write is returned, and the role released.
        assert!(q.push_reply(Bytes::from_static(b"r3r3")));
        let e = q
            .wait_for_room(Duration::from_secs(1), |_, _, _| {
                Err(io::ErrorKind::BrokenPipe.into())
            })
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(!q.lock().writing);
    }

    #[test]
    fn the_socket_timeout_is_handed_from_one_holder_of_the_role_to_the_next() {
        let q = queue(10, 1 << 20);
        let (a, _b) = UnixStream::pair().unwrap();
        for _ in 0..2 {
            assert!(q.push_reply(Bytes::from_static(b"r")));
            q.write_queued(Duration::from_secs(5), |f, by, timeout| {
                write_all_by(&a, f, by, timeout)
            })
            .unwrap();
            // Unchanged by the next write: a write with as much time left sets no timeout.
            a.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn events_beyond_the_event_limit_are_dropped_and_counted() {
        let q = queue(2, 1 << 20);
        assert!(q.push_event(Bytes::from_static(b"a")));
        assert!(q.push_event(Bytes::from_static(b"b")));
        assert!(!q.push_event(Bytes::from_static(b"c")));
        assert_eq!(q.dropped(), 1);
        // Replies are never dropped.
        assert!(q.push_reply(Bytes::from_static(b"r")));
    }

    #[test]
    fn an_event_larger_than_the_byte_limit_fits_an_empty_queue_only() {
        let q = queue(10, 4);
        assert!(q.push_event(Bytes::from_static(b"0123456789")));
        assert!(!q.push_event(Bytes::from_static(b"x")));
        let Some((Batch::One(frame), _)) = take(&q) else {
            panic!("one frame queued")
        };
        assert_eq!(&frame[..], b"0123456789");
        assert!(q.push_event(Bytes::from_static(b"x")));
    }

    #[test]
    fn finish_writes_queued_replies_discards_events_then_stops() {
        let q = queue(10, 1 << 20);
        q.push_reply(Bytes::from_static(b"reply"));
        q.push_event(Bytes::from_static(b"event"));
        q.finish(Duration::from_secs(1));
        assert!(!q.push_event(Bytes::from_static(b"late")));
        let mut written = Vec::new();
        let end = q.drain(Duration::from_secs(1), recording(&mut written));
        assert!(end.is_none());
        assert_eq!(written, vec![b"reply".to_vec()]);
    }

    #[test]
    fn frames_taken_by_the_writer_free_their_bytes_and_event_slots() {
        let q = queue(2, 1 << 20);
        assert!(q.push_event(Bytes::from_static(b"aaaa")));
        assert!(q.push_event(Bytes::from_static(b"a")));
        let Some((Batch::Joined, _)) = take(&q) else {
            panic!("two frames joined")
        };
        {
            let q = q.lock();
            assert_eq!((q.bytes, q.events), (0, 0));
        }
        // Both event slots are free again.
        assert!(q.push_event(Bytes::from_static(b"b")));
        assert!(q.push_event(Bytes::from_static(b"c")));
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn queued_frames_leave_together_up_to_the_batch_size_a_larger_one_alone() {
        let q = queue(10, 1 << 20);
        let big = Bytes::from(vec![b'b'; BATCH_BYTES - 2]);
        q.push_reply(Bytes::from_static(b"r1"));
        q.push_event(Bytes::from_static(b"e1"));
        q.push_reply(Bytes::from_static(b"r2"));
        q.push_reply(big);
        q.push_reply(Bytes::from_static(b"r3"));
        q.push_reply(Bytes::from(vec![b'h'; BATCH_BYTES + 1]));
        q.push_reply(Bytes::from_static(b"r4"));
        q.finish(Duration::from_secs(5));
        let mut written = Vec::new();
        let end = q.drain(Duration::from_secs(1), recording(&mut written));
        assert!(end.is_none());
        // Each write as (length, first byte, last byte); `finish` discarded the event.
        let shape: Vec<(usize, u8, u8)> = written
            .iter()
            .map(|w| (w.len(), w[0], w[w.len() - 1]))
            .collect();
        assert_eq!(
            shape,
            [
                (4, b'r', b'2'),
                (BATCH_BYTES, b'b', b'3'),
                (BATCH_BYTES + 1, b'h', b'h'),
                (2, b'r', b'4')
            ]
        );
        assert_eq!(written[0], b"r1r2");
        // Up to 64 KiB together.
        let q = queue(10, 1 << 20);
        q.push_reply(Bytes::from(vec![1; 30_000]));
        q.push_reply(Bytes::from(vec![2; 30_000]));
        q.finish(Duration::from_secs(5));
        let mut sizes = Vec::new();
        q.drain(Duration::from_secs(1), |f, _, _| {
            sizes.push(f.len());
            Ok(())
        });
        assert_eq!(sizes, [60_000]);
        assert_eq!(q.lock().bytes, 0, "every byte accounted for");
    }

    #[test]
    fn a_write_that_never_completes_fails_at_its_total_deadline() {
        let (a, _b) = UnixStream::pair().unwrap();
        let start = Instant::now();
        // On another thread, so that a write that ignores its deadline fails the test
        // instead of hanging it (`_b`, dropped when the test ends, then unblocks it).
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let big = vec![0u8; 8 << 20];
            let by = Instant::now() + Duration::from_millis(200);
            let _ = tx.send(write_all_by(&a, &big, by, &mut WriteTimeout::default()));
        });
        let e = rx
            .recv_timeout(BOUND)
            .expect("the write returns by its deadline")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
