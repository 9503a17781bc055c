//! Watching for something for a short while before sleeping: a blocked caller for its
//! reply (`connection/reply.rs`), an idle handler thread for the next event
//! (`dispatch.rs`). A wake-up is what a fast exchange mostly waits for: on a multi-core
//! machine the thread that sleeps is woken on a CPU that may have gone idle, tens of
//! microseconds later on a virtual machine. A thread that watches instead stays on its
//! CPU, yielding it to any thread ready to run. How long is
//! [`ClientBuilder::reply_spin`](crate::ClientBuilder::reply_spin); [`Spin`] keeps a
//! thread whose watches miss from paying for them, and [`several_cpus`] keeps a process
//! confined to one CPU from watching at all.

use std::cell::Cell;
use std::io::Read;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Calls `look` until it gives something, yielding the CPU between calls, for up to
/// `spin` and not past `deadline`. `None` when the thread should sleep instead: `spin` is
/// zero, the process may run on one CPU only, this thread's record says its watches miss
/// (it sleeps at once), or nothing came in time (recorded as a miss).
pub(crate) fn watch<T>(
    spin: Duration,
    deadline: Option<Instant>,
    mut look: impl FnMut() -> Option<T>,
) -> Option<T> {
    if spin.is_zero() || !several_cpus() || !Spin::with(Spin::begin) {
        return None;
    }
    let mut until = Instant::now() + spin;
    if let Some(deadline) = deadline {
        until = until.min(deadline);
    }
    loop {
        if let Some(got) = look() {
            Spin::with(|s| s.end(true));
            return Some(got);
        }
        if Instant::now() >= until {
            Spin::with(|s| s.end(false));
            return None;
        }
        thread::yield_now();
    }
}

/// This thread's record of its watches (for tests).
#[cfg(test)]
pub(crate) fn record() -> Spin {
    Spin::with(|s| *s)
}

/// Whether this process's threads may run on more than one CPU at once: with one, a
/// caller that spins only delays the threads that would answer it (measured: 8 threads
/// on one CPU against a server that sleeps published about 40 % slower with the spin).
/// Read once from the CPUs the process may run on (`Cpus_allowed_list` in
/// `/proc/self/status`: `taskset` and cpusets show there); `false` when that cannot be
/// read. (`std::thread::available_parallelism` would also count a cgroup's CPU quota,
/// which does not stop threads running at once, and adds 14 KB to a binary.)
pub(crate) fn several_cpus() -> bool {
    static SEVERAL: OnceLock<bool> = OnceLock::new();
    *SEVERAL.get_or_init(|| {
        // One read into one buffer (the text is about 1.5 KiB): `fs::read_to_string`
        // would also ask for the file's size, which costs a binary more code.
        let mut status = [0u8; 4096];
        let len = std::fs::File::open("/proc/self/status")
            .and_then(|mut file| file.read(&mut status))
            .unwrap_or(0);
        several_allowed(&status[..len])
    })
}

/// Whether the `Cpus_allowed_list` line of a `/proc/PID/status` text names more than
/// one CPU: the kernel writes one CPU as its number alone (`2`) and several as ranges
/// and lists (`0-3,6`). `false` without that line.
pub(crate) fn several_allowed(status: &[u8]) -> bool {
    let key = b"Cpus_allowed_list:";
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(key))
        .is_some_and(|list| list.iter().any(|&b| b == b'-' || b == b','))
}

/// A thread's record of its watches before sleeping: a spin that ended without its reply
/// makes the thread's next calls sleep at once, 1, 3, 7, … up to 63 of them as such
/// misses repeat; a spin that got its reply clears the record. Against a server slower
/// than the spin, a thread spends one spin per 64 calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Spin {
    /// Spins missed in a row (at most [`Spin::MAX_MISSES`]).
    pub(crate) misses: u8,
    /// Calls left that sleep at once.
    pub(crate) skip: u8,
}

thread_local! {
    static SPIN: Cell<Spin> = const { Cell::new(Spin { misses: 0, skip: 0 }) };
}

impl Spin {
    const MAX_MISSES: u8 = 6;

    /// Runs `f` on this thread's record (a thread being torn down has none: it does
    /// not spin).
    fn with<T: Default>(f: impl FnOnce(&mut Spin) -> T) -> T {
        SPIN.try_with(|cell| {
            let mut spin = cell.get();
            let result = f(&mut spin);
            cell.set(spin);
            result
        })
        .unwrap_or_default()
    }

    /// Whether this call spins (else one call fewer is left to sleep at once).
    fn begin(&mut self) -> bool {
        match self.skip {
            0 => true,
            _ => {
                self.skip -= 1;
                false
            }
        }
    }

    /// A spin ended: with its reply or without.
    fn end(&mut self, got_reply: bool) {
        if got_reply {
            *self = Spin::default();
        } else {
            self.misses = (self.misses + 1).min(Spin::MAX_MISSES);
            self.skip = (1u8 << self.misses) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_allowed_cpus_are_read_from_the_status_text() {
        let status = |list: &str| {
            format!("Name:\tx\nCpus_allowed:\tf\nCpus_allowed_list:\t{list}\nMems_allowed:\t1\n")
        };
        for (list, several) in [("0-3,6", true), ("1,3", true), ("0-1", true), ("2", false)] {
            assert_eq!(several_allowed(status(list).as_bytes()), several, "{list}");
        }
        assert!(!several_allowed(b"Name:\tx\nCpus_allowed:\t3\n"));
        assert!(!several_allowed(b""));
    }

    #[test]
    fn missed_spins_make_the_next_calls_sleep_at_once_until_a_spin_gets_its_reply() {
        let mut spin = Spin::default();
        assert!(spin.begin(), "a thread's first call spins");
        let mut skipped = Vec::new();
        for _ in 0..8 {
            // The spin missed its reply: count the calls that sleep at once before the
            // next one that spins.
            spin.end(false);
            let mut n = 0;
            while !spin.begin() {
                n += 1;
            }
            skipped.push(n);
        }
        assert_eq!(skipped, [1, 3, 7, 15, 31, 63, 63, 63]);
        spin.end(true);
        assert_eq!(spin, Spin::default());
        assert!(spin.begin());
    }
}
