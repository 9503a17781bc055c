//! Waiting for the end of a component: a stop signal from the nucleus, or the loss of the
//! connection for good.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::deadline::deadline_after;
use crate::error::Error;
use crate::Client;

/// How often a waiting component looks at its signals and its connection: bounds how
/// late [`Client::wait_for_shutdown`] returns.
const POLL: Duration = Duration::from_millis(50);

/// The process's handler of SIGTERM and SIGINT, installed by the first wait and kept, so
/// that a signal arriving between two waits is not lost.
static SIGNALS: OnceLock<Option<Mutex<Signals>>> = OnceLock::new();

/// Why a component should stop: what [`Client::wait_for_shutdown`] returns.
///
/// ```
/// use ggipc::{CloseReason, Error, Shutdown};
/// let stop = Shutdown::Signal(15);
/// assert!(stop.is_signal());
/// assert_eq!(stop.to_string(), "signal 15");
/// let lost = Shutdown::ConnectionLost(Error::Closed(CloseReason::PeerClosed));
/// assert!(!lost.is_signal());
/// ```
/// Deliberately exhaustive, so that a `match` needs no catch-all arm.
#[derive(Debug, Clone)]
pub enum Shutdown {
    /// SIGTERM (how the nucleus stops a component) or SIGINT arrived: the number.
    Signal(i32),
    /// The connection is lost for good: no reconnect was configured, reconnecting gave
    /// up, or the client was closed. The error says why.
    ConnectionLost(Error),
}

impl Shutdown {
    /// Starts catching SIGTERM and SIGINT now, so that one arriving before
    /// [`Client::wait_for_shutdown`] is called is not lost (it is then returned by the
    /// first wait). Optional: the first wait does the same. Idempotent.
    ///
    /// ```
    /// ggipc::Shutdown::catch_signals()?;
    /// # Ok::<(), ggipc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the handlers cannot be installed.
    pub fn catch_signals() -> crate::Result<()> {
        match signals() {
            Some(_) => Ok(()),
            None => Err(std::io::Error::other("cannot handle SIGTERM/SIGINT").into()),
        }
    }

    /// `Ok` for a signal (a clean stop), the error for a lost connection: the end of a
    /// component's `main` in one line.
    ///
    /// ```no_run
    /// fn main() -> Result<(), ggipc::Report> {
    ///     let client = ggipc::Client::connect()?;
    ///     // ... subscriptions whose handlers do the work ...
    ///     Ok(client.wait_for_shutdown().into_result()?)
    /// }
    /// ```
    ///
    /// ```
    /// use ggipc::{CloseReason, Error, Shutdown};
    /// assert!(Shutdown::Signal(15).into_result().is_ok());
    /// let lost = Shutdown::ConnectionLost(Error::Closed(CloseReason::PeerClosed));
    /// assert!(matches!(lost.into_result(), Err(Error::Closed(CloseReason::PeerClosed))));
    /// ```
    ///
    /// # Errors
    /// The [`Shutdown::ConnectionLost`] error.
    pub fn into_result(self) -> crate::Result<()> {
        match self {
            Shutdown::Signal(_) => Ok(()),
            Shutdown::ConnectionLost(e) => Err(e),
        }
    }

    /// Whether a signal asked the component to stop (a clean stop: exit 0).
    pub fn is_signal(&self) -> bool {
        matches!(self, Shutdown::Signal(_))
    }
}

impl std::fmt::Display for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shutdown::Signal(n) => write!(f, "signal {n}"),
            Shutdown::ConnectionLost(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl Client {
    /// Blocks until the component should stop: SIGTERM or SIGINT arrives, or the
    /// connection is lost for good (no reconnect configured, reconnecting gave up, or the
    /// client was closed); says which. Returns within about 50 ms of either.
    ///
    /// The two signals are handled from the first call on (the process is no longer
    /// terminated by them: that is the point); handling stays installed after the call.
    /// With [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect) a lost
    /// connection being re-made does not end the wait. When several threads wait, one
    /// of them receives a given signal.
    ///
    /// ```no_run
    /// fn main() -> std::process::ExitCode {
    ///     let client = ggipc::Client::connect().expect("connect");
    ///     // ... subscriptions whose handlers do the work ...
    ///     match client.wait_for_shutdown() {
    ///         ggipc::Shutdown::Signal(_) => std::process::ExitCode::SUCCESS,
    ///         ggipc::Shutdown::ConnectionLost(e) => {
    ///             eprintln!("{e}");
    ///             std::process::ExitCode::FAILURE
    ///         }
    ///     }
    /// }
    /// ```
    pub fn wait_for_shutdown(&self) -> Shutdown {
        loop {
            if let Some(why) = self.wait_for_shutdown_until(None) {
                return why;
            }
        }
    }

    /// [`Client::wait_for_shutdown`], waiting at most `timeout`: `None` when neither
    /// happened by then.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let emulator = ggipc::emulator::Emulator::start()?;
    /// let client = emulator.connect()?;
    /// assert!(client.wait_for_shutdown_timeout(Duration::from_millis(10)).is_none());
    /// emulator.stop(); // the nucleus goes away
    /// let why = client.wait_for_shutdown_timeout(Duration::from_secs(5));
    /// assert!(matches!(why, Some(ggipc::Shutdown::ConnectionLost(_))), "{why:?}");
    /// # Ok(()) }
    /// ```
    pub fn wait_for_shutdown_timeout(&self, timeout: Duration) -> Option<Shutdown> {
        self.wait_for_shutdown_until(Some(deadline_after(timeout)))
    }

    fn wait_for_shutdown_until(&self, deadline: Option<Instant>) -> Option<Shutdown> {
        let signals = signals();
        loop {
            if let Some(signal) = signals.and_then(|s| s.lock().pending().next()) {
                return Some(Shutdown::Signal(signal));
            }
            if let Some(reason) = self.lost_for_good() {
                return Some(Shutdown::ConnectionLost(Error::Closed(reason)));
            }
            let now = Instant::now();
            let nap = match deadline {
                Some(d) if d <= now => return None,
                Some(d) => POLL.min(d - now),
                None => POLL,
            };
            std::thread::sleep(nap);
        }
    }
}

/// The process's signal handling, installed on first use.
fn signals() -> Option<&'static Mutex<Signals>> {
    SIGNALS
        .get_or_init(|| match Signals::new([SIGTERM, SIGINT]) {
            Ok(s) => Some(Mutex::new(s)),
            Err(e) => {
                log::warn!("cannot handle SIGTERM/SIGINT: {e}");
                None
            }
        })
        .as_ref()
}
