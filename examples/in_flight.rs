//! Many publishes from one thread: sequential calls, or a sliding window of calls in
//! flight with `Client::start`. Prints the rate and, from `/proc`, the context switches
//! and the user and system CPU time per call of the whole process (all its threads); run
//! it under `strace -c -f` for the system calls per call.
//!
//! ```sh
//! cargo run --release --example in_flight -- <topic> <calls> [<window> [<threads>]]
//! ```
//! Without `<window>` (or with 1) each publish waits for its reply before the next one;
//! with it, up to `<window>` publishes are in flight at once. With `<threads>` (default
//! 1), that many threads share one client and each makes `<calls> / <threads>` of the
//! publishes that way (`<calls> 1 8`: 8 threads each publishing in a loop). Every publish carries a
//! 128-byte binary message. Connects from the Greengrass environment
//! (`AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`, `SVCUID`); exits non-zero with
//! the error otherwise.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Instant;

use ggipc::model::{PublishToTopic, PublishToTopicRequest};
use ggipc::{CallOptions, Client};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| args.get(i).map_or(Some(default), |a| a.parse().ok());
    let parsed = match args.len() {
        2..=4 => number(1, 0)
            .zip(number(2, 1))
            .zip(number(3, 1))
            .map(|((c, w), t)| (&args[0], c, w, t)),
        _ => None,
    };
    let Some((topic, calls, window, threads)) = parsed.filter(|p| p.2 >= 1 && p.3 >= 1) else {
        eprintln!("usage: in_flight <topic> <calls> [<window ≥ 1> [<threads ≥ 1>]]");
        return ExitCode::from(2);
    };
    match run(topic, calls, window as usize, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("in_flight failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(topic: &str, calls: u64, window: usize, threads: u64) -> ggipc::Result<()> {
    let client = Client::connect()?;
    let request = PublishToTopicRequest::binary(topic, vec![0x5a; 128]);
    let calls = calls / threads * threads;
    let switches = context_switches();
    let cpu = cpu_times();
    let start = Instant::now();
    // A thread's switches leave `/proc/self/task` with it: each publishing thread counts
    // its own before it ends.
    let workers_switches = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    publish(&client, &request, calls / threads, window)?;
                    Ok(switches_of("/proc/thread-self/status"))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a publishing thread panicked"))
            .sum::<ggipc::Result<Option<u64>>>()
    })?;
    let elapsed = start.elapsed();
    let switches = context_switches()
        .zip(switches)
        .zip(workers_switches)
        .map(|((b, a), w)| b.saturating_sub(a) + w);
    println!(
        "{calls} publishes, window {window}, {threads} thread(s): {:.0} publishes/s",
        calls as f64 / elapsed.as_secs_f64()
    );
    if let Some(s) = switches {
        println!(
            "context switches per publish (all threads): {:.2}",
            s as f64 / calls.max(1) as f64
        );
    }
    if let Some(((user, system), (user0, system0))) = cpu_times().zip(cpu) {
        let per_publish = |seconds: f64| seconds * 1e6 / calls.max(1) as f64;
        println!(
            "CPU per publish (all threads): {:.1} µs user, {:.1} µs system",
            per_publish(user - user0),
            per_publish(system - system0)
        );
    }
    Ok(())
}

/// `calls` publishes from this thread, sequential or with up to `window` in flight.
fn publish(
    client: &Client,
    request: &PublishToTopicRequest,
    calls: u64,
    window: usize,
) -> ggipc::Result<()> {
    if window == 1 {
        for _ in 0..calls {
            client.publish_to_topic(request.clone())?;
        }
        return Ok(());
    }
    let mut pending = VecDeque::with_capacity(window);
    for _ in 0..calls {
        if pending.len() == window {
            let oldest: ggipc::Pending<_> = pending.pop_front().expect("a full window");
            oldest.wait()?;
        }
        pending.push_back(client.start::<PublishToTopic>(request, CallOptions::default())?);
    }
    ggipc::pending::wait_all(pending)
        .into_iter()
        .collect::<ggipc::Result<Vec<_>>>()?;
    Ok(())
}

/// Voluntary plus involuntary context switches of every live thread of this process so
/// far (Linux `/proc`; `None` elsewhere).
fn context_switches() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        total += switches_of(task.ok()?.path().join("status"))?;
    }
    Some(total)
}

/// Voluntary plus involuntary context switches in one thread's `status` file.
fn switches_of(status: impl AsRef<std::path::Path>) -> Option<u64> {
    let status = std::fs::read_to_string(status).ok()?;
    let mut total = 0;
    for line in status.lines() {
        if line.starts_with("voluntary_ctxt_switches:")
            || line.starts_with("nonvoluntary_ctxt_switches:")
        {
            total += line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// User and system CPU time of every thread of this process so far, in seconds (Linux
/// `/proc`, in ticks of 10 ms; `None` elsewhere).
fn cpu_times() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name come the fields from the 3rd on: utime is the 14th, stime
    // the 15th, both in USER_HZ ticks (100 a second on Linux).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user as f64 / 100.0, system as f64 / 100.0))
}
