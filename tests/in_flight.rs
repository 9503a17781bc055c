//! Calls in flight without a runtime (`Client::start`, `Pending`, `pending::wait_any` /
//! `wait_all`), against the emulator over real Unix sockets.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::*;
use ggipc::emulator::{Emulator, Fault};
use ggipc::model::{
    GetConfiguration, GetConfigurationRequest, GetConfigurationResponse, PublishToTopic,
    PublishToTopicRequest, Timestamp, UpdateConfigurationRequest,
};
use ggipc::{pending, CallOptions, Client, Error, Pending, TimeoutKind};
use serde_json::json;

/// A generous hang bound: none of these waits should come close.
const BOUND: Duration = Duration::from_secs(5);

/// Stores `{"k0": 0, …, "k{n-1}": n-1}` in the component's configuration.
fn store_keys(client: &Client, n: usize) {
    let values: serde_json::Map<String, serde_json::Value> =
        (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
    client
        .update_configuration(UpdateConfigurationRequest::new(
            Timestamp::now(),
            serde_json::Value::Object(values),
        ))
        .unwrap();
}

fn start_get(
    client: &Client,
    key: &str,
    options: CallOptions,
) -> Pending<GetConfigurationResponse> {
    client
        .start::<GetConfiguration>(&GetConfigurationRequest::new([key]), options)
        .unwrap()
}

fn value_of(response: GetConfigurationResponse, key: &str) -> serde_json::Value {
    response.value.unwrap()[key].clone()
}

#[test]
fn pending_is_send() {
    fn send<T: Send>() {}
    send::<Pending<GetConfigurationResponse>>();
}

#[test]
fn a_handle_waited_on_later_gets_its_reply() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    store_keys(&client, 2);
    let first = start_get(&client, "k0", CallOptions::default());
    let second = start_get(&client, "k1", CallOptions::default());
    // Taken in the other order, and from another thread.
    let v1 = returns_within(BOUND, "the second reply", || {
        std::thread::spawn(move || second.wait().unwrap())
            .join()
            .unwrap()
    });
    assert_eq!(value_of(v1, "k1"), json!(1));
    let v0 = returns_within(BOUND, "the first reply", || first.wait().unwrap());
    assert_eq!(value_of(v0, "k0"), json!(0));
    assert_eq!(client.open_streams(), 0);
}

#[test]
fn try_wait_hands_the_handle_back_until_the_reply_is_in() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    store_keys(&client, 1);
    let mut pending = start_get(&client, "k0", CallOptions::default());
    let start = Instant::now();
    let response = loop {
        match pending.try_wait() {
            Ok(result) => break result.unwrap(),
            Err(still) => pending = still,
        }
        assert!(start.elapsed() < BOUND, "no reply within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(value_of(response, "k0"), json!(0));
}

#[test]
fn a_deadline_gives_a_timeout_and_frees_the_slot() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject_for("GetConfiguration", Fault::NoReply);
    // The caller's own, shorter wait.
    let p = start_get(&client, "k", CallOptions::default());
    let err = returns_within(BOUND, "wait_timeout", || {
        p.wait_timeout(Duration::from_millis(50)).unwrap_err()
    });
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Response)),
        "{err:?}"
    );
    // The call's own deadline (CallOptions), waited on long after it was started.
    let p = start_get(
        &client,
        "k",
        CallOptions::timeout(Duration::from_millis(80)),
    );
    std::thread::sleep(Duration::from_millis(120));
    let err = returns_within(BOUND, "wait past the deadline", || p.wait().unwrap_err());
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Response)),
        "{err:?}"
    );
    assert_eq!(client.open_streams(), 0);
    // The connection is unharmed.
    emu.faults().clear();
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap();
    assert!(client.is_connected());
}

#[test]
fn a_dropped_handle_frees_its_slot_and_its_late_reply_is_discarded() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    store_keys(&client, 2);
    // The emulator sits on the next GetConfiguration for 1 s before answering.
    emu.faults().inject_for(
        "GetConfiguration",
        Fault::DelayReply(Duration::from_secs(1)),
    );
    let dropped = start_get(&client, "k0", CallOptions::default());
    assert_eq!(client.open_streams(), 1);
    drop(dropped);
    assert_eq!(client.open_streams(), 0, "dropping frees the slot at once");
    // The emulator holds the request now (it reads nothing more for 1 s).
    wait_until(BOUND, "the delay is applied", || emu.faults().hits() == 1);
    emu.faults().clear();
    // Served after the abandoned call, whose reply arrives first and is discarded.
    let follow_up = start_get(&client, "k1", CallOptions::default());
    let response = returns_within(BOUND, "the follow-up", || follow_up.wait().unwrap());
    assert_eq!(
        value_of(response, "k1"),
        json!(1),
        "the follow-up's own reply"
    );
    assert!(client.is_connected());
    assert_eq!(client.open_streams(), 0);
    let again = client
        .get_configuration(GetConfigurationRequest::new(["k0"]))
        .unwrap();
    assert_eq!(value_of(again, "k0"), json!(0));
}

#[test]
fn one_thread_keeps_64_calls_in_flight_and_each_gets_its_own_reply() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    store_keys(&client, 64);
    returns_within(BOUND, "64 calls in flight, twice over", || {
        for _ in 0..2 {
            let pending: Vec<_> = (0..64)
                .map(|i| start_get(&client, &format!("k{i}"), CallOptions::default()))
                .collect();
            for (i, result) in pending::wait_all(pending).into_iter().enumerate() {
                assert_eq!(value_of(result.unwrap(), &format!("k{i}")), json!(i));
            }
        }
        // A sliding window of 64 over 500 calls, checked in order.
        let mut window = VecDeque::new();
        for i in 0..500usize {
            if window.len() == 64 {
                let (j, p): (usize, Pending<_>) = window.pop_front().unwrap();
                let key = format!("k{}", j % 64);
                assert_eq!(value_of(p.wait().unwrap(), &key), json!(j % 64));
            }
            window.push_back((
                i,
                start_get(&client, &format!("k{}", i % 64), CallOptions::default()),
            ));
        }
        for (j, p) in window {
            let key = format!("k{}", j % 64);
            assert_eq!(value_of(p.wait().unwrap(), &key), json!(j % 64));
        }
    });
    assert_eq!(client.open_streams(), 0);
}

#[test]
fn wait_any_returns_replies_as_they_come_and_leaves_the_rest_in_flight() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    store_keys(&client, 3);
    emu.faults().inject_for("GetConfiguration", Fault::NoReply);
    let mut stuck = vec![start_get(&client, "k0", CallOptions::default())];
    // Nothing comes: `None` at the deadline, the call still in flight.
    let t = Instant::now();
    assert!(pending::wait_any(&mut stuck, Instant::now() + Duration::from_millis(50)).is_none());
    assert!(t.elapsed() < BOUND);
    assert_eq!(stuck.len(), 1);
    assert_eq!(client.open_streams(), 1);
    drop(stuck);
    emu.faults().clear();

    let mut pending: Vec<_> = (0..3)
        .map(|i| start_get(&client, &format!("k{i}"), CallOptions::default()))
        .collect();
    let mut seen = Vec::new();
    returns_within(BOUND, "three replies", || {
        while let Some((_, result)) = pending::wait_any(&mut pending, Instant::now() + BOUND) {
            let value = result.unwrap().value.unwrap();
            seen.push(value.as_object().unwrap().values().next().unwrap().clone());
        }
    });
    seen.sort_by_key(|v| v.as_u64());
    assert_eq!(seen, vec![json!(0), json!(1), json!(2)]);
    assert!(pending.is_empty());
    // An empty set: `None` at once.
    assert!(pending::wait_any(&mut pending, Instant::now() + BOUND).is_none());
}

#[test]
fn wait_any_reports_a_call_whose_own_deadline_passed() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject_for("GetConfiguration", Fault::NoReply);
    let mut pending = vec![start_get(
        &client,
        "k",
        CallOptions::timeout(Duration::from_millis(60)),
    )];
    let (index, result) = returns_within(BOUND, "wait_any", || {
        pending::wait_any(&mut pending, Instant::now() + BOUND).unwrap()
    });
    assert_eq!(index, 0);
    assert!(
        matches!(result, Err(Error::Timeout(TimeoutKind::Response))),
        "{result:?}"
    );
    assert_eq!(client.open_streams(), 0);
}

#[test]
fn losing_the_connection_fails_every_pending_handle_promptly() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::NoReply);
    let pending: Vec<_> = (0..16)
        .map(|i| {
            client
                .start::<PublishToTopic>(
                    &PublishToTopicRequest::json("t", json!(i)),
                    CallOptions::timeout(Duration::from_secs(60)),
                )
                .unwrap()
        })
        .collect();
    assert_eq!(client.open_streams(), 16);
    emu.disconnect_all();
    let results = returns_within(BOUND, "every handle fails", || pending::wait_all(pending));
    assert_eq!(results.len(), 16);
    for r in results {
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    }
    // And a call started after the loss fails at once.
    let err = client
        .start::<PublishToTopic>(
            &PublishToTopicRequest::json("t", json!(0)),
            CallOptions::default(),
        )
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err:?}");
}

#[test]
fn closing_the_client_fails_pending_handles_with_by_user() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    emu.faults().inject(Fault::NoReply);
    let p = client
        .start::<PublishToTopic>(
            &PublishToTopicRequest::json("t", json!(0)),
            CallOptions::default(),
        )
        .unwrap();
    client.close();
    let err = returns_within(BOUND, "the handle fails", || p.wait().unwrap_err());
    assert!(
        matches!(err, Error::Closed(ggipc::CloseReason::ByUser)),
        "{err:?}"
    );
}
