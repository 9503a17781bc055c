//! The background threads the link starts: the I/O thread of each connection and the
//! reconnect supervisor. Each signals its end so that closing can join it with a bound.

use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::connection::Established;

/// What the reconnect supervisor is told.
#[derive(Debug)]
pub(super) enum Notice {
    /// An I/O thread ended: its connection is gone.
    Lost,
    /// A subscription was registered on a connection that was already lost.
    Resync,
    /// The client is closing.
    Stop,
}

/// A running background thread and the channel it signals its end on.
#[derive(Debug)]
pub(super) struct Background {
    id: ThreadId,
    handle: JoinHandle<()>,
    /// Gets the thread's id when it ends (the id only so that this channel has the
    /// element type of the handler pool's: one copy of the channel code in the binary).
    done: Receiver<ThreadId>,
}

impl Background {
    /// Starts `body` on a thread named `name`.
    pub(super) fn spawn(
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Background> {
        let (done_tx, done) = bounded(1);
        let handle = thread::Builder::new().name(name.into()).spawn(move || {
            body();
            let _ = done_tx.send(thread::current().id());
        })?;
        Ok(Background {
            id: handle.thread().id(),
            handle,
            done,
        })
    }

    /// Joins the thread if it ends before `deadline` (never the current thread: `close()`
    /// may run on it).
    pub(super) fn join_until(self, deadline: Instant) {
        if self.id != thread::current().id() && self.done.recv_deadline(deadline).is_ok() {
            let _ = self.handle.join();
        }
    }
}

/// Starts the I/O thread (`ggipc-io`) of `established`; it tells the supervisor (if any)
/// when its connection ends.
pub(super) fn spawn_io(
    established: Established,
    notices: Option<Sender<Notice>>,
) -> std::io::Result<Background> {
    Background::spawn("ggipc-io", move || {
        established.run();
        if let Some(notices) = notices {
            let _ = notices.send(Notice::Lost);
        }
    })
}
