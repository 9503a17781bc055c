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
//! 5 ms, doubling, up to 250 ms) and logs the failure, then once more when accepting works
//! again. Descriptors freed one at a time make accepting work and fail in turn, so the
//! failure is logged at most once a minute ([`ACCEPT_LOG_INTERVAL`]); the lines count the
//! failures they stand for.
//!
//! # Stopping
//! Stopping (and [`Emulator::go_down`](crate::emulator::Emulator::go_down)) sets a flag
//! and wakes the loop by connecting to the socket file. Each `accept` is also bounded by
//! [`ACCEPT_POLL`], so the loop sees the flag even when that file is gone (a test's temp
//! dir removed first, a script cleaning up). The bound relies on Linux applying the
//! socket's receive timeout to `accept`; elsewhere only the wake-up connection ends it.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::common::errors::EmulatorError;
use super::common::ids::random_u64;
use super::server::{self, Slot};
use crate::emulator::state::State;

/// The first pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause between failed `accept`s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(250);
/// The shortest time between two logged `accept` failures.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The longest an `accept` waits before the loop looks at the stop and down flags again.
const ACCEPT_POLL: Duration = Duration::from_millis(250);

/// Bounds each `accept` on `listener` by `timeout`. std sets a receive timeout only on
/// streams, and the option belongs to the socket, not the descriptor: so it is set on a
/// duplicate of the listener's descriptor, seen as a stream for that one call.
fn bound_accepts(listener: &UnixListener, timeout: Duration) -> io::Result<()> {
    let duplicate = OwnedFd::from(listener.try_clone()?);
    UnixStream::from(duplicate).set_read_timeout(Some(timeout))
}

/// Failed `accept`s: the back-off before the next attempt, and what to log.
///
/// At most one line in [`ACCEPT_LOG_INTERVAL`], besides the line that says accepting works
/// again after a logged failure: a failure is logged if no line was logged in the
/// interval, and so is a success after failures that were not logged. Each line counts the
/// failures it stands for.
#[derive(Debug)]
struct AcceptFailures {
    backoff: Duration,
    /// Failures since the last line.
    unlogged: u64,
    /// When the last line was logged.
    last_line: Option<Instant>,
    /// The last line was a failure: the next success is logged.
    recovery_due: bool,
}

impl AcceptFailures {
    fn new() -> Self {
        AcceptFailures {
            backoff: ACCEPT_BACKOFF_MIN,
            unlogged: 0,
            last_line: None,
            recovery_due: false,
        }
    }

    fn interval_passed(&self, now: Instant) -> bool {
        self.last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= ACCEPT_LOG_INTERVAL)
    }

    /// A failed `accept` at `now`: the line to log, if one is due, and the pause before
    /// the next attempt.
    fn failed(&mut self, error: &std::io::Error, now: Instant) -> (Option<String>, Duration) {
        self.unlogged += 1;
        let line = self.interval_passed(now).then(|| {
            let earlier = match self.unlogged - 1 {
                0 => String::new(),
                n => format!(" ({n} earlier failed attempts not logged)"),
            };
            self.unlogged = 0;
            self.last_line = Some(now);
            self.recovery_due = true;
            format!(
                "accept failed: {error}{earlier}; retrying with a back-off of up to \
                 {ACCEPT_BACKOFF_MAX:?} (logged at most once every {ACCEPT_LOG_INTERVAL:?})"
            )
        });
        let pause = self.backoff;
        self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        (line, pause)
    }

    /// A successful `accept` at `now`: the line to log, if one is due.
    fn accepted(&mut self, now: Instant) -> Option<String> {
        self.backoff = ACCEPT_BACKOFF_MIN;
        let due = self.recovery_due || (self.unlogged > 0 && self.interval_passed(now));
        due.then(|| {
            let line = format!(
                "accepting connections again ({} failed attempts since the last line)",
                self.unlogged
            );
            self.unlogged = 0;
            self.last_line = Some(now);
            self.recovery_due = false;
            line
        })
    }
}

pub(crate) fn accept_loop(
    listener: UnixListener,
    state: Arc<State>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut failures = AcceptFailures::new();
    if let Err(e) = bound_accepts(&listener, ACCEPT_POLL) {
        log::warn!("cannot bound accept by a timeout ({e}): stopping relies on the socket file");
    }
    loop {
        let accepted = listener.accept();
        if state.stopping.load(Ordering::Acquire)
            || state.faults.listener_down.load(Ordering::Acquire)
        {
            break;
        }
        let socket = match accepted {
            Ok((socket, _)) => {
                if let Some(line) = failures.accepted(Instant::now()) {
                    log::warn!("{line}");
                }
                socket
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // No connection within ACCEPT_POLL: look at the flags again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                let (line, pause) = failures.failed(&e, Instant::now());
                if let Some(line) = line {
                    log::warn!("{line}");
                }
                thread::sleep(pause);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> std::io::Error {
        std::io::Error::from_raw_os_error(24)
    }

    #[test]
    fn the_back_off_doubles_to_its_cap_and_a_success_resets_it() {
        let mut f = AcceptFailures::new();
        let now = Instant::now();
        let pauses: Vec<_> = (0..8).map(|_| f.failed(&emfile(), now).1).collect();
        let ms: Vec<_> = pauses.iter().map(|p| p.as_millis()).collect();
        assert_eq!(ms, [5, 10, 20, 40, 80, 160, 250, 250]);
        f.accepted(now);
        assert_eq!(f.failed(&emfile(), now).1, ACCEPT_BACKOFF_MIN);
    }

    #[test]
    fn failing_and_recovering_in_turn_logs_once_a_minute_and_counts_the_rest() {
        let mut f = AcceptFailures::new();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // The first failure, and the first success after it, are logged.
        let first = f
            .failed(&emfile(), t0)
            .0
            .expect("the first failure is logged");
        assert!(first.starts_with("accept failed: "), "{first}");
        assert!(!first.contains("earlier"), "{first}");
        assert_eq!(f.failed(&emfile(), t0).0, None);
        let back = f.accepted(at(1)).expect("the recovery is logged");
        assert!(
            back.contains("(1 failed attempts since the last line)"),
            "{back}"
        );
        // Descriptors freed one at a time: accepting fails and works in turn, silently,
        // for the rest of the minute.
        for s in 2..60 {
            assert_eq!(f.failed(&emfile(), at(s)).0, None, "failure at {s} s");
            assert_eq!(f.failed(&emfile(), at(s)).0, None, "failure at {s} s");
            assert_eq!(f.accepted(at(s)), None, "success at {s} s");
        }
        // A minute after the last line, the next failure is logged with the count.
        let again = f
            .failed(&emfile(), at(61))
            .0
            .expect("logged after a minute");
        assert!(
            again.contains("(116 earlier failed attempts not logged)"),
            "{again}"
        );
        assert!(f.accepted(at(62)).is_some());
        // Counted failures are not lost when no failure follows the minute: the first
        // success after it says them.
        assert_eq!(f.failed(&emfile(), at(63)).0, None);
        assert_eq!(f.accepted(at(63)), None);
        let late = f.accepted(at(122)).expect("the counted failure is logged");
        assert!(
            late.contains("(1 failed attempts since the last line)"),
            "{late}"
        );
        // Nothing is due once everything is said.
        assert_eq!(f.accepted(at(500)), None);
    }
}
