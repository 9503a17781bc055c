//! Group `events`: event delivery from the lean pusher (pre-encoded event frames, one
//! `write` per event) to counting handlers, beside raw one-way writes of the same frame
//! size. The pusher does not wait for the client, so the client's event queue is raised
//! to hold the whole run (labelled in every row: it is not the default). Publish plus
//! subscribe through the emulator process with the default queue is in the side-by-side
//! group.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::bounded;
use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::Client;
use parking_lot::Mutex;

use crate::servers::{raw_one_way, LeanServer};
use crate::support::{best_of_interleaved, event_frame, Goal, Row, Settings, TOPIC};

struct Delivery {
    rate: f64,
    dropped: u64,
    delivered: u64,
}

/// Subscribes `subs` times, then `push(stream ids)` sends `total` events in all; returns
/// the handler-side rate from the first write to the last handler call (bounded: 120 s).
fn deliver(
    client: &Client,
    subs: usize,
    total: usize,
    push: impl FnOnce(&[i32]) -> Instant,
) -> Delivery {
    let (done, done_rx) = bounded(1);
    let seen = Arc::new(AtomicU64::new(0));
    let subscriptions: Vec<_> = (0..subs)
        .map(|i| {
            let (seen, done) = (seen.clone(), done.clone());
            client
                .subscribe_to_topic(
                    SubscribeToTopicRequest::new(format!("{TOPIC}/{i}")),
                    move |e: SubscriptionResponseMessage| {
                        std::hint::black_box(&e);
                        if seen.fetch_add(1, Ordering::Relaxed) + 1 == total as u64 {
                            let _ = done.try_send(Instant::now());
                        }
                    },
                )
                .expect("subscribe")
        })
        .collect();
    let ids: Vec<i32> = subscriptions.iter().map(|s| s.stream_id()).collect();
    let start = push(&ids);
    let end = done_rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| Instant::now());
    let delivered = seen.load(Ordering::Relaxed);
    let dropped = subscriptions.iter().map(|s| s.stats().dropped).sum();
    Delivery {
        rate: delivered as f64 / (end - start).as_secs_f64(),
        dropped,
        delivered,
    }
}

pub fn run(s: &Settings, rows: &mut Vec<Row>) {
    let total = s.n(400_000, 20_000);
    let frame_len = event_frame(1, &format!("{TOPIC}/0")).len();
    let raw_what = format!("raw one-way {frame_len} B writes");

    for subs in [1usize, 4] {
        let lean = LeanServer::start(&format!("events{subs}"));
        // Raised so that a pusher that never waits loses nothing: not the default.
        let client = lean
            .client_builder()
            .event_queue(total + 1, 1 << 30)
            .connect()
            .expect("connect to the lean server");
        let mut last = None;
        let mut raw = || raw_one_way(frame_len, total);
        let mut ours = || {
            let d = deliver(&client, subs, total, |ids| {
                let conns = lean.streams.lock().clone();
                let frames: Vec<(Arc<Mutex<UnixStream>>, Bytes)> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        let (w, _) = conns.iter().find(|(_, sid)| sid == id).expect("registered");
                        (w.clone(), event_frame(*id, &format!("{TOPIC}/{i}")))
                    })
                    .collect();
                let t = Instant::now();
                let mut w = frames[0].0.lock();
                for k in 0..total {
                    w.write_all(&frames[k % subs].1).expect("push");
                }
                t
            });
            let rate = d.rate;
            last = Some(d);
            rate
        };
        let best = best_of_interleaved(if s.quick { 1 } else { 3 }, &mut [&mut raw, &mut ours]);
        let d = last.expect("ran");
        let mut note = format!("{} of {total} delivered in the last run", d.delivered);
        if d.dropped > 0 {
            note.push_str(&format!(", {} dropped", d.dropped));
        }
        rows.push(
            Row::new(
                format!(
                    "events, {subs} subscription(s), lean pusher, event queue raised to {} \
                     (not the default)",
                    total + 1
                ),
                best[1],
                "events/s",
            )
            .baseline(best[0], raw_what.clone())
            .target("≥ 0.5× raw", Goal::RatioAtLeast(0.5))
            .note(format!("{note}; one write per event, as the baseline")),
        );
        drop(client);
    }
}
