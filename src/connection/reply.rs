//! Where a stream's first reply goes, and how its caller waits for it: a channel for a
//! started call (a `Pending`, which may be waited on together with others), a slot and a
//! wake-up for a caller blocked in `Connection::call` (it needs no channel: nothing
//! selects over it, and a channel costs two allocations and a larger hand-over per call).

use std::cell::RefCell;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;

use crate::rpc::RpcMessage;
use crate::spin;

/// The I/O thread's end: hands the reply over once. Dropped undelivered (the connection
/// closed, the write failed, the stream was given up), it tells the caller so: the
/// channel disconnects, or the slot closes and the blocked caller is woken.
#[derive(Debug)]
pub(super) struct ReplyTo(Option<Handover>);

#[derive(Debug)]
enum Handover {
    Channel(Sender<RpcMessage>),
    /// A caller blocked in `Connection::call` watches its slot for a while ([`spin::watch`]),
    /// then sleeps in `thread::park` until its reply (at most once per call: it is not
    /// woken when its frame is written, see `outbox`), so it is unparked when the reply
    /// is in its slot, or the slot closed.
    Blocked {
        slot: Arc<Slot>,
        caller: thread::Thread,
    },
}

/// A blocked caller's reply: put there by the I/O thread, taken by the caller.
#[derive(Debug, Default)]
pub(super) struct Slot(Mutex<Held>);

#[derive(Debug, Default)]
enum Held {
    #[default]
    Empty,
    Reply(RpcMessage),
    /// The reply will not come.
    Closed,
}

impl Slot {
    fn take(&self) -> Result<RpcMessage, TryRecvError> {
        let mut held = self.0.lock();
        match std::mem::take(&mut *held) {
            Held::Empty => Err(TryRecvError::Empty),
            Held::Reply(reply) => Ok(reply),
            Held::Closed => {
                *held = Held::Closed;
                Err(TryRecvError::Disconnected)
            }
        }
    }
}

/// The caller's end.
#[derive(Debug)]
pub(super) enum Inbox {
    Channel(Receiver<RpcMessage>),
    Slot(Arc<Slot>),
}

/// A reply channel, for a call started without waiting.
pub(super) fn channel() -> (ReplyTo, Inbox) {
    let (tx, rx) = bounded(1);
    (ReplyTo(Some(Handover::Channel(tx))), Inbox::Channel(rx))
}

thread_local! {
    /// The slot of this thread's last blocked call, emptied, for its next one: one
    /// allocation fewer per call. Only a slot that nothing else holds any more is kept.
    static SPARE_SLOT: RefCell<Option<Arc<Slot>>> = const { RefCell::new(None) };
}

/// A reply slot for the current thread, which will wait for the reply at once.
pub(super) fn blocked() -> (ReplyTo, Inbox) {
    let spare = SPARE_SLOT.try_with(|spare| spare.take()).ok().flatten();
    let slot = spare.unwrap_or_default();
    let handover = Handover::Blocked {
        slot: slot.clone(),
        caller: thread::current(),
    };
    (ReplyTo(Some(handover)), Inbox::Slot(slot))
}

impl ReplyTo {
    /// Hands the reply over (the caller may be gone: then it is discarded) and wakes a
    /// blocked caller.
    pub(super) fn deliver(mut self, message: RpcMessage) {
        match self.0.take() {
            Some(Handover::Channel(tx)) => {
                let _ = tx.send(message);
            }
            Some(Handover::Blocked { slot, caller }) => {
                *slot.0.lock() = Held::Reply(message);
                // Let go of the slot before the caller runs, so that it can keep it.
                drop(slot);
                caller.unpark();
            }
            None => {}
        }
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        // (Undelivered; a channel disconnects as its sender drops.)
        if let Some(Handover::Blocked { slot, caller }) = self.0.take() {
            *slot.0.lock() = Held::Closed;
            drop(slot);
            caller.unpark();
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if let Inbox::Slot(slot) = self {
            // Unique: the I/O thread's `ReplyTo` is gone, nothing can put a reply in it.
            if let Some(unique) = Arc::get_mut(slot) {
                *unique.0.get_mut() = Held::Empty;
                let slot = slot.clone();
                let _ = SPARE_SLOT.try_with(|spare| spare.replace(Some(slot)));
            }
        }
    }
}

impl Inbox {
    /// The channel the reply arrives on, to wait on several started calls together
    /// (`None` for a blocked call, which has none).
    pub(super) fn receiver(&self) -> Option<&Receiver<RpcMessage>> {
        match self {
            Inbox::Channel(rx) => Some(rx),
            Inbox::Slot(_) => None,
        }
    }

    /// The reply if it has come.
    pub(super) fn try_recv(&self) -> Result<RpcMessage, TryRecvError> {
        match self {
            Inbox::Channel(rx) => rx.try_recv(),
            Inbox::Slot(slot) => slot.take(),
        }
    }

    /// Waits for the reply until `deadline`. A blocked caller first watches its slot for
    /// up to `spin` ([`spin::watch`]), yielding its CPU between looks, then sleeps in
    /// `thread::park` until its [`ReplyTo`] wakes it; a stray wake-up looks and sleeps
    /// again.
    pub(super) fn recv_deadline(
        &self,
        deadline: Instant,
        spin: Duration,
    ) -> Result<RpcMessage, RecvTimeoutError> {
        let slot = match self {
            Inbox::Channel(rx) => return rx.recv_deadline(deadline),
            Inbox::Slot(slot) => slot,
        };
        let taken = spin::watch(spin, Some(deadline), || match slot.take() {
            Ok(reply) => Some(Ok(reply)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
            Err(TryRecvError::Empty) => None,
        });
        if let Some(taken) = taken {
            return taken;
        }
        loop {
            match slot.take() {
                Ok(reply) => return Ok(reply),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RecvTimeoutError::Timeout);
            }
            thread::park_timeout(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rpc::MessageType;

    fn message(id: i32) -> RpcMessage {
        RpcMessage::new(MessageType::ApplicationMessage, 0, id)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    #[test]
    fn a_blocked_caller_gets_its_reply_from_another_thread() {
        let (reply_to, inbox) = blocked();
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Empty)));
        let deliverer = thread::spawn(move || reply_to.deliver(message(7)));
        let reply = inbox
            .recv_deadline(soon(), Duration::ZERO)
            .expect("the reply within 2 s");
        assert_eq!(reply.stream_id, 7);
        deliverer.join().unwrap();
    }

    #[test]
    fn an_undelivered_slot_closes_and_stays_closed() {
        let (reply_to, inbox) = blocked();
        thread::spawn(move || drop(reply_to)).join().unwrap();
        assert!(matches!(
            inbox.recv_deadline(soon(), Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        ));
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Disconnected)));
    }

    #[test]
    fn a_delivered_reply_is_not_taken_for_a_close() {
        let (reply_to, inbox) = blocked();
        reply_to.deliver(message(3));
        assert_eq!(inbox.try_recv().expect("delivered").stream_id, 3);
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_blocked_wait_times_out_at_its_deadline() {
        let (_reply_to, inbox) = blocked();
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(matches!(
            inbox.recv_deadline(deadline, Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        ));
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn a_slot_is_reused_empty_and_only_once_nothing_else_holds_it() {
        fn slot_of(inbox: &Inbox) -> *const Slot {
            match inbox {
                Inbox::Slot(slot) => Arc::as_ptr(slot),
                Inbox::Channel(_) => panic!("a blocked call has a slot"),
            }
        }
        // Delivered, taken, dropped: the next call on this thread gets the same slot, empty.
        let (reply_to, inbox) = blocked();
        let first = slot_of(&inbox);
        reply_to.deliver(message(1));
        drop(inbox);
        let (reply_to, inbox) = blocked();
        assert_eq!(slot_of(&inbox), first);
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Empty)));
        // Its caller gave up while the I/O thread still held it: not kept, so a late
        // reply cannot reach the next call.
        drop(inbox);
        let (next_reply_to, next) = blocked();
        assert_ne!(slot_of(&next), first);
        reply_to.deliver(message(2));
        assert!(matches!(next.try_recv(), Err(TryRecvError::Empty)));
        next_reply_to.deliver(message(3));
        assert_eq!(next.try_recv().expect("its own reply").stream_id, 3);
    }

    /// Delivers a reply on stream `id` from another thread, `after` from now.
    fn deliver_after(reply_to: ReplyTo, after: Duration, id: i32) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            thread::sleep(after);
            reply_to.deliver(message(id));
        })
    }

    #[test]
    fn a_spinning_caller_takes_a_quick_reply_and_a_late_one_wakes_it_then_sleeps_at_once() {
        // On a thread of its own: the record of spins is per thread.
        thread::spawn(|| {
            let record = spin::record;
            // (Read here, not asked of `spin::several_cpus`, so that the test checks it. Its
            // mutant `→ true` differs only on one CPU, which the test machines lack.)
            let status = std::fs::read("/proc/self/status").unwrap_or_default();
            let spins = spin::several_allowed(&status);
            let expect = |spun: spin::Spin| if spins { spun } else { spin::Spin::default() };

            // A reply that comes 1 ms into a spin longer than that is taken by the spin.
            let (reply_to, inbox) = blocked();
            let deliverer = deliver_after(reply_to, Duration::from_millis(1), 1);
            let reply = inbox.recv_deadline(soon(), Duration::from_secs(1));
            assert_eq!(reply.expect("the reply within 2 s").stream_id, 1);
            deliverer.join().unwrap();
            assert_eq!(record(), spin::Spin::default());

            // One that comes after the spin wakes the sleeping caller; the miss is kept.
            let (reply_to, inbox) = blocked();
            let deliverer = deliver_after(reply_to, Duration::from_millis(30), 2);
            let reply = inbox.recv_deadline(soon(), Duration::from_micros(200));
            assert_eq!(reply.expect("the late reply within 2 s").stream_id, 2);
            deliverer.join().unwrap();
            assert_eq!(record(), expect(spin::Spin { misses: 1, skip: 1 }));

            // So the next call sleeps at once (its reply is already there: a spin would
            // have taken it and cleared the record).
            let (reply_to, inbox) = blocked();
            reply_to.deliver(message(3));
            let reply = inbox.recv_deadline(soon(), Duration::from_secs(1));
            assert_eq!(reply.expect("the reply at once").stream_id, 3);
            assert_eq!(record(), expect(spin::Spin { misses: 1, skip: 0 }));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_channel_reply_arrives_then_the_channel_disconnects() {
        let (reply_to, inbox) = channel();
        assert!(inbox.receiver().is_some());
        reply_to.deliver(message(5));
        assert_eq!(
            inbox
                .recv_deadline(soon(), Duration::ZERO)
                .unwrap()
                .stream_id,
            5
        );
        assert!(matches!(inbox.try_recv(), Err(TryRecvError::Disconnected)));
        let (reply_to, inbox) = channel();
        drop(reply_to);
        assert!(matches!(
            inbox.recv_deadline(soon(), Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        ));
    }
}
