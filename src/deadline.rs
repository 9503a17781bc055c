//! Deadlines: every blocking wait of the library ends at an [`Instant`] made here.

use std::time::{Duration, Instant};

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
}
