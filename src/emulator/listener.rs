//! The listening socket: binding (replacing a stale socket file), accepting, and fresh
//! paths and tokens.

use std::hash::{BuildHasher, Hasher};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use parking_lot::Mutex;

use super::state::State;
use super::{server, EmulatorError};

pub(crate) fn accept_loop(
    listener: UnixListener,
    state: Arc<State>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let next_id = AtomicU64::new(1);
    for socket in listener.incoming() {
        if state.stopping.load(Ordering::Acquire)
            || state.faults.listener_down.load(Ordering::Acquire)
        {
            break;
        }
        let Ok(socket) = socket else { continue };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let conn_state = state.clone();
        match thread::Builder::new()
            .name(format!("ggipc-emu-conn-{id}"))
            .spawn(move || server::serve(conn_state, socket, id))
        {
            Ok(handle) => {
                let mut workers = workers.lock();
                workers.retain(|w| !w.is_finished());
                workers.push(handle);
            }
            Err(e) => log::warn!("emulator: cannot start a connection thread: {e}"),
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

pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
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
