//! Pull subscriptions (`Client::pull`), a subscription's fate (`is_open`, `wait_end`) and
//! the staleness watchdog, against the emulator.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::{bounded, select, unbounded};
use ggipc::emulator::Emulator;
use ggipc::model::{
    PublishToTopicRequest, SubscribeToConfigurationUpdateRequest, SubscribeToTopicRequest,
    SubscriptionResponseMessage, Timestamp, UpdateConfigurationRequest,
};
use ggipc::{CloseReason, Error, ReconnectPolicy, StreamEnd, StreamHandler, StreamItem};
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

fn event_json(item: StreamItem<SubscriptionResponseMessage>) -> serde_json::Value {
    match item {
        StreamItem::Event(m) => m.json().cloned().expect("a JSON message"),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn pulled_events_arrive_in_order_through_recv_timeout_try_recv_and_the_iterator() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("p")).unwrap();
    assert!(matches!(
        sub.try_recv(),
        Err(crossbeam_channel::TryRecvError::Empty)
    ));
    for i in 0..100 {
        client
            .publish_to_topic(PublishToTopicRequest::json("p", json!(i)))
            .unwrap();
    }
    for i in 0..50 {
        assert_eq!(event_json(sub.recv_timeout(BOUND).unwrap()), json!(i));
    }
    wait_until(BOUND, "the rest queued", || sub.receiver().len() == 50);
    for i in 50..60 {
        assert_eq!(event_json(sub.try_recv().unwrap()), json!(i));
    }
    let rest: Vec<_> = sub.iter().take(40).map(event_json).collect();
    assert_eq!(rest, (60..100).map(|i| json!(i)).collect::<Vec<_>>());
    let stats = sub.stats();
    assert_eq!((stats.delivered, stats.dropped), (100, 0));
    assert!(sub.is_open());
    sub.close().unwrap();
    wait_until(BOUND, "the server forgot it", || {
        emu.subscription_count() == 0
    });
}

#[test]
fn a_pull_subscription_works_in_select_beside_another_channel() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("s")).unwrap();
    let (tick_tx, tick) = bounded::<u32>(1);
    tick_tx.send(7).unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("s", json!("hi")))
        .unwrap();
    let (mut got_tick, mut got_event) = (false, false);
    while !(got_tick && got_event) {
        select! {
            recv(sub.receiver()) -> item => {
                assert_eq!(event_json(item.unwrap()), json!("hi"));
                got_event = true;
            }
            recv(tick) -> n => {
                assert_eq!(n.unwrap(), 7);
                got_tick = true;
            }
            default(BOUND) => panic!("nothing within {BOUND:?}"),
        }
    }
}

#[test]
fn the_owning_iterator_ends_after_the_end_item_when_the_client_closes() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("o")).unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("o", json!(1)))
        .unwrap();
    wait_until(BOUND, "the event queued", || sub.receiver().len() == 1);
    client.close();
    let items: Vec<_> = returns_within(BOUND, "the iterator ends", || {
        sub.into_iter().collect::<Vec<_>>()
    });
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(items[0], StreamItem::Event(_)));
    assert!(matches!(
        items[1],
        StreamItem::End(StreamEnd::ClosedByClient)
    ));
}

#[test]
fn a_lost_connection_arrives_as_the_final_item_with_its_cause() {
    let mut emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("l")).unwrap();
    emu.restart(None).unwrap();
    let end = returns_within(BOUND, "the end", || sub.recv());
    match end {
        Some(StreamItem::End(StreamEnd::ConnectionLost(Error::Closed(reason)))) => {
            assert_eq!(reason, CloseReason::PeerClosed)
        }
        other => panic!("{other:?}"),
    }
    assert!(sub.recv().is_none(), "nothing after the end");
    assert!(!sub.is_open());
    assert!(matches!(sub.end(), Some(StreamEnd::ConnectionLost(_))));
}

#[test]
fn a_slow_puller_loses_events_which_are_counted_and_reported_before_the_next_event() {
    let emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .event_queue(4, 1 << 20)
        .connect()
        .unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("d")).unwrap();
    for i in 0..30 {
        client
            .publish_to_topic(PublishToTopicRequest::json("d", json!(i)))
            .unwrap();
    }
    wait_until(BOUND, "every event delivered or dropped", || {
        let s = sub.stats();
        s.delivered + s.dropped == 30
    });
    let stats = sub.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    // The channel holds 4 items (besides the end's slot), drop reports among them.
    assert!((1..=4).contains(&stats.delivered), "{stats:?}");
    // The events come in order, and every loss is reported before the next event handed
    // over (here the last ones are reported only once another event comes).
    let (mut events, mut reported) = (Vec::new(), 0);
    let mut take = |until: &dyn Fn(&[serde_json::Value]) -> bool| {
        while !until(&events) {
            match sub.recv_timeout(BOUND).unwrap() {
                StreamItem::Dropped(n) => reported += n,
                item => events.push(event_json(item)),
            }
        }
    };
    take(&|e| e.len() as u64 == stats.delivered);
    client
        .publish_to_topic(PublishToTopicRequest::json("d", json!("after")))
        .unwrap();
    take(&|e| e.last() == Some(&json!("after")));
    let numbers: Vec<u64> = events[..events.len() - 1]
        .iter()
        .map(|e| e.as_u64().expect("a number"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers.len() as u64, stats.delivered);
    assert_eq!(reported, stats.dropped, "every loss reported, once");
}

#[test]
fn pull_works_for_another_operation_without_annotations() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client
        .pull(SubscribeToConfigurationUpdateRequest::all())
        .unwrap();
    client
        .update_configuration(UpdateConfigurationRequest::new(
            Timestamp::now(),
            json!({"level": 3}),
        ))
        .unwrap();
    match sub.recv_timeout(BOUND).unwrap() {
        StreamItem::Event(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("level"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

/// Subscriptions kept in a struct name no initial response type: `Subscription` has no
/// type parameter and `PullSubscription` is named by the event type the caller handles.
struct Component {
    commands: ggipc::Subscription,
    updates: ggipc::PullSubscription<ggipc::model::ConfigurationUpdateEvents>,
}

#[test]
fn subscriptions_are_stored_without_naming_their_response_type() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let component = Component {
        commands: client
            .subscribe_to_topic(
                SubscribeToTopicRequest::new("cmd"),
                |_: SubscriptionResponseMessage| {},
            )
            .unwrap(),
        updates: client
            .pull(SubscribeToConfigurationUpdateRequest::all())
            .unwrap(),
    };
    // The initial response is still there, as its own type (and only as that type).
    let response = component
        .commands
        .response::<ggipc::model::SubscribeToTopicResponse>();
    assert!(response.is_some());
    assert!(component
        .commands
        .response::<ggipc::model::SubscribeToConfigurationUpdateResponse>()
        .is_none());
    assert!(component
        .updates
        .response::<ggipc::model::SubscribeToConfigurationUpdateResponse>()
        .is_some());
    client
        .update_configuration(UpdateConfigurationRequest::merge(
            ["level"],
            json!({"x": 1}),
        ))
        .unwrap();
    match component.updates.recv_timeout(BOUND).unwrap() {
        StreamItem::Event(ggipc::model::ConfigurationUpdateEvents::ConfigurationUpdateEvent(e)) => {
            assert_eq!(e.key_path.first().map(String::as_str), Some("level"))
        }
        other => panic!("{other:?}"),
    }
    assert!(component.commands.is_open());
}

#[test]
fn a_closure_subscription_reports_its_fate_to_its_handle() {
    let mut emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("f"),
            |_: SubscriptionResponseMessage| {},
        )
        .unwrap();
    assert!(sub.is_open());
    assert!(sub.end().is_none());
    assert!(returns_within(BOUND, "a bounded wait", || sub
        .wait_end(Duration::from_millis(50)))
    .is_none());
    let waiter = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| sub.wait_end(BOUND));
        emu.restart(None).unwrap();
        waiting.join().unwrap()
    });
    assert!(
        matches!(
            waiter,
            Some(StreamEnd::ConnectionLost(Error::Closed(
                CloseReason::PeerClosed
            )))
        ),
        "{waiter:?}"
    );
    assert!(!sub.is_open());
}

#[test]
fn closing_a_subscription_ends_it_as_closed_by_the_client() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let a = client.pull(SubscribeToTopicRequest::new("a")).unwrap();
    let b = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("b"),
            |_: SubscriptionResponseMessage| {},
        )
        .unwrap();
    let (a_end, b_end) = {
        // Observe b's end through a second handle to its fate: close it from a handler-less
        // path and read `end()` before dropping.
        client.close();
        (a.wait_end(BOUND), b.wait_end(BOUND))
    };
    assert!(
        matches!(a_end, Some(StreamEnd::ClosedByClient)),
        "{a_end:?}"
    );
    assert!(
        matches!(b_end, Some(StreamEnd::ClosedByClient)),
        "{b_end:?}"
    );
}

#[test]
fn with_reconnect_a_pull_subscription_sees_interrupted_and_resumed_then_events() {
    let mut emu = Emulator::start().unwrap();
    let client = emu
        .client_builder()
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(100)),
        )
        .connect()
        .unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("r")).unwrap();
    emu.go_down();
    assert!(matches!(
        sub.recv_timeout(BOUND).unwrap(),
        StreamItem::Interrupted(Error::Disconnected(_))
    ));
    assert!(sub.is_open(), "an interrupted subscription is still open");
    emu.come_back(None).unwrap();
    assert!(matches!(
        sub.recv_timeout(BOUND).unwrap(),
        StreamItem::Resumed
    ));
    // Once `Resumed` is seen, calls work without waiting for a reconnect.
    client
        .publish_to_topic(PublishToTopicRequest::json("r", json!(1)))
        .unwrap();
    assert_eq!(event_json(sub.recv_timeout(BOUND).unwrap()), json!(1));
}

struct StaleCounter(crossbeam_channel::Sender<String>);
impl StreamHandler<SubscriptionResponseMessage> for StaleCounter {
    fn on_stream_event(&mut self, _e: SubscriptionResponseMessage) {
        let _ = self.0.send("event".into());
    }
    fn on_stream_stale(&mut self, period: Duration) {
        let _ = self.0.send(format!("stale {}", period.as_millis()));
    }
    fn on_stream_closed(&mut self) {
        let _ = self.0.send("closed".into());
    }
}

#[test]
fn the_staleness_watchdog_notifies_the_handler_and_events_postpone_it() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(SubscribeToTopicRequest::new("w"), StaleCounter(tx))
        .unwrap();
    // Not watched: no notice.
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    sub.watch_staleness(Duration::from_millis(100)).unwrap();
    assert_eq!(expect_within(&rx, BOUND, "a stale notice"), "stale 100");
    assert!(sub.is_open(), "a notice, not an end");
    // Again after a further period without events.
    assert_eq!(expect_within(&rx, BOUND, "a second notice"), "stale 100");
    // Events keep it quiet: publish faster than the period for a while.
    sub.watch_staleness(Duration::from_secs(1)).unwrap();
    // Drain a notice that may have been queued before the new period took effect.
    while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}
    for _ in 0..8 {
        client
            .publish_to_topic(PublishToTopicRequest::json("w", json!(1)))
            .unwrap();
        assert_eq!(expect_within(&rx, BOUND, "the event"), "event");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rx.try_recv().is_err(), "no notice while events flow");
    drop(sub);
    assert_eq!(expect_within(&rx, BOUND, "the end"), "closed");
    assert!(
        rx.recv_timeout(Duration::from_millis(600)).is_err(),
        "no notice after the end"
    );
    assert!(matches!(
        client
            .pull(SubscribeToTopicRequest::new("z"))
            .unwrap()
            .watch_staleness(Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_staleness_watchdog_reaches_the_puller_as_a_notice() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client.pull(SubscribeToTopicRequest::new("h")).unwrap();
    sub.watch_staleness(Duration::from_millis(100)).unwrap();
    assert!(matches!(
        sub.recv_timeout(BOUND).unwrap(),
        StreamItem::Stale(p) if p == Duration::from_millis(100)
    ));
    client
        .publish_to_topic(PublishToTopicRequest::json("h", json!(1)))
        .unwrap();
    // The event (a stale notice may precede it on a slow machine).
    let mut item = sub.recv_timeout(BOUND).unwrap();
    while matches!(item, StreamItem::Stale(_)) {
        item = sub.recv_timeout(BOUND).unwrap();
    }
    assert_eq!(event_json(item), json!(1));
    assert!(sub.is_open());
    let watchers = || {
        thread_names()
            .iter()
            .filter(|n| n.as_str() == "ggipc-watch")
            .count()
    };
    assert!(watchers() >= 1);
    sub.close().unwrap();
    wait_until(BOUND, "the watchdog thread ended", || watchers() == 0);
}
