//! The connection slot: the client's current connection, the flag that reconnecting gave
//! up, the thread handles, and closing all of it within a bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::registry::{Registry, SubEntry};
use super::threads::{Background, Notice};
use crate::config::Config;
use crate::connection::{Abort, Connection};
use crate::deadline::deadline_after;
use crate::dispatch::Dispatcher;
use crate::error::{CloseReason, Error, Result, StreamEnd, TimeoutKind};

/// The current connection.
#[derive(Debug)]
struct Slot {
    connection: Arc<Connection>,
    io: Option<Background>,
    /// Reconnecting gave up: the client stays closed.
    gave_up: bool,
    /// A new connection is installed and its subscriptions are being re-made on it:
    /// calls wait (within their deadline) until they are, so that a call is never
    /// answered before the subscriptions are back.
    resuming: bool,
}

/// A client's connection and everything that keeps it, shared by the client handles, the
/// subscriptions (weakly) and the reconnect supervisor.
pub(crate) struct Link {
    pub(super) config: Config,
    dispatcher: Dispatcher,
    slot: Mutex<Slot>,
    /// Signalled when the slot gets a new connection, the client closes or gives up.
    changed: Condvar,
    pub(super) registry: Registry,
    closed: AtomicBool,
    /// The socket of a reconnect attempt under way, so that `close()` can abort it.
    pub(super) connecting: Mutex<Option<Abort>>,
    /// Tells the supervisor about lost connections and new subscriptions to resume.
    pub(super) notices: Option<Sender<Notice>>,
    supervisor: Mutex<Option<Background>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the config: it holds the token.
        f.debug_struct("Link")
            .field("socket_path", &self.config.socket_path)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link on `connection`, served by `io`; `notices` reach the supervisor (with
    /// reconnect), which is attached with [`set_supervisor`](Self::set_supervisor).
    pub(super) fn new(
        config: Config,
        dispatcher: Dispatcher,
        connection: Arc<Connection>,
        io: Background,
        notices: Option<Sender<Notice>>,
    ) -> Link {
        Link {
            config,
            dispatcher,
            slot: Mutex::new(Slot {
                connection,
                io: Some(io),
                gave_up: false,
                resuming: false,
            }),
            changed: Condvar::new(),
            registry: Registry::default(),
            closed: AtomicBool::new(false),
            connecting: Mutex::new(None),
            notices,
            supervisor: Mutex::new(None),
        }
    }

    /// Attaches the reconnect supervisor's thread (joined at close).
    pub(super) fn set_supervisor(&self, supervisor: Background) {
        *self.supervisor.lock() = Some(supervisor);
    }

    /// The settings.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The handler pool.
    pub(crate) fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Why the current connection closed, if it has.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.slot.lock().connection.close_reason()
    }

    /// Why the client is closed for good: closed by the user, or its connection closed
    /// with no reconnect, or reconnecting gave up. `None` while connected or reconnecting.
    pub(crate) fn lost_for_good(&self) -> Option<CloseReason> {
        if self.is_closed() {
            return Some(CloseReason::ByUser);
        }
        let slot = self.slot.lock();
        let reason = slot.connection.close_reason()?;
        (self.config.reconnect.is_none() || slot.gave_up).then_some(reason)
    }

    /// The connection to call on. While reconnecting: [`Error::Disconnected`] at once, or
    /// (with `wait`) the new connection once it is up, or a timeout at `deadline`. Once a
    /// new connection is installed and its subscriptions are being re-made (`resuming`),
    /// every call waits for that, `wait` or not, up to `deadline`. Without
    /// reconnect, after `close()` or after giving up: the closed connection (whose calls
    /// fail with [`Error::Closed`]).
    pub(crate) fn current(&self, deadline: Instant, wait: bool) -> Result<Arc<Connection>> {
        let mut slot = self.slot.lock();
        loop {
            if self.is_closed() {
                return Err(Error::Closed(CloseReason::ByUser));
            }
            let connection = slot.connection.clone();
            let Some(reason) = connection.close_reason() else {
                if !slot.resuming {
                    return Ok(connection);
                }
                if self.changed.wait_until(&mut slot, deadline).timed_out() && slot.resuming {
                    return Err(Error::Timeout(TimeoutKind::Connect));
                }
                continue;
            };
            if self.config.reconnect.is_none() || slot.gave_up || self.is_closed() {
                return Ok(connection);
            }
            if !wait {
                return Err(Error::Disconnected(reason));
            }
            if self.changed.wait_until(&mut slot, deadline).timed_out()
                && slot.connection.close_reason().is_some()
            {
                return Err(Error::Timeout(TimeoutKind::Connect));
            }
        }
    }

    /// With reconnect under way, a call that failed because its connection was lost
    /// reports [`Error::Disconnected`].
    pub(crate) fn map_err(&self, e: Error) -> Error {
        match e {
            Error::Closed(reason)
                if reason != CloseReason::ByUser
                    && self.config.reconnect.is_some()
                    && !self.is_closed()
                    && !self.slot.lock().gave_up =>
            {
                Error::Disconnected(reason)
            }
            other => other,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Registers a new subscription; returns its key. If the connection it was made on
    /// was lost meanwhile, the supervisor is asked to resume it.
    pub(crate) fn register(&self, entry: Arc<SubEntry>, connection: &Arc<Connection>) -> u64 {
        let key = self.registry.insert(entry.clone());
        if self.is_closed() {
            entry.queue.note_end(StreamEnd::ClosedByClient);
            entry.queue.finish(None);
        } else if connection.close_reason().is_some() {
            if let Some(notices) = &self.notices {
                let _ = notices.send(Notice::Resync);
            }
        }
        key
    }

    /// Forgets a subscription the user closed.
    pub(crate) fn forget_subscription(&self, key: u64) {
        self.registry.remove(key);
    }

    /// How many streams are open on the current connection.
    pub(crate) fn open_streams(&self) -> usize {
        let connection = self.slot.lock().connection.clone();
        connection.open_streams()
    }

    /// The connection in the slot now (for the supervisor).
    pub(super) fn slot_connection(&self) -> Arc<Connection> {
        self.slot.lock().connection.clone()
    }

    /// Installs a new connection (from the supervisor). Fails if the client was closed
    /// meanwhile (the new connection is then shut down).
    /// Installs a new connection; calls wait until [`resumed`](Self::resumed) says its
    /// subscriptions are back. `false` when the client was closed meanwhile.
    pub(super) fn install(&self, connection: Arc<Connection>, io: Background) -> bool {
        let old = {
            let mut slot = self.slot.lock();
            if self.is_closed() {
                drop(slot);
                connection.shutdown(CloseReason::ByUser);
                io.join_until(deadline_after(self.config.shutdown_timeout));
                return false;
            }
            slot.connection = connection;
            slot.resuming = true;
            slot.io.replace(io)
        };
        self.changed.notify_all();
        if let Some(old) = old {
            // It has ended (that is why we reconnected).
            old.join_until(deadline_after(self.config.shutdown_timeout));
        }
        true
    }

    /// The subscriptions are back on the installed connection (or it was lost again):
    /// calls go ahead.
    pub(super) fn resumed(&self) {
        self.slot.lock().resuming = false;
        self.changed.notify_all();
    }

    /// Reconnecting gave up: calls now fail with `Closed`, subscriptions end.
    pub(super) fn give_up(&self, reason: &CloseReason) {
        self.slot.lock().gave_up = true;
        self.changed.notify_all();
        for entry in self.registry.take_all() {
            entry.queue.finish(Some(Error::Closed(reason.clone())));
        }
    }

    /// Closes for good: see [`Client::close`](crate::Client::close).
    pub(crate) fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = deadline_after(self.config.shutdown_timeout);
        // Whatever the connection's ending says, these subscriptions end because the
        // client closed.
        for entry in self.registry.all() {
            entry.queue.note_end(StreamEnd::ClosedByClient);
        }
        let (connection, io) = {
            let mut slot = self.slot.lock();
            slot.connection.shutdown(CloseReason::ByUser);
            (slot.connection.clone(), slot.io.take())
        };
        if let Some(attempt) = self.connecting.lock().take() {
            attempt.abort();
        }
        self.changed.notify_all();
        if let Some(notices) = &self.notices {
            let _ = notices.send(Notice::Stop);
        }
        if let Some(io) = io {
            io.join_until(deadline);
        }
        if let Some(supervisor) = self.supervisor.lock().take() {
            supervisor.join_until(deadline);
        }
        connection.fail_all(CloseReason::ByUser);
        for entry in self.registry.take_all() {
            entry.queue.note_end(StreamEnd::ClosedByClient);
            entry.queue.finish(None);
        }
        self.dispatcher.shutdown(deadline);
    }
}
