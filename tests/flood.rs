//! Bounded memory under a flood: 100 000 events of 1 KiB to a handler that is blocked.
//! Its own test binary, since it measures the whole process's resident memory.
//!
//! Bound: the resident set may grow by at most [`RSS_GROWTH_BOUND`] over the flood. The
//! per-subscription queue is bounded at 1024 events / 4 MiB by default; the rest is the
//! decoder's buffers, the emulator and the allocator's slack.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use crossbeam_channel::bounded;
use ggipc::emulator::Emulator;
use ggipc::model::{PublishMessage, PublishToTopicRequest, SubscribeToTopicRequest};
use ggipc::StreamHandler;
use serde_json::json;

const EVENTS: usize = 100_000;
/// Documented in README.md (Reliability).
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Slow {
    gate: crossbeam_channel::Receiver<()>,
    reported: Arc<AtomicU64>,
}
impl StreamHandler<ggipc::model::SubscriptionResponseMessage> for Slow {
    fn on_stream_event(&mut self, _e: ggipc::model::SubscriptionResponseMessage) {
        // Blocked until the flood is over (then fast).
        let _ = self.gate.recv_timeout(Duration::from_secs(60));
    }
    fn on_events_dropped(&mut self, count: u64) {
        self.reported.fetch_add(count, Ordering::Relaxed);
    }
}

#[test]
fn a_flood_to_a_blocked_handler_keeps_memory_bounded_counts_drops_and_stays_responsive() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let reported = Arc::new(AtomicU64::new(0));
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("flood"),
            Slow {
                gate: gate_rx,
                reported: reported.clone(),
            },
        )
        .unwrap();
    // The emulator registers a subscription just after answering it.
    wait_until(Duration::from_secs(5), "subscription registered", || {
        emu.subscription_count() == 1
    });
    let message = PublishMessage::json(json!("x".repeat(1024)));
    // The baseline is taken before any event: the growth includes the full queue.
    let baseline = vm_rss_kib();
    for _ in 0..2000 {
        emu.publish("flooder", "flood", &message);
    }
    let mut peak = baseline;
    let mut responsive = false;
    for i in 0..EVENTS {
        assert_eq!(emu.publish("flooder", "flood", &message), 1);
        if i % 1000 == 0 {
            peak = peak.max(vm_rss_kib());
        }
        if i == EVENTS / 2 {
            // A call completes in the middle of the flood.
            returns_within(Duration::from_secs(5), "a call during the flood", || {
                client.publish_to_topic(PublishToTopicRequest::json("other", json!(1)))
            })
            .unwrap();
            responsive = true;
        }
    }
    peak = peak.max(vm_rss_kib());
    let growth = peak.saturating_sub(baseline);
    println!("VmRSS baseline {baseline} KiB, peak {peak} KiB, growth {growth} KiB");
    assert!(responsive);
    assert!(
        growth < RSS_GROWTH_BOUND_KIB,
        "resident memory grew by {growth} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)"
    );
    // Let the handler go; every event is either delivered or counted as dropped.
    drop(gate_tx);
    let total = (EVENTS + 2000) as u64;
    wait_until(Duration::from_secs(20), "every event accounted for", || {
        let s = sub.stats();
        s.delivered + s.dropped == total
    });
    let stats = sub.stats();
    println!("delivered {}, dropped {}", stats.delivered, stats.dropped);
    assert!(stats.dropped > 0);
    // The handler heard of every drop (reported before the next event it got).
    client
        .publish_to_topic(PublishToTopicRequest::json("flood", json!("last")))
        .unwrap();
    wait_until(
        Duration::from_secs(5),
        "drops reported to the handler",
        || reported.load(Ordering::Relaxed) == stats.dropped,
    );
    assert!(client.is_connected());
}
