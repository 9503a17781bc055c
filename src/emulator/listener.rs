//! The listening socket: binding (replacing a stale socket file), accepting with a
//! connection cap and a back-off on errors, and fresh paths and tokens.
//!
//! # Admission
//! Every accepted connection takes a slot until its thread ends; at most
//! [`EmulatorBuilder::max_connections`](crate::emulator::EmulatorBuilder::max_connections) are
//! served at once. When the cap is reached, the oldest connection that has not completed
//! its handshake yet is closed to make room (so idle or slow connections cannot keep a
//! component out; a component sends its CONNECT at once); when every connection is
//! authenticated, the new one is refused. Each refusal or eviction is logged at warn,
//! naming the connection and the reason.
//!
//! When `accept` fails (for example at the open-file limit), the loop backs off (from
//! 5 ms, doubling, up to 250 ms) and logs the failure once, then once more when accepting
//! works again.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use super::common::errors::EmulatorError;
use super::common::ids::random_u64;
use super::server::{self, Slot};
use crate::emulator::state::State;

/// The first pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause between failed `accept`s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(250);
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

pub(crate) fn fresh_socket_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "ggipc-{}-{n}-{:08x}.sock",
        std::process::id(),
        random_u64() as u32
    ))
}
