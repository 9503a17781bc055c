//! Group writes ("flat combining"): the bookkeeping, without I/O.
//!
//! A thread with a frame to send queues it here and then, under the outbox lock, asks
//! [`Outbox::poll`] what to do. When no one holds the write role, it takes the role (the
//! writer) together with *every* queued frame, its own and those of the threads waiting
//! behind it, writes them all with one `write` outside the lock, and hands the writer
//! back with each frame's outcome ([`Outbox::finish`]). The others sleep until their
//! outcome is in (each is woken once, by the thread that wrote its frame). Frames queued
//! while a group was being written are written next by the same thread, which keeps the
//! role for them ([`Outbox::write_on`]) rather than waking the first of their threads to
//! write them. So under concurrency frames leave in groups, and a lone caller still
//! writes its own frame at once.
//!
//! A thread that waits for something after its frame is written (a blocking call waits
//! for its reply) queues it without `notify`: when its frame goes out, its thread is not
//! woken for the outcome, only for a failure, so it sleeps once per call, until its
//! reply (whoever delivers the reply wakes it). Such a thread that wakes while its frame
//! is being written (the reply came first, or a stray wake-up) is woken again with the
//! outcome.
//!
//! The rules this keeps (the connection relies on them, the tests below check them):
//!
//! * **Order.** Frames are taken in the order they were queued; frames put back
//!   ([`Outbox::finish`]'s `requeue`, when nothing of a group reached the wire) go back
//!   in front, in their order. Stream ids are allocated when a group is taken, so they
//!   reach the wire strictly increasing, without gaps.
//! * **Deadlines.** A frame still queued when its deadline passes is withdrawn by its
//!   own thread (never sent, [`Turn::TimedOut`]). A frame that was taken waits for the
//!   outcome of its group, whose write is bounded by the earliest deadline in it.
//! * **No stall.** Whenever the role is free and a frame is queued, the thread of the
//!   first queued frame has been woken: [`Outbox::finish`] and a withdrawal say whom to
//!   wake.

use std::collections::VecDeque;
use std::thread::Thread;
use std::time::Instant;

/// A frame waiting to be written: `J` is the frame, `waiter` the thread to wake with its
/// outcome; without `notify`, only an outcome that is a failure wakes it.
#[derive(Debug)]
pub(super) struct Queued<J> {
    pub(super) ticket: u64,
    pub(super) waiter: Thread,
    pub(super) deadline: Instant,
    pub(super) notify: bool,
    pub(super) job: J,
}

/// The outcome of one frame, for its waiter; `notify`: wake the waiter with it (the
/// frame's `notify`, or the outcome is a failure).
#[derive(Debug)]
pub(super) struct Outcome<R> {
    pub(super) ticket: u64,
    pub(super) waiter: Thread,
    pub(super) notify: bool,
    pub(super) result: R,
}

/// What a thread with a queued frame does next ([`Outbox::poll`]).
#[derive(Debug)]
pub(super) enum Turn<W, J, R> {
    /// Its frame's outcome.
    Done(R),
    /// It holds the write role: write these frames (its own among them) with `W`, then
    /// call [`Outbox::finish`].
    Write(W, Vec<Queued<J>>),
    /// Its deadline passed while its frame was still queued: the frame is withdrawn,
    /// never sent. `wake` must be woken (outside the lock) to take the role.
    TimedOut { job: J, wake: Option<Thread> },
    /// Sleep until woken; `queued`: the frame is still queued (else it is being written).
    Wait { queued: bool },
    /// The ticket is neither queued, nor being written, nor done: it was never queued or
    /// its outcome was already taken. A bug in the bookkeeping; the caller must not wait.
    Lost,
}

/// The queue of frames to write and the writer `W` while no one holds the write role.
#[derive(Debug)]
pub(super) struct Outbox<W, J, R> {
    writer: Option<W>,
    queue: VecDeque<Queued<J>>,
    /// Outcomes not yet collected by their waiters.
    done: Vec<(u64, R)>,
    /// Frames being written whose thread (queued without `notify`) asked for the outcome
    /// since: woken by [`Outbox::finish`] whatever the outcome.
    awaiting: Vec<u64>,
    next_ticket: u64,
}

impl<W, J, R> Outbox<W, J, R> {
    pub(super) fn new(writer: W) -> Self {
        Outbox {
            writer: Some(writer),
            queue: VecDeque::new(),
            done: Vec::new(),
            awaiting: Vec::new(),
            next_ticket: 0,
        }
    }

    /// Queues `job` for the current thread; returns its ticket for [`Outbox::poll`].
    /// `notify`: wake `waiter` when the frame is written (else only when it fails).
    pub(super) fn push(&mut self, job: J, deadline: Instant, waiter: Thread, notify: bool) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back(Queued {
            ticket,
            waiter,
            deadline,
            notify,
            job,
        });
        ticket
    }

    /// What the thread of `ticket` does now.
    pub(super) fn poll(&mut self, ticket: u64, now: Instant) -> Turn<W, J, R> {
        if let Some(i) = self.done.iter().position(|(t, _)| *t == ticket) {
            return Turn::Done(self.done.swap_remove(i).1);
        }
        let queued = self.queue.iter().position(|q| q.ticket == ticket);
        if let Some(i) = queued {
            if now >= self.queue[i].deadline {
                let job = self.queue.remove(i).expect("a queued position").job;
                return Turn::TimedOut {
                    job,
                    wake: self.successor(),
                };
            }
        }
        match (queued, self.writer.take()) {
            (Some(_), Some(writer)) => Turn::Write(writer, self.queue.drain(..).collect()),
            // A writer hands the writer back together with the outcome of every frame it
            // took (`finish`), so with the role free a frame not queued and not done is
            // not being written either: it is lost.
            (None, Some(writer)) => {
                self.writer = Some(writer);
                Turn::Lost
            }
            (Some(_), None) => Turn::Wait { queued: true },
            (None, None) => {
                // Being written: its thread is awake and waits for the outcome now.
                if !self.awaiting.contains(&ticket) {
                    self.awaiting.push(ticket);
                }
                Turn::Wait { queued: false }
            }
        }
    }

    /// The holder of the write role hands the writer back with the outcome of each frame
    /// it took, and the frames it did not send and that may still go (`requeue`, in
    /// their order: they go back in front of the queue). Returns the threads to wake
    /// (outside the lock): every waiter with an outcome to be told (`notify`, or waiting
    /// for it since its frame was taken) except `me`, and the thread of the first queued
    /// frame, which takes the role next.
    pub(super) fn finish(
        &mut self,
        writer: W,
        outcomes: Vec<Outcome<R>>,
        requeue: Vec<Queued<J>>,
        me: &Thread,
    ) -> Vec<Thread> {
        debug_assert!(self.writer.is_none(), "finish without holding the role");
        self.writer = Some(writer);
        for q in requeue.into_iter().rev() {
            self.queue.push_front(q);
        }
        let mut wake = self.record(outcomes, me);
        if let Some(next) = self.successor() {
            if next.id() != me.id() {
                wake.push(next);
            }
        }
        wake
    }

    /// The holder of the write role, after writing a group whole, keeps the role and
    /// takes the frames queued meanwhile: their outcomes are recorded as in
    /// [`Outbox::finish`] (returns the threads to wake), and the new group is returned
    /// if there is one (then it writes it, and ends with [`Outbox::finish`] or this
    /// again). This saves waking a queued thread only to write its frame: it sleeps on
    /// until its own wake-up (its reply, for a blocking call).
    ///
    /// A group's write is bounded by its earliest deadline, so the queued frames are
    /// taken only if that deadline is at most `until` (the holder's own deadline and a
    /// slack): the holder's call is never held past it by others' frames. Otherwise they
    /// stay queued, for [`Outbox::finish`] to hand the role on.
    pub(super) fn write_on(
        &mut self,
        outcomes: Vec<Outcome<R>>,
        me: &Thread,
        until: Instant,
    ) -> (Vec<Thread>, Option<Vec<Queued<J>>>) {
        debug_assert!(self.writer.is_none(), "write_on without holding the role");
        let wake = self.record(outcomes, me);
        let earliest = self.queue.iter().map(|q| q.deadline).min();
        let more = earliest
            .is_some_and(|due| due <= until)
            .then(|| self.queue.drain(..).collect());
        (wake, more)
    }

    /// Stores each outcome for its waiter; returns the waiters to wake: those with an
    /// outcome to be told (`notify`, or waiting for it since their frame was taken)
    /// except `me`.
    fn record(&mut self, outcomes: Vec<Outcome<R>>, me: &Thread) -> Vec<Thread> {
        // Most outcomes wake no one (a blocking call is not told of its write): allocated
        // only for one that does.
        let mut wake = Vec::new();
        for outcome in outcomes {
            let awaited = match self.awaiting.iter().position(|t| *t == outcome.ticket) {
                Some(i) => {
                    self.awaiting.swap_remove(i);
                    true
                }
                None => false,
            };
            self.done.push((outcome.ticket, outcome.result));
            if (outcome.notify || awaited) && outcome.waiter.id() != me.id() {
                wake.push(outcome.waiter);
            }
        }
        wake
    }

    /// The thread to wake to take the free role: the first queued frame's.
    fn successor(&self) -> Option<Thread> {
        match (&self.writer, self.queue.front()) {
            (Some(_), Some(first)) => Some(first.waiter.clone()),
            _ => None,
        }
    }

    /// How many frames are queued (not taken by a writer).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The writer, while no one holds the write role.
    #[cfg(test)]
    pub(super) fn writer(&self) -> Option<&W> {
        self.writer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    /// The writer is a counter of groups written; frames are labels; outcomes too.
    type O = Outbox<u32, &'static str, &'static str>;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn much_later() -> Instant {
        Instant::now() + Duration::from_secs(120)
    }

    /// A thread handle distinct from the test's own (it just parks briefly and ends).
    fn other_thread() -> Thread {
        thread::spawn(|| thread::park_timeout(Duration::from_millis(10)))
            .thread()
            .clone()
    }

    fn outcome(q: &Queued<&'static str>, result: &'static str) -> Outcome<&'static str> {
        Outcome {
            ticket: q.ticket,
            waiter: q.waiter.clone(),
            notify: q.notify,
            result,
        }
    }

    /// The thread of `ticket` polls and must get the role: the writer and the group.
    fn take_role(o: &mut O, ticket: u64) -> (u32, Vec<Queued<&'static str>>) {
        match o.poll(ticket, Instant::now()) {
            Turn::Write(writer, group) => (writer, group),
            _ => panic!("the role is free"),
        }
    }

    /// The jobs of a group, in order.
    fn jobs(group: &[Queued<&'static str>]) -> Vec<&'static str> {
        group.iter().map(|q| q.job).collect()
    }

    /// The test's thread queues "a" (due at `deadline`) and, the role being free, takes
    /// it with "a" alone: a's ticket, the writer and the group.
    fn me_writing_a(
        o: &mut O,
        deadline: Instant,
        notify: bool,
    ) -> (u64, u32, Vec<Queued<&'static str>>) {
        let a = o.push("a", deadline, thread::current(), notify);
        let (writer, group) = take_role(o, a);
        (a, writer, group)
    }

    fn ids(threads: &[Thread]) -> Vec<thread::ThreadId> {
        threads.iter().map(Thread::id).collect()
    }

    #[test]
    fn a_lone_caller_takes_the_role_and_its_own_frame() {
        let mut o = O::new(0);
        let me = thread::current();
        let t = o.push("a", later(), me.clone(), true);
        let (writer, batch) = take_role(&mut o, t);
        assert_eq!(jobs(&batch), ["a"]);
        let outcomes = vec![outcome(&batch[0], "sent a")];
        assert!(o.finish(writer + 1, outcomes, vec![], &me).is_empty());
        assert!(matches!(o.poll(t, Instant::now()), Turn::Done("sent a")));
        assert_eq!(o.queued(), 0);
    }

    #[test]
    fn frames_queued_behind_a_writer_leave_together_in_order_and_each_waiter_is_woken() {
        let mut o = O::new(0);
        let me = thread::current();
        let (b, c) = (other_thread(), other_thread());
        let (a, writer, first) = me_writing_a(&mut o, later(), true);
        // While `a` is being written, b and c queue and must wait.
        let tb = o.push("b", later(), b.clone(), true);
        let tc = o.push("c", later(), c.clone(), true);
        assert!(matches!(
            o.poll(tb, Instant::now()),
            Turn::Wait { queued: true }
        ));
        let wake = o.finish(writer, vec![outcome(&first[0], "ok a")], vec![], &me);
        // a's writer is done; b (first queued) is woken to take the role.
        assert_eq!(ids(&wake), ids(std::slice::from_ref(&b)));
        assert!(matches!(o.poll(a, Instant::now()), Turn::Done("ok a")));
        // c's thread polls first: it takes the role and both frames, in order.
        let (writer, group) = take_role(&mut o, tc);
        assert_eq!(jobs(&group), ["b", "c"]);
        assert!(matches!(
            o.poll(tb, Instant::now()),
            Turn::Wait { queued: false }
        ));
        let outcomes = vec![outcome(&group[0], "ok b"), outcome(&group[1], "ok c")];
        let wake = o.finish(writer, outcomes, vec![], &c);
        // Only b is woken (c wrote them and collects its own outcome).
        assert_eq!(ids(&wake), ids(&[b]));
        assert!(matches!(o.poll(tb, Instant::now()), Turn::Done("ok b")));
        assert!(matches!(o.poll(tc, Instant::now()), Turn::Done("ok c")));
    }

    #[test]
    fn a_queued_frame_past_its_deadline_is_withdrawn_and_the_next_one_takes_over() {
        let mut o = O::new(0);
        let me = thread::current();
        let b = other_thread();
        let soon = Instant::now() + Duration::from_millis(5);
        let (_, writer, first) = me_writing_a(&mut o, later(), true);
        let ta = o.push("late", soon, me.clone(), true);
        let tb = o.push("b", later(), b.clone(), true);
        // The role is held: withdrawing wakes no one.
        let Turn::TimedOut { job, wake } = o.poll(ta, soon) else {
            panic!("past its deadline")
        };
        assert_eq!(job, "late");
        assert!(wake.is_none());
        let wake = o.finish(writer, vec![outcome(&first[0], "ok a")], vec![], &me);
        assert_eq!(ids(&wake), ids(std::slice::from_ref(&b)));
        // With the role free, the first queued frame withdrawing passes the role on.
        let tc = o.push("c", later(), me.clone(), true);
        let Turn::TimedOut { wake, .. } = o.poll(tb, much_later()) else {
            panic!("past its deadline")
        };
        assert_eq!(ids(&wake.into_iter().collect::<Vec<_>>()), ids(&[me]));
        let (_, group) = take_role(&mut o, tc);
        assert_eq!(jobs(&group), ["c"]);
    }

    #[test]
    fn a_frame_being_written_waits_for_its_group_even_past_its_deadline() {
        let mut o = O::new(0);
        let me = thread::current();
        let b = other_thread();
        let a = o.push("a", later(), me.clone(), true);
        let soon = Instant::now();
        let tb = o.push("b", soon, b.clone(), true);
        let (writer, group) = take_role(&mut o, a);
        assert_eq!(group.len(), 2);
        // b's deadline has passed, but its frame is in the group being written: it is
        // neither withdrawn nor given an outcome until the writer is done.
        assert!(matches!(
            o.poll(tb, much_later()),
            Turn::Wait { queued: false }
        ));
        let outcomes = vec![outcome(&group[0], "ok a"), outcome(&group[1], "ok b")];
        o.finish(writer, outcomes, vec![], &me);
        assert!(matches!(o.poll(tb, much_later()), Turn::Done("ok b")));
    }

    #[test]
    fn a_ticket_neither_queued_nor_done_is_lost_while_the_role_is_free() {
        let mut o = O::new(0);
        let me = thread::current();
        // Never queued.
        assert!(matches!(o.poll(7, Instant::now()), Turn::Lost));
        let t = o.push("a", later(), me.clone(), true);
        let (writer, batch) = take_role(&mut o, t);
        // While the role is held, a ticket not queued may be in the group being written.
        assert!(matches!(
            o.poll(7, Instant::now()),
            Turn::Wait { queued: false }
        ));
        o.finish(writer, vec![outcome(&batch[0], "ok a")], vec![], &me);
        assert!(matches!(o.poll(t, Instant::now()), Turn::Done("ok a")));
        // Its outcome already taken.
        assert!(matches!(o.poll(t, Instant::now()), Turn::Lost));
        assert_eq!(o.writer(), Some(&0), "the writer stays free");
    }

    #[test]
    fn frames_put_back_go_in_front_of_newer_ones_in_their_order() {
        let mut o = O::new(0);
        let me = thread::current();
        let b = other_thread();
        let a = o.push("a", later(), me.clone(), true);
        let tb = o.push("b", later(), b.clone(), true);
        let (writer, mut group) = take_role(&mut o, a);
        let tc = o.push("c", later(), b.clone(), true);
        // Nothing went out: a timed out (its outcome), b goes back in front of c.
        let first = group.remove(0);
        let wake = o.finish(writer, vec![outcome(&first, "timeout a")], group, &me);
        assert_eq!(ids(&wake), ids(&[b]));
        assert!(matches!(o.poll(a, Instant::now()), Turn::Done("timeout a")));
        let (_, group) = take_role(&mut o, tc);
        assert_eq!(jobs(&group), ["b", "c"]);
        assert_eq!(group[0].ticket, tb);
    }

    #[test]
    fn a_frame_queued_without_notify_wakes_its_thread_only_on_failure() {
        let mut o = O::new(0);
        let me = thread::current();
        let (b, c) = (other_thread(), other_thread());
        let (_, writer, first) = me_writing_a(&mut o, later(), true);
        let tb = o.push("b", later(), b.clone(), false);
        let tc = o.push("c", later(), c.clone(), false);
        let wake = o.finish(writer, vec![outcome(&first[0], "ok a")], vec![], &me);
        assert_eq!(
            ids(&wake),
            ids(std::slice::from_ref(&b)),
            "b takes the role"
        );
        let (writer, group) = take_role(&mut o, tb);
        // b's frame went out, c's failed: only c is woken (b wrote them itself).
        let failed = Outcome {
            notify: true,
            ..outcome(&group[1], "failed c")
        };
        let wake = o.finish(writer, vec![outcome(&group[0], "ok b"), failed], vec![], &b);
        assert_eq!(ids(&wake), ids(std::slice::from_ref(&c)));
        assert!(matches!(o.poll(tc, Instant::now()), Turn::Done("failed c")));
        // A frame sent without notify: its thread is not woken, the outcome waits.
        let td = o.push("d", later(), b.clone(), true);
        let (writer, first) = take_role(&mut o, td);
        let te = o.push("e", later(), c.clone(), false);
        let wake = o.finish(writer, vec![outcome(&first[0], "ok d")], vec![], &b);
        assert_eq!(
            ids(&wake),
            ids(std::slice::from_ref(&c)),
            "e takes the role"
        );
        let (writer, group) = take_role(&mut o, te);
        assert!(o
            .finish(writer, vec![outcome(&group[0], "ok e")], vec![], &me)
            .is_empty());
        assert!(matches!(o.poll(te, Instant::now()), Turn::Done("ok e")));
    }

    #[test]
    fn a_thread_without_notify_that_looks_while_its_frame_is_written_is_woken_with_the_outcome() {
        let mut o = O::new(0);
        let me = thread::current();
        let b = other_thread();
        let a = o.push("a", later(), me.clone(), true);
        let tb = o.push("b", later(), b.clone(), false);
        let (writer, group) = take_role(&mut o, a);
        // b wakes (its reply came first) while its frame is being written: it asks.
        assert!(matches!(
            o.poll(tb, Instant::now()),
            Turn::Wait { queued: false }
        ));
        assert!(matches!(
            o.poll(tb, Instant::now()),
            Turn::Wait { queued: false }
        ));
        let outcomes = vec![outcome(&group[0], "ok a"), outcome(&group[1], "ok b")];
        let wake = o.finish(writer, outcomes, vec![], &me);
        assert_eq!(ids(&wake), ids(std::slice::from_ref(&b)), "woken once");
        assert!(matches!(o.poll(tb, Instant::now()), Turn::Done("ok b")));
    }

    #[test]
    fn the_writer_writes_on_what_queued_meanwhile_and_wakes_no_one_to_write_it() {
        let mut o = O::new(0);
        let me = thread::current();
        let (b, c) = (other_thread(), other_thread());
        let (a, writer, first) = me_writing_a(&mut o, later(), false);
        // While `a` is written, b (a blocking call) and c (told when written) queue.
        let tb = o.push("b", later(), b.clone(), false);
        let tc = o.push("c", later(), c.clone(), true);
        let (wake, more) = o.write_on(vec![outcome(&first[0], "ok a")], &me, later());
        assert!(wake.is_empty(), "no one is woken to take the role");
        let more = more.expect("b and c are queued");
        assert_eq!(jobs(&more), ["b", "c"]);
        assert_eq!(o.queued(), 0);
        assert!(matches!(o.poll(a, Instant::now()), Turn::Done("ok a")));
        // The role stays held: a frame queued now waits, and b's is being written.
        let td = o.push("d", later(), b.clone(), true);
        assert!(matches!(
            o.poll(td, Instant::now()),
            Turn::Wait { queued: true }
        ));
        assert!(matches!(
            o.poll(tb, Instant::now()),
            Turn::Wait { queued: false }
        ));
        // b asked while its frame was written, and c wants to be told: both are woken.
        let outcomes = vec![outcome(&more[0], "ok b"), outcome(&more[1], "ok c")];
        let (wake, more) = o.write_on(outcomes, &me, later());
        assert_eq!(ids(&wake), ids(&[b.clone(), c]));
        let more = more.expect("d is queued");
        assert_eq!(jobs(&more), ["d"]);
        // Nothing queued behind d: the writer is handed back and no one is woken.
        let (wake, more) = o.write_on(vec![outcome(&more[0], "ok d")], &me, later());
        assert_eq!(ids(&wake), ids(&[b]));
        assert!(more.is_none());
        assert!(o.finish(writer, vec![], vec![], &me).is_empty());
        assert_eq!(o.writer(), Some(&0), "the role is free");
        assert!(matches!(o.poll(tb, Instant::now()), Turn::Done("ok b")));
        assert!(matches!(o.poll(tc, Instant::now()), Turn::Done("ok c")));
        assert!(matches!(o.poll(td, Instant::now()), Turn::Done("ok d")));
    }

    #[test]
    fn the_writer_does_not_write_on_frames_whose_deadline_is_past_its_own() {
        let mut o = O::new(0);
        let me = thread::current();
        let b = other_thread();
        let mine = later();
        let (_, writer, first) = me_writing_a(&mut o, mine, false);
        // b's write could take until b's deadline, far past the writer's own.
        let tb = o.push("b", much_later(), b.clone(), false);
        let (wake, more) = o.write_on(vec![outcome(&first[0], "ok a")], &me, mine);
        assert!(wake.is_empty());
        assert!(more.is_none(), "b's frame stays queued");
        assert_eq!(o.queued(), 1);
        // The role is handed on: b is woken to write its own frame.
        let wake = o.finish(writer, vec![], vec![], &me);
        assert_eq!(ids(&wake), ids(std::slice::from_ref(&b)));
        let (writer, group) = take_role(&mut o, tb);
        // A frame due no later than the bound is written on.
        o.push("c", mine, me.clone(), false);
        let (_, more) = o.write_on(vec![outcome(&group[0], "ok b")], &b, mine);
        let more = more.expect("c is due in time");
        assert_eq!(jobs(&more), ["c"]);
        o.finish(writer, vec![outcome(&more[0], "ok c")], vec![], &b);
        assert!(matches!(o.poll(tb, Instant::now()), Turn::Done("ok b")));
    }
}
