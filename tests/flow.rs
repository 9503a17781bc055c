//! Flow control: a slow or blocked handler never delays replies to other calls or the
//! events of other subscriptions.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, unbounded};
use ggipc::emulator::Emulator;
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_blocked_handler_delays_neither_calls_nor_other_subscriptions() {
    let emu = Emulator::start().unwrap();
    let client = emu.client_builder().handler_threads(2).connect().unwrap();
    let (gate_tx, gate_rx) = bounded::<()>(0);
    let (entered_tx, entered_rx) = unbounded();
    let _blocked = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("slow"),
            move |_e: SubscriptionResponseMessage| {
                let _ = entered_tx.send(());
                // Blocks until the test ends (or the sender is dropped).
                let _ = gate_rx.recv_timeout(Duration::from_secs(30));
            },
        )
        .unwrap();
    let (fast_tx, fast_rx) = unbounded();
    let _fast = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("fast"),
            move |e: SubscriptionResponseMessage| {
                let _ = fast_tx.send(e.json().cloned());
            },
        )
        .unwrap();
    // Many events for the blocked handler: it takes the first and blocks.
    for i in 0..50 {
        client
            .publish_to_topic(PublishToTopicRequest::json("slow", json!(i)))
            .unwrap();
    }
    expect_within(&entered_rx, BOUND, "the slow handler entered");
    // Calls still complete and the other subscription still gets every event, in order.
    for i in 0..20 {
        returns_within(BOUND, "a call while a handler is blocked", || {
            client.publish_to_topic(PublishToTopicRequest::json("fast", json!(i)))
        })
        .unwrap();
    }
    for i in 0..20 {
        assert_eq!(
            expect_within(&fast_rx, BOUND, "an event of the other subscription"),
            Some(json!(i))
        );
    }
    drop(gate_tx);
}
