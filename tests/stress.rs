//! Bounded stress: 8 threads making calls while 4 subscriptions stream events and other
//! subscriptions open and close. Every response reaches its caller (checked by content),
//! every event reaches its subscription, in order. Stops by itself after a fixed count.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, Reply};
use ggipc::model::{
    PublishMessage, PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage,
};
use ggipc::CallOptions;
use serde_json::json;

const CALLERS: usize = 8;
const CALLS_PER_CALLER: usize = 1000;
const STREAMS: usize = 4;
const EVENTS_PER_STREAM: usize = 1000;
const CHURN: usize = 200;

#[test]
fn concurrent_calls_events_and_subscription_churn_lose_and_misroute_nothing() {
    let emu = Emulator::start().unwrap();
    // GetConfiguration echoes its key path, so a misrouted answer is visible.
    emu.replies()
        .set("GetConfiguration", |req| Reply::Response {
            model_type: "aws.greengrass#GetConfigurationResponse".into(),
            body: json!({ "componentName": "c", "value": { "echo": req.body["keyPath"].clone() } }),
        });
    let client = emu.client_builder().handler_threads(3).connect().unwrap();

    let (event_tx, event_rx) = unbounded();
    let subs: Vec<_> = (0..STREAMS)
        .map(|s| {
            let tx = event_tx.clone();
            let mut expected = 0u64;
            client
                .subscribe_to_topic(
                    SubscribeToTopicRequest::new(format!("stream/{s}")),
                    move |e: SubscriptionResponseMessage| {
                        let n = e.json().and_then(|v| v.as_u64()).expect("a number");
                        assert_eq!(n, expected, "stream {s}: out of order or lost");
                        expected += 1;
                        let _ = tx.send(s);
                    },
                )
                .unwrap()
        })
        .collect();
    drop(event_tx);
    // The emulator registers a subscription just after answering it.
    wait_until(Duration::from_secs(5), "subscriptions registered", || {
        emu.subscription_count() == STREAMS
    });

    std::thread::scope(|scope| {
        for t in 0..CALLERS {
            let client = client.clone();
            scope.spawn(move || {
                for i in 0..CALLS_PER_CALLER {
                    let key = format!("t{t}-{i}");
                    let v = client
                        .call_json(
                            "GetConfiguration",
                            &json!({ "keyPath": [key] }),
                            CallOptions::timeout(Duration::from_secs(10)),
                        )
                        .unwrap();
                    assert_eq!(v["value"]["echo"], json!([key]), "misrouted response");
                }
            });
        }
        for s in 0..STREAMS {
            let emu = &emu;
            scope.spawn(move || {
                for n in 0..EVENTS_PER_STREAM {
                    assert_eq!(
                        emu.publish("p", &format!("stream/{s}"), &PublishMessage::json(n)),
                        1
                    );
                }
            });
        }
        let client = client.clone();
        scope.spawn(move || {
            for i in 0..CHURN {
                let sub = client
                    .subscribe_to_topic(
                        SubscribeToTopicRequest::new(format!("churn/{i}")),
                        |_e: SubscriptionResponseMessage| {},
                    )
                    .unwrap();
                client
                    .publish_to_topic(PublishToTopicRequest::json(format!("churn/{i}"), i))
                    .unwrap();
                sub.close().unwrap();
            }
        });
    });
    let mut per_stream = [0usize; STREAMS];
    for _ in 0..STREAMS * EVENTS_PER_STREAM {
        per_stream[expect_within(&event_rx, Duration::from_secs(10), "an event")] += 1;
    }
    assert_eq!(per_stream, [EVENTS_PER_STREAM; STREAMS]);
    for sub in &subs {
        assert_eq!(sub.stats().dropped, 0);
        assert_eq!(sub.stats().panicked, 0);
    }
    assert_eq!(client.handler_panics(), 0);
    wait_until(
        Duration::from_secs(5),
        "churned subscriptions released",
        || emu.subscription_count() == STREAMS,
    );
    println!(
        "{} calls, {} events, {} subscribe/close cycles",
        CALLERS * CALLS_PER_CALLER,
        STREAMS * EVENTS_PER_STREAM,
        CHURN
    );
}
