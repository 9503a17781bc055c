//! Local publish/subscribe end to end, and the handler pool's guarantees.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, unbounded};
use ggipc::emulator::Emulator;
use ggipc::model::{
    PublishMessage, PublishToTopicRequest, ReceiveMode, SubscribeToTopicRequest,
    SubscribeToTopicResponse, SubscriptionResponseMessage,
};
use ggipc::{Error, StreamHandler};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);

fn json_of(event: &SubscriptionResponseMessage) -> Option<serde_json::Value> {
    event.json().cloned()
}

#[test]
fn json_message_round_trips_with_its_topic() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("sensors/temp"),
            move |e: SubscriptionResponseMessage| {
                tx.send(e).unwrap();
            },
        )
        .unwrap();
    // Like the nucleus, the emulator leaves the deprecated topicName unset.
    let response = sub.response::<SubscribeToTopicResponse>();
    assert_eq!(response.map(|r| r.topic_name.clone()), Some(None));
    client
        .publish_to_topic(PublishToTopicRequest::json(
            "sensors/temp",
            json!({"c": 21.5, "n": null}),
        ))
        .unwrap();
    let event = expect_within(&rx, WAIT, "json event");
    assert_eq!(json_of(&event), Some(json!({"c": 21.5, "n": null})));
    assert_eq!(event.topic(), "sensors/temp");
}

#[test]
fn binary_message_round_trips_byte_for_byte() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("bin"),
            move |e: SubscriptionResponseMessage| {
                tx.send(e).unwrap();
            },
        )
        .unwrap();
    let payload: Vec<u8> = (0..=255u8).collect();
    client
        .publish_to_topic(PublishToTopicRequest::binary("bin", payload.clone()))
        .unwrap();
    let event = expect_within(&rx, WAIT, "binary event");
    assert_eq!(event.binary(), Some(&payload[..]), "{event:?}");
    assert!(event.json().is_none());
}

#[test]
fn wildcard_filters_and_receive_modes() {
    let emu = Emulator::builder()
        .permissive_component("a", "ta")
        .permissive_component("b", "tb")
        .start()
        .unwrap();
    let a = emu.client_builder().auth_token("ta").connect().unwrap();
    let b = emu.client_builder().auth_token("tb").connect().unwrap();
    let (tx, rx) = unbounded();
    let t1 = tx.clone();
    // A wildcard filter defaults to messages from others only.
    let _wild = a
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("home/+/temp"),
            move |e: SubscriptionResponseMessage| {
                t1.send(("wild", e.topic().to_owned())).unwrap();
            },
        )
        .unwrap();
    let t2 = tx.clone();
    let _all = a
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("home/#")
                .with_receive_mode(ReceiveMode::ReceiveAllMessages),
            move |e: SubscriptionResponseMessage| {
                t2.send(("all", e.topic().to_owned())).unwrap();
            },
        )
        .unwrap();
    a.publish_to_topic(PublishToTopicRequest::json("home/kitchen/temp", json!(1)))
        .unwrap();
    assert_eq!(
        expect_within(&rx, WAIT, "own message on home/#"),
        ("all", "home/kitchen/temp".to_owned())
    );
    b.publish_to_topic(PublishToTopicRequest::json("home/hall/temp", json!(2)))
        .unwrap();
    let mut got = vec![
        expect_within(&rx, WAIT, "b's message"),
        expect_within(&rx, WAIT, "b's message"),
    ];
    got.sort();
    assert_eq!(
        got,
        vec![
            ("all", "home/hall/temp".to_owned()),
            ("wild", "home/hall/temp".to_owned())
        ]
    );
    b.publish_to_topic(PublishToTopicRequest::json("office/temp", json!(3)))
        .unwrap();
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "office/temp matched no filter"
    );
}

#[test]
fn order_is_preserved_per_subscription_under_10k_events() {
    let emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .event_queue(20_000, 64 << 20)
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("seq"),
            move |e: SubscriptionResponseMessage| {
                tx.send(json_of(&e).and_then(|v| v.as_u64()).unwrap())
                    .unwrap();
            },
        )
        .unwrap();
    for i in 0..10_000u64 {
        emu.publish("other", "seq", &PublishMessage::json(json!(i)));
    }
    for expected in 0..10_000u64 {
        assert_eq!(expect_within(&rx, WAIT, "ordered event"), expected);
    }
    assert_eq!(sub.stats().dropped, 0);
}

#[test]
fn a_blocked_handler_does_not_stop_another_subscription() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (release_tx, release_rx) = bounded::<()>(0);
    let (blocked_tx, blocked_rx) = unbounded();
    let _slow = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("slow"),
            move |_e: SubscriptionResponseMessage| {
                blocked_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
            },
        )
        .unwrap();
    let (fast_tx, fast_rx) = unbounded();
    let _fast = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("fast"),
            move |e: SubscriptionResponseMessage| {
                fast_tx.send(e).unwrap();
            },
        )
        .unwrap();
    emu.publish("x", "slow", &PublishMessage::json(json!(0)));
    expect_within(&blocked_rx, WAIT, "slow handler started");
    for i in 0..100 {
        emu.publish("x", "fast", &PublishMessage::json(json!(i)));
    }
    for _ in 0..100 {
        expect_within(&fast_rx, WAIT, "fast events while the slow handler blocks");
    }
    // Calls are answered too while a handler blocks.
    client
        .publish_to_topic(PublishToTopicRequest::json("elsewhere", json!(1)))
        .unwrap();
    release_tx.send(()).unwrap();
}

#[test]
fn handler_can_publish_from_inside_its_callback() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let _echo_out = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("pong"),
            move |e: SubscriptionResponseMessage| {
                tx.send(e).unwrap();
            },
        )
        .unwrap();
    let inner = client.clone();
    let _ping = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("ping"),
            move |e: SubscriptionResponseMessage| {
                let v = json_of(&e).unwrap();
                inner
                    .publish_to_topic(PublishToTopicRequest::json("pong", v))
                    .unwrap();
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("ping", json!("hello")))
        .unwrap();
    assert_eq!(
        json_of(&expect_within(&rx, WAIT, "echo")),
        Some(json!("hello"))
    );
}

#[test]
fn handler_can_subscribe_from_inside_its_callback() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let inner = client.clone();
    let subs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = subs.clone();
    let _outer = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("open"),
            move |_e: SubscriptionResponseMessage| {
                let tx = tx.clone();
                let sub = inner
                    .subscribe_to_topic(
                        SubscribeToTopicRequest::new("nested"),
                        move |e: SubscriptionResponseMessage| {
                            tx.send(e).unwrap();
                        },
                    )
                    .unwrap();
                keep.lock().push(sub);
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("open", json!(1)))
        .unwrap();
    wait_until(WAIT, "nested subscription opened", || {
        subs.lock().len() == 1
    });
    client
        .publish_to_topic(PublishToTopicRequest::json("nested", json!(2)))
        .unwrap();
    assert_eq!(
        json_of(&expect_within(&rx, WAIT, "nested event")),
        Some(json!(2))
    );
}

#[test]
fn a_panicking_handler_keeps_its_subscription_and_the_client() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("p"),
            move |e: SubscriptionResponseMessage| {
                let v = json_of(&e).unwrap();
                if v == json!("boom") {
                    panic!("handler panic on purpose");
                }
                tx.send(v).unwrap();
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("p", json!("boom")))
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("p", json!("after")))
        .unwrap();
    assert_eq!(
        expect_within(&rx, WAIT, "event after the panic"),
        json!("after")
    );
    assert_eq!(sub.stats().panicked, 1);
    assert_eq!(client.handler_panics(), 1);
    assert!(client.is_connected());
}

struct Recorder {
    events: crossbeam_channel::Sender<String>,
}

impl StreamHandler<SubscriptionResponseMessage> for Recorder {
    fn on_stream_event(&mut self, _event: SubscriptionResponseMessage) {
        self.events.send("event".into()).unwrap();
    }
    fn on_stream_error(&mut self, error: Error) -> ggipc::StreamControl {
        self.events.send(format!("error: {error}")).unwrap();
        ggipc::StreamControl::Close
    }
    fn on_stream_closed(&mut self) {
        self.events.send("closed".into()).unwrap();
    }
}

#[test]
fn closing_a_subscription_stops_delivery_and_unsubscribes() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("c"), Recorder { events: tx })
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("c", json!(1)))
        .unwrap();
    assert_eq!(expect_within(&rx, WAIT, "event"), "event");
    assert_eq!(emu.subscription_count(), 1);
    sub.close().unwrap();
    assert_eq!(expect_within(&rx, WAIT, "closed callback"), "closed");
    wait_until(WAIT, "server forgot the subscription", || {
        emu.subscription_count() == 0
    });
    client
        .publish_to_topic(PublishToTopicRequest::json("c", json!(2)))
        .unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn dropping_a_subscription_closes_it() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("d"), Recorder { events: tx })
        .unwrap();
    drop(sub);
    assert_eq!(expect_within(&rx, WAIT, "closed callback"), "closed");
    wait_until(WAIT, "server forgot the subscription", || {
        emu.subscription_count() == 0
    });
}

#[test]
fn handler_closing_its_own_subscription_from_the_callback() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let slot: Arc<parking_lot::Mutex<Option<ggipc::Subscription>>> = Arc::default();
    let inner = slot.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("self"),
            move |_e: SubscriptionResponseMessage| {
                seen.fetch_add(1, Ordering::SeqCst);
                if let Some(sub) = inner.lock().take() {
                    sub.close().unwrap();
                    tx.send(()).unwrap();
                }
            },
        )
        .unwrap();
    *slot.lock() = Some(sub);
    client
        .publish_to_topic(PublishToTopicRequest::json("self", json!(1)))
        .unwrap();
    expect_within(&rx, WAIT, "closed from inside");
    wait_until(WAIT, "server forgot the subscription", || {
        emu.subscription_count() == 0
    });
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn overflow_drops_are_counted_and_reported_to_the_handler() {
    struct Slow {
        gate: crossbeam_channel::Receiver<()>,
        dropped: crossbeam_channel::Sender<u64>,
    }
    impl StreamHandler<SubscriptionResponseMessage> for Slow {
        fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {
            let _ = self.gate.recv_timeout(Duration::from_secs(5));
        }
        fn on_events_dropped(&mut self, count: u64) {
            self.dropped.send(count).unwrap();
        }
    }
    let emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .event_queue(4, 1 << 20)
        .connect()
        .unwrap();
    let (gate_tx, gate) = unbounded();
    let (dropped_tx, dropped_rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("flood"),
            Slow {
                gate,
                dropped: dropped_tx,
            },
        )
        .unwrap();
    for i in 0..50 {
        emu.publish("x", "flood", &PublishMessage::json(json!(i)));
    }
    // At most the running event plus 4 queued ones can be held; the rest are dropped.
    wait_until(WAIT, "drops counted", || sub.stats().dropped >= 45);
    for _ in 0..50 {
        gate_tx.send(()).unwrap();
    }
    wait_until(WAIT, "every event delivered or dropped", || {
        let s = sub.stats();
        s.delivered + s.dropped == 50
    });
    let mut reported = 0;
    while reported < sub.stats().dropped {
        reported += expect_within(&dropped_rx, WAIT, "on_events_dropped");
    }
    assert_eq!(
        reported,
        sub.stats().dropped,
        "every drop is reported to the handler"
    );
    assert!(sub.stats().delivered >= 1);
}

#[test]
fn a_closure_handler_returning_an_error_keeps_its_subscription() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("fallible"),
            move |event: SubscriptionResponseMessage| -> Result<(), Error> {
                let n: i64 = event.json_as()?; // "x" is not a number: an error, logged
                tx.send(n).unwrap();
                Ok(())
            },
        )
        .unwrap();
    for value in [json!("x"), json!(2)] {
        client
            .publish_to_topic(PublishToTopicRequest::json("fallible", value))
            .unwrap();
    }
    assert_eq!(
        expect_within(&rx, Duration::from_secs(5), "the second event"),
        2
    );
    assert!(sub.is_open());
    assert_eq!(sub.stats().panicked, 0);
}

/// With `busy_poll`, a connection's reading thread makes its socket non-blocking while it
/// polls, for its writer thread too: events written while the subscriber keeps that
/// thread polling (it calls in a loop) all arrive, in order, and the connection stays.
#[test]
fn events_written_while_the_subscribers_reading_thread_polls_all_arrive_in_order() {
    const EVENTS: usize = 300;
    let emu = Emulator::builder()
        .busy_poll(Duration::from_millis(1))
        .outbound_queue(EVENTS + 8, 64 * 1024 * 1024)
        .start()
        .unwrap();
    let subscriber = emu
        .client_builder()
        .event_queue(EVENTS + 8, 64 * 1024 * 1024)
        .connect()
        .unwrap();
    let (tx, rx) = unbounded();
    let _sub = subscriber
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("polled"),
            move |e: SubscriptionResponseMessage| {
                let _ = tx.send(e.binary().map(|b| b[..8].to_vec()));
            },
        )
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The subscriber's own calls keep its reading thread serving, then polling.
    let caller = std::thread::spawn({
        let subscriber = subscriber.clone();
        let stop = stop.clone();
        move || {
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                subscriber
                    .publish_to_topic(PublishToTopicRequest::json("elsewhere", json!(1)))
                    .expect("a call while events are written");
                calls += 1;
            }
            calls
        }
    });
    let publisher = emu.connect().unwrap();
    for i in 0..EVENTS as u64 {
        // 32 KiB events fill the socket's buffer, so that writes would block.
        let mut message = vec![0u8; 32 * 1024];
        message[..8].copy_from_slice(&i.to_be_bytes());
        publisher
            .publish_to_topic(PublishToTopicRequest::binary("polled", message))
            .unwrap();
    }
    for i in 0..EVENTS as u64 {
        let got = expect_within(&rx, WAIT, "an event");
        assert_eq!(got, Some(i.to_be_bytes().to_vec()), "event {i}");
    }
    stop.store(true, Ordering::Relaxed);
    let calls = caller.join().expect("the calling thread");
    assert!(calls > 0);
    assert_eq!(emu.dropped_events(), 0);
    subscriber
        .publish_to_topic(PublishToTopicRequest::json("elsewhere", json!(2)))
        .expect("the subscriber's connection is still up");
}
