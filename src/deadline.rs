//! Deadlines: every blocking wait of the library ends at an [`Instant`] made here, and a
//! socket's write timeout is armed from what is left of one ([`WriteTimeout`]).

use std::io;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How far a socket's write timeout may lag behind the time left before it is set again.
/// Keeps `setsockopt` off the hot path; a blocked write overshoots its deadline by at most
/// this much.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// A socket's write timeout as this side last set it, so that a write with about as much
/// time left as the last one does not set it again (one `setsockopt` saved per write).
/// Shared by the client's writer and the emulator's.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteTimeout(Option<Duration>);

impl WriteTimeout {
    /// Sets `socket`'s write timeout to `remaining` (non-zero) unless the one set is
    /// within [`TIMEOUT_SLACK`] above it and not under half of it.
    // The second clause only saves `setsockopt` calls: a timeout armed shorter than the
    // time left makes the write wake and re-arm, with the same outcome. Its mutants (`<` →
    // `==`/`>`/`<=`, `/` → `*`), and `>` → `>=` in the first, are equivalent in what the
    // caller sees.
    pub(crate) fn arm(&mut self, socket: &UnixStream, remaining: Duration) -> io::Result<()> {
        let stale = match self.0 {
            None => true,
            Some(t) => t > remaining + TIMEOUT_SLACK || t < remaining / 2,
        };
        if stale {
            // A zero duration is rejected by the OS; callers pass a non-zero `remaining`.
            socket.set_write_timeout(Some(remaining))?;
            self.0 = Some(remaining);
        }
        Ok(())
    }
}

/// The instant `timeout` from now. A timeout too large to represent (such as
/// `Duration::MAX`, "no deadline") is capped at about a century instead of panicking.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrepresentable_timeout_is_capped_instead_of_panicking() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far > before + Duration::from_secs(365 * 24 * 60 * 60));
        let near = deadline_after(Duration::from_millis(10));
        assert!(near >= before + Duration::from_millis(10) && near < far);
    }

    #[test]
    fn a_write_timeout_is_set_again_only_when_the_time_left_moved_away_from_it() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut timeout = WriteTimeout::default();
        timeout.arm(&a, Duration::from_secs(5)).unwrap();
        assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(5)));
        // Marks what this side set, to see whether the next arm sets it again.
        let marker = Duration::from_secs(77);
        a.set_write_timeout(Some(marker)).unwrap();
        // About as much time left: not set again.
        timeout.arm(&a, Duration::from_millis(4_990)).unwrap();
        assert_eq!(a.write_timeout().unwrap(), Some(marker));
        // Less time left than the one set (beyond the slack): set.
        timeout.arm(&a, Duration::from_secs(1)).unwrap();
        assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(1)));
        // Much more time left than the one set: set, or a write would wake early.
        timeout.arm(&a, Duration::from_secs(3)).unwrap();
        assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(3)));
    }
}
