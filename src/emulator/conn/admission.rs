//! Connection-level settings (the cap, deadlines, queue bounds) and which connections
//! hold a slot under the cap (see `listener.rs` for the admission policy).

use std::collections::{HashSet, VecDeque};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Evicted connections whose threads have not ended yet, beyond the cap, at most.
const EVICTION_SLACK: usize = 16;

/// Connection-level settings of an emulator (see the builder for each).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionSettings {
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) queue_events: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) max_streams: usize,
    /// How long a reading thread polls its socket before a blocking read (zero: never).
    pub(crate) busy_poll: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            queue_events: 1024,
            queue_bytes: 4 * 1024 * 1024,
            max_streams: 65_536,
            busy_poll: Duration::ZERO,
        }
    }
}

/// Which connections hold a slot.
#[derive(Default)]
pub(crate) struct Admission {
    inner: Mutex<Admitted>,
}

#[derive(Default)]
struct Admitted {
    /// Connections holding a slot (not evicted).
    live: usize,
    /// Evicted connections whose threads have not ended yet.
    closing: usize,
    /// Connections that have not completed the handshake, oldest first.
    pending: VecDeque<(u64, Instant, Arc<UnixStream>)>,
    evicted: HashSet<u64>,
}

impl Admission {
    /// Takes a slot for connection `id`, evicting the oldest unauthenticated connection
    /// when the cap is reached; `Err` says why the connection is refused.
    pub(crate) fn admit(
        &self,
        cap: usize,
        id: u64,
        socket: &Arc<UnixStream>,
    ) -> Result<(), String> {
        let mut a = self.inner.lock();
        if a.live >= cap && a.closing < EVICTION_SLACK {
            if let Some((old, since, old_socket)) = a.pending.pop_front() {
                let _ = old_socket.shutdown(std::net::Shutdown::Both);
                a.evicted.insert(old);
                a.live -= 1;
                a.closing += 1;
                log::warn!(
                    "connection cap ({cap}) reached: closing connection #{old}, \
                     which sent no CONNECT in {:?}, to admit #{id}",
                    since.elapsed()
                );
            }
        }
        if a.live >= cap {
            return Err(format!(
                "the connection cap of {cap} is reached and every connection is authenticated \
                 (max_connections)"
            ));
        }
        a.live += 1;
        a.pending.push_back((id, Instant::now(), socket.clone()));
        Ok(())
    }

    /// Closes every connection that has not completed its handshake (their threads then
    /// end and release their slots).
    pub(crate) fn close_pending(&self) {
        for (_, _, socket) in &self.inner.lock().pending {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Connection `id` completed its handshake: it can no longer be evicted.
    pub(crate) fn authenticated(&self, id: u64) {
        self.inner.lock().pending.retain(|p| p.0 != id);
    }

    pub(crate) fn release(&self, id: u64) {
        let mut a = self.inner.lock();
        if a.evicted.remove(&id) {
            a.closing -= 1;
        } else {
            a.live = a.live.saturating_sub(1);
            a.pending.retain(|p| p.0 != id);
        }
    }
}
