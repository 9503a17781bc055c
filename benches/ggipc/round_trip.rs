//! Group `rtt`: sequential `publish_to_topic` round trips against the lean responder,
//! beside a raw ping-pong of the same frame sizes and the same ping-pong with an
//! I/O-thread hop. (Round trips against the emulator process, beside the other clients,
//! are in the side-by-side group.)

use crate::servers::{LeanServer, RawHop, RawPingPong};
use crate::support::{
    interleaved_latencies, percentile, publish_request, round_trip_frames, Goal, Row, Settings,
    TOPIC,
};

pub fn run(s: &Settings, rows: &mut Vec<Row>) {
    let n = s.n(40_000, 2000);
    let (req, resp) = round_trip_frames();
    let mut raw = RawPingPong::new(req.len(), resp.len());
    let lean = LeanServer::start("rtt");
    let client = lean.client();
    let request = publish_request(TOPIC);
    let mut raw_op = || raw.once();
    let mut hop = RawHop::new(req.len(), resp.len());
    let mut hop_op = || hop.once();
    let mut lean_op = || {
        client.publish_to_topic(request.clone()).expect("publish");
    };
    let lat = interleaved_latencies(n, &mut [&mut raw_op, &mut lean_op, &mut hop_op]);
    let (raw50, raw99) = (percentile(&lat[0], 0.5), percentile(&lat[0], 0.99));
    let raw_what = format!("raw ping-pong {}/{} B", req.len(), resp.len());
    let ours = &lat[1];
    rows.push(
        Row::new(
            "round trip p50, lean responder",
            percentile(ours, 0.5),
            "µs",
        )
        .baseline(raw50, raw_what.clone())
        .target("≤ 1.5× raw", Goal::RatioAtMost(1.5)),
    );
    rows.push(
        Row::new(
            "round trip p99, lean responder",
            percentile(ours, 0.99),
            "µs",
        )
        .baseline(raw99, raw_what.clone()),
    );
    rows.push(
        Row::new(
            "raw ping-pong + I/O-thread hop p50 (the reply handed to a sleeping caller)",
            percentile(&lat[2], 0.5),
            "µs",
        )
        .baseline(raw50, raw_what)
        .note("the reply is read by another thread and handed over a channel, whose receiver sleeps after a short spin; a blocked ggipc call gets its reply through a slot, watching it for up to 30 µs (`reply_spin`) before it sleeps, so it can beat this row"),
    );
}
