//! Group `pipelined`: N threads publishing on one shared client against the lean
//! responder, beside N independent raw ping-pong pairs, beside the wake-up floor (N
//! threads handing off to one thread, no socket) and beside the threading floor (N
//! threads on one raw socket with a reader thread, a server that does no work). (8 threads against the emulator
//! process, beside the other clients, are in the side-by-side group.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ggipc::model::PublishToTopic;
use ggipc::{CallOptions, Client};

use crate::servers::{
    handoff_throughput, raw_pairs_throughput, shared_socket_throughput, LeanServer,
};
use crate::support::{
    best_of_interleaved, looping_threads, publish_request, round_trip_frames, Goal, Row, Settings,
    TOPIC,
};

/// `threads` threads publishing in a loop on clones of `client` for `d`: total ops/s.
pub fn client_throughput(client: &Client, threads: usize, topic: &str, d: Duration) -> f64 {
    looping_threads(threads, d, || {
        let (client, request) = (client.clone(), publish_request(topic));
        move || {
            client.publish_to_topic(request.clone()).expect("publish");
            true
        }
    })
}

/// One thread keeping a sliding window of `window` publishes in flight (`Client::start`)
/// for `d`: ops/s.
pub fn in_flight_throughput(
    client: &Client,
    window: usize,
    topic: &str,
    d: Duration,
) -> Result<f64, ggipc::Error> {
    let request = publish_request(topic);
    let mut pending = VecDeque::with_capacity(window);
    let mut done = 0u64;
    let start = Instant::now();
    let end = start + d;
    while Instant::now() < end {
        if pending.len() == window {
            let oldest: ggipc::Pending<_> = pending.pop_front().expect("a full window");
            oldest.wait()?;
            done += 1;
        }
        pending.push_back(client.start::<PublishToTopic>(&request, CallOptions::default())?);
    }
    for result in ggipc::pending::wait_all(pending) {
        result?;
        done += 1;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

pub fn run(s: &Settings, rows: &mut Vec<Row>) {
    let d = s.secs(0.7);
    let (req, resp) = round_trip_frames();
    let lean = LeanServer::start("tput");
    let client = lean.client();
    for threads in [1usize, 4, 8] {
        let mut raw = || raw_pairs_throughput(threads, req.len(), resp.len(), d);
        let mut ours = || client_throughput(&client, threads, TOPIC, d);
        let mut handoff = || handoff_throughput(threads, d);
        let mut shared = || shared_socket_throughput(threads, req.len(), resp.len(), d);
        // With one thread the hand-off hardly sleeps (the server spins on the channel):
        // not a floor, so not measured.
        let best = match threads {
            1 => best_of_interleaved(3, &mut [&mut raw, &mut ours]),
            _ => best_of_interleaved(3, &mut [&mut raw, &mut ours, &mut handoff, &mut shared]),
        };
        let mut row = Row::new(
            format!("pipelined publish, {threads} thread(s), lean responder"),
            best[1],
            "ops/s",
        )
        .baseline(
            best[0],
            format!(
                "{threads} independent raw ping-pong pair(s), {} threads",
                2 * threads
            ),
        );
        if threads == 8 {
            row = row.target("≥ 100k ops/s", Goal::AtLeast(100_000.0));
        }
        if threads > 1 {
            row = row.note(
                "the raw pairs are a reference, not a floor: one socket and two threads per \
                 pair, nothing batched; ggipc's threads share one connection whose reads and \
                 writes batch",
            );
        }
        rows.push(row);
        if threads == 1 {
            continue;
        }
        let floors = [
            (
                best[2],
                format!(
                    "wake-up floor: {threads} thread(s) handing off to one thread \
                     (channel, park/unpark), no socket"
                ),
                "the kernel's cost of blocking calls: each call sleeps and is woken by \
                 another thread; ggipc adds the socket, the server and the frames",
            ),
            (
                best[3],
                format!(
                    "threading floor: {threads} thread(s) on one socket with a reader \
                     thread, raw {}/{} B, server does no work",
                    req.len(),
                    resp.len()
                ),
                "ggipc's threading and nothing else: a caller appends its request, the \
                 one writing writes them all, each parks; one reader thread wakes them; \
                 the server answers each read with one write; no frames, no encoding, no ids",
            ),
        ];
        for (floor, what, note) in floors {
            rows.push(
                Row::new(
                    format!("pipelined publish, {threads} thread(s), lean responder"),
                    best[1],
                    "ops/s",
                )
                .baseline(floor, what)
                .note(note),
            );
        }
    }
    // One thread, calls in flight, beside the same thread calling sequentially.
    let mut sequential = || client_throughput(&client, 1, TOPIC, d);
    let mut window = || in_flight_throughput(&client, 64, TOPIC, d).expect("in flight");
    let best = best_of_interleaved(3, &mut [&mut sequential, &mut window]);
    rows.push(
        Row::new(
            "one thread, 64 calls in flight (`Client::start`), lean responder",
            best[1],
            "ops/s",
        )
        .baseline(best[0], "the same client, one thread, sequential calls")
        .target("≥ 3× sequential", Goal::RatioAtLeast(3.0)),
    );
}
