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
    // time left makes the write wake and re-arm, with the same outcome for the caller. The
    // test below pins when it sets, through the socket's timeout.
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
        // About a century (the cap, 100 × 365 days) from now.
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let after = Instant::now();
        assert!(far >= before + century && far <= after + century);
        let near = deadline_after(Duration::from_millis(10));
        assert!(near >= before + Duration::from_millis(10) && near < far);
    }

    #[test]
    fn a_write_timeout_is_set_again_only_when_the_time_left_moved_away_from_it() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut timeout = WriteTimeout::default();
        // Whether `arm(remaining)` set the socket's timeout: a marker set behind its back
        // is still there when it did not.
        let ms = Duration::from_millis;
        let sets = |timeout: &mut WriteTimeout, remaining: Duration| {
            let marker = Duration::from_secs(77);
            a.set_write_timeout(Some(marker)).unwrap();
            timeout.arm(&a, remaining).unwrap();
            // (The kernel keeps a timeout in clock ticks: it reads back rounded up.)
            let now = a.write_timeout().unwrap().unwrap();
            let set = now != marker;
            assert!(
                !set || now.abs_diff(remaining) < ms(20),
                "{now:?} for {remaining:?}"
            );
            set
        };
        assert!(sets(&mut timeout, ms(5_000)), "the first arm sets");
        // As much time left, or a little less (within the slack): not set again.
        assert!(!sets(&mut timeout, ms(5_000)));
        assert!(!sets(&mut timeout, ms(4_990)));
        assert!(!sets(&mut timeout, ms(5_000) - TIMEOUT_SLACK));
        // Less time left than the one set, beyond the slack: set.
        assert!(sets(&mut timeout, ms(1_000)));
        // More time left, up to twice the one set: not set (a blocked write wakes early
        // and arms again); beyond that, set.
        assert!(!sets(&mut timeout, ms(1_500)));
        assert!(!sets(&mut timeout, ms(2_000)));
        assert!(sets(&mut timeout, ms(2_001)));
    }
}
