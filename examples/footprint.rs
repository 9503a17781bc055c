//! Measures what a connected client with one subscription adds to a process: resident
//! memory (VmRSS) and threads, read from `/proc/self/status` before connecting and after.
//! Connects from the environment like a component. Used by `cargo bench --bench ggipc`.
//!
//! Prints one line: `rss_before_kib=… rss_after_kib=… threads_before=… threads_after=…`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};

fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), ggipc::Error> {
    let rss_before = status("VmRSS:");
    let threads_before = status("Threads:");
    let client = ggipc::Client::connect()?;
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let subscription = client.subscribe_to_topic(
        SubscribeToTopicRequest::new("bench/footprint"),
        move |_: SubscriptionResponseMessage| {
            counter.fetch_add(1, Ordering::Relaxed);
        },
    )?;
    // Exercise the path once so that lazily allocated buffers are counted.
    for _ in 0..10 {
        client.publish_to_topic(PublishToTopicRequest::binary(
            "bench/footprint",
            vec![7u8; 128],
        ))?;
    }
    let mut waited = 0;
    while seen.load(Ordering::Relaxed) < 10 && waited < 200 {
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    std::thread::sleep(Duration::from_millis(100));
    let rss_after = status("VmRSS:");
    let threads_after = status("Threads:");
    println!(
        "rss_before_kib={rss_before} rss_after_kib={rss_after} threads_before={threads_before} threads_after={threads_after}"
    );
    drop(subscription);
    client.close();
    Ok(())
}
