//! Many publishes from one thread: sequential calls, or a sliding window of calls in
//! flight with `Client::start`. Prints the rate and, from `/proc`, the context switches
//! per call of the whole process (all its threads); run it under `strace -c -f` for the
//! system calls per call.
//!
//! ```sh
//! cargo run --release --example in_flight -- <topic> <calls> [<window>]
//! ```
//! Without `<window>` (or with 1) each publish waits for its reply before the next one;
//! with it, up to `<window>` publishes are in flight at once. Every publish carries a
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
    let parsed = match args.as_slice() {
        [topic, calls] => calls.parse().ok().map(|c| (topic, c, 1)),
        [topic, calls, window] => calls
            .parse()
            .ok()
            .zip(window.parse().ok())
            .map(|(c, w)| (topic, c, w)),
        _ => None,
    };
    let Some((topic, calls, window)) = parsed.filter(|p| p.2 >= 1) else {
        eprintln!("usage: in_flight <topic> <calls> [<window ≥ 1>]");
        return ExitCode::from(2);
    };
    match run(topic, calls, window) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("in_flight failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(topic: &str, calls: u64, window: usize) -> ggipc::Result<()> {
    let client = Client::connect()?;
    let request = PublishToTopicRequest::binary(topic, vec![0x5a; 128]);
    let switches = context_switches();
    let start = Instant::now();
    if window == 1 {
        for _ in 0..calls {
            client.publish_to_topic(request.clone())?;
        }
    } else {
        let mut pending = VecDeque::with_capacity(window);
        for _ in 0..calls {
            if pending.len() == window {
                let oldest: ggipc::Pending<_> = pending.pop_front().expect("a full window");
                oldest.wait()?;
            }
            pending.push_back(client.start::<PublishToTopic>(&request, CallOptions::default())?);
        }
        for result in ggipc::pending::wait_all(pending) {
            result?;
        }
    }
    let elapsed = start.elapsed();
    let switches = context_switches()
        .zip(switches)
        .map(|(b, a)| b.saturating_sub(a));
    println!(
        "{calls} publishes, window {window}: {:.0} publishes/s",
        calls as f64 / elapsed.as_secs_f64()
    );
    if let Some(s) = switches {
        println!(
            "context switches per publish (all threads): {:.2}",
            s as f64 / calls.max(1) as f64
        );
    }
    Ok(())
}

/// Voluntary plus involuntary context switches of every thread of this process so far
/// (Linux `/proc`; `None` elsewhere).
fn context_switches() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:")
                || line.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        }
    }
    Some(total)
}
