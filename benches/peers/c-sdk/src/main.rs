//! The official AWS IoT Greengrass component SDK (its C IPC client, built from the
//! crates.io package `aws-greengrass-component-sdk`, used through that package's thin
//! Rust binding `gg_sdk`) as a contender of the side-by-side benchmark. Blocking calls
//! from plain threads; the SDK's own receive thread runs subscription callbacks. Speaks
//! the line protocol of `../../protocol.rs`.

#[path = "../../protocol.rs"]
mod protocol;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gg_sdk::{Sdk, SubscribeToTopicPayload};
use protocol::{say, Command, EVENTS_TIMEOUT};

fn main() {
    let sdk = Sdk::init();
    if let Err(e) = sdk.connect() {
        return say(&format!("error connect: {e}"));
    }
    let payload = protocol::payload();
    say("ready");
    for command in protocol::commands() {
        let answer = match command {
            Command::Rtt { n, topic } => rtt(&sdk, n, &topic, &payload),
            Command::Pipelined {
                threads,
                secs,
                topic,
            } => pipelined(&sdk, threads, secs, &topic, &payload),
            Command::Events {
                publishers,
                total,
                topic,
            } => events(&sdk, publishers, total, &topic, &payload),
        };
        match answer {
            Ok(line) => say(&line),
            Err(e) => say(&format!("error {e}")),
        }
    }
}

fn rtt(sdk: &Sdk, n: usize, topic: &str, payload: &[u8]) -> Result<String, String> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        sdk.publish_to_topic_binary(topic, payload)
            .map_err(|e| e.to_string())?;
        if i >= n / 10 {
            lat.push(t.elapsed().as_nanos() as u64);
        }
    }
    Ok(protocol::rtt_line(lat))
}

fn pipelined(
    sdk: &Sdk,
    threads: usize,
    secs: f64,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let ops = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut ops = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        sdk.publish_to_topic_binary(topic, payload)
                            .map_err(|e| e.to_string())?;
                        ops += 1;
                    }
                    Ok::<u64, String>(ops)
                })
            })
            .collect();
        thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let mut ops = 0;
        for h in handles {
            ops += h.join().map_err(|_| "a publisher panicked".to_string())??;
        }
        Ok::<u64, String>(ops)
    })?;
    Ok(format!(
        "pipelined {ops} {:.6}",
        start.elapsed().as_secs_f64()
    ))
}

fn events(
    sdk: &Sdk,
    publishers: usize,
    total: usize,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let per = total / publishers;
    let total = (per * publishers) as u64;
    let seen = AtomicU64::new(0);
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let on_event = |_topic: &str, message: SubscribeToTopicPayload| {
        std::hint::black_box(&message);
        if seen.fetch_add(1, Ordering::Relaxed) + 1 == total {
            let _ = done_tx.try_send(Instant::now());
        }
    };
    let subscription = sdk
        .subscribe_to_topic(topic, &on_event)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    thread::scope(|s| {
        let handles: Vec<_> = (0..publishers)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..per {
                        sdk.publish_to_topic_binary(topic, payload)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "a publisher panicked".to_string())??;
        }
        Ok::<(), String>(())
    })?;
    let end = done_rx
        .recv_timeout(EVENTS_TIMEOUT)
        .unwrap_or_else(|_| Instant::now());
    drop(subscription);
    Ok(format!(
        "events {} {:.6} 0",
        seen.load(Ordering::Relaxed),
        (end - start).as_secs_f64()
    ))
}
