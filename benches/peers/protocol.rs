//! The line protocol between `cargo bench --bench ggipc` (side-by-side group) and a
//! contender process, shared by the Rust peers (`#[path]`-included); the Python peer
//! (`benches/official_client.py`) speaks the same lines.
//!
//! The contender connects with `AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT` and
//! `SVCUID`, prints `ready`, then answers one command per stdin line:
//!
//! | command                   | answer                               |
//! |---------------------------|--------------------------------------|
//! | `rtt N TOPIC`             | `rtt P50_US P99_US`                  |
//! | `pipelined T SECS TOPIC`  | `pipelined OPS ELAPSED_S`            |
//! | `events P TOTAL TOPIC`    | `events DELIVERED ELAPSED_S DROPPED` |
//! | `quit`                    | (exits)                              |
//!
//! Any failure is answered with `error TEXT`. Every publish carries a
//! `BENCH_PAYLOAD`-byte (default 128) binary message.
//!
//! - `rtt`: N/10 untimed warm-up publishes, then N sequential timed ones.
//! - `pipelined`: T threads (or tasks) publish in a loop for SECS; ops counted until all
//!   have stopped, over the time from their release to the last one joining.
//! - `events`: subscribe to TOPIC, then P publishers publish TOTAL/P messages each to it
//!   (the harness sends a TOTAL divisible by P);
//!   the time runs from the publishers' release to the TOTAL-th event seen by the
//!   subscription's handler (bounded by [`EVENTS_TIMEOUT`]).

#![allow(dead_code)]

use std::io::BufRead;
use std::time::Duration;

/// The longest an `events` command waits for its events.
pub const EVENTS_TIMEOUT: Duration = Duration::from_secs(60);

pub enum Command {
    Rtt {
        n: usize,
        topic: String,
    },
    Pipelined {
        threads: usize,
        secs: f64,
        topic: String,
    },
    Events {
        publishers: usize,
        total: usize,
        topic: String,
    },
}

/// The payload of every publish.
pub fn payload() -> Vec<u8> {
    let n = std::env::var("BENCH_PAYLOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    vec![0x5a; n]
}

/// Commands from stdin until `quit` or end of input; malformed lines are answered
/// with `error` and skipped.
pub fn commands() -> impl Iterator<Item = Command> {
    std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l.trim() != "quit")
        .filter_map(|line| match parse(&line) {
            Ok(c) => Some(c),
            Err(e) => {
                say(&format!("error {e}"));
                None
            }
        })
}

fn parse(line: &str) -> Result<Command, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> Result<f64, String> {
        w.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("bad command {line:?}"))
    };
    let topic = |i: usize| -> Result<String, String> {
        w.get(i)
            .map(|s| s.to_string())
            .ok_or_else(|| format!("bad command {line:?}"))
    };
    match w.first().copied() {
        Some("rtt") => Ok(Command::Rtt {
            n: num(1)? as usize,
            topic: topic(2)?,
        }),
        Some("pipelined") => Ok(Command::Pipelined {
            threads: num(1)? as usize,
            secs: num(2)?,
            topic: topic(3)?,
        }),
        Some("events") => Ok(Command::Events {
            publishers: (num(1)? as usize).max(1),
            total: num(2)? as usize,
            topic: topic(3)?,
        }),
        _ => Err(format!("unknown command {line:?}")),
    }
}

/// One line to the harness, flushed.
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The `rtt` answer for latencies in nanoseconds.
pub fn rtt_line(mut lat: Vec<u64>) -> String {
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() - 1) as f64 * p).round() as usize;
        lat[i.min(lat.len() - 1)] as f64 / 1000.0
    };
    format!("rtt {:.3} {:.3}", pct(0.5), pct(0.99))
}
