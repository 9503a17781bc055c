//! The listening socket: binding (replacing a stale socket file), accepting with a
//! connection cap and a back-off on errors, and fresh paths and tokens.
//!
//! # Admission
//! Every accepted connection takes a slot until its thread ends; at most
//! [`EmulatorBuilder::max_connections`](super::EmulatorBuilder::max_connections) are
//! served at once. When the cap is reached, the oldest connection that has not completed
//! its handshake yet is closed to make room (so idle or slow connections cannot keep a
//! component out; a component sends its CONNECT at once); when every connection is
//! authenticated, the new one is refused. Each refusal or eviction is logged at warn,
//! naming the connection and the reason.
//!
//! When `accept` fails (for example at the open-file limit), the loop backs off (from
//! 5 ms, doubling, up to 250 ms) and logs the failure once, then once more when accepting
//! works again.

use std::collections::{HashSet, VecDeque};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::state::State;
use super::{server, EmulatorError};

/// The first pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause between failed `accept`s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(250);
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
    fn admit(&self, cap: usize, id: u64, socket: &Arc<UnixStream>) -> Result<(), String> {
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

    fn release(&self, id: u64) {
        let mut a = self.inner.lock();
        if a.evicted.remove(&id) {
            a.closing -= 1;
        } else {
            a.live = a.live.saturating_sub(1);
            a.pending.retain(|p| p.0 != id);
        }
    }
}

/// A connection's slot; released when dropped (when its thread ends).
pub(crate) struct Slot {
    state: Arc<State>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.admission.release(self.id);
    }
}

pub(crate) fn accept_loop(
    listener: UnixListener,
    state: Arc<State>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut failures = 0u64;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = listener.accept();
        if state.stopping.load(Ordering::Acquire)
            || state.faults.listener_down.load(Ordering::Acquire)
        {
            break;
        }
        let socket = match accepted {
            Ok((socket, _)) => {
                if failures > 0 {
                    log::warn!("accepting connections again after {failures} failed attempts");
                    failures = 0;
                    backoff = ACCEPT_BACKOFF_MIN;
                }
                socket
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if failures == 0 {
                    log::warn!(
                        "accept failed: {e}; retrying with a back-off of up to \
                         {ACCEPT_BACKOFF_MAX:?} (not logged again until accepting works)"
                    );
                }
                failures += 1;
                thread::sleep(backoff);
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let id = state.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let socket = Arc::new(socket);
        if let Err(why) = state
            .admission
            .admit(state.settings.max_connections, id, &socket)
        {
            log::warn!("refused connection #{id}: {why}");
            let _ = socket.shutdown(std::net::Shutdown::Both);
            continue;
        }
        let slot = Slot {
            state: state.clone(),
            id,
        };
        let conn_state = state.clone();
        match thread::Builder::new()
            .name(format!("ggipc-emu-conn-{id}"))
            .spawn(move || server::serve(conn_state, socket, id, slot))
        {
            Ok(handle) => {
                let mut workers = workers.lock();
                workers.retain(|w| !w.is_finished());
                workers.push(handle);
            }
            Err(e) => {
                log::warn!("refused connection #{id}: cannot start its thread: {e}")
            }
        }
    }
}

pub(crate) fn bind(path: &Path) -> Result<UnixListener, EmulatorError> {
    match UnixListener::bind(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(EmulatorError::InUse(path.to_owned()));
            }
            // A stale socket file from a killed emulator.
            std::fs::remove_file(path).map_err(|source| EmulatorError::Socket {
                path: path.to_owned(),
                source,
            })?;
            UnixListener::bind(path).map_err(|source| EmulatorError::Socket {
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(EmulatorError::Socket {
            path: path.to_owned(),
            source,
        }),
    }
}

/// 64 fresh random bits (the library's one generator, `crate::random`).
pub(crate) fn random_u64() -> u64 {
    crate::random::entropy()
}

pub(crate) fn random_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

pub(crate) fn fresh_socket_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "ggipc-{}-{n}-{:08x}.sock",
        std::process::id(),
        random_u64() as u32
    ))
}
