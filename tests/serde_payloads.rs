//! Serde in and out (issue 13 item 5): typed payloads through local pub/sub, IoT Core and
//! the configuration, against the emulator; a payload that is not a `T` is an error.

use std::time::Duration;

use ggipc::emulator::Emulator;
use ggipc::model::{
    GetConfigurationRequest, PublishToIoTCoreRequest, PublishToTopicRequest, Qos, ReceiveMode,
    SubscribeToIoTCoreRequest, SubscribeToTopicRequest, UpdateConfigurationRequest,
};
use ggipc::{Error, StreamItem};
use serde::{Deserialize, Serialize};
use serde_json::json;

const BOUND: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Reading {
    sensor: String,
    celsius: f64,
}

fn reading() -> Reading {
    Reading {
        sensor: "t1".into(),
        celsius: 21.5,
    }
}

#[test]
fn a_typed_value_goes_through_local_pub_sub_and_back() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let sub = client
        .pull(
            SubscribeToTopicRequest::new("sensors/#")
                .with_receive_mode(ReceiveMode::ReceiveAllMessages),
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json_from("sensors/t1", &reading()).unwrap())
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::binary(
            "sensors/t1",
            br#"{"sensor":"t1","celsius":21.5}"#.to_vec(),
        ))
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("sensors/t1", json!({"k": 1})))
        .unwrap();
    for _ in 0..2 {
        let StreamItem::Event(message) = sub.recv_timeout(BOUND).unwrap() else {
            panic!("expected an event")
        };
        assert_eq!(message.topic(), "sensors/t1");
        assert_eq!(message.json_as::<Reading>().unwrap(), reading());
    }
    let StreamItem::Event(other) = sub.recv_timeout(BOUND).unwrap() else {
        panic!("expected an event")
    };
    match other.json_as::<Reading>() {
        Err(Error::Json { shape, message }) => {
            assert!(shape.contains("Reading"), "{shape}");
            assert!(message.contains("sensor"), "{message}");
        }
        result => panic!("{result:?}"),
    }
}

#[test]
fn a_typed_value_goes_to_iot_core_and_a_cloud_message_comes_back_typed() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client
        .publish_to_iot_core(
            PublishToIoTCoreRequest::json_from("dt/t1", Qos::AtLeastOnce, &reading()).unwrap(),
        )
        .unwrap();
    let published = emu.cloud().published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].qos, Qos::AtLeastOnce);
    assert_eq!(
        serde_json::from_slice::<Reading>(&published[0].payload).unwrap(),
        reading()
    );

    let sub = client
        .pull(SubscribeToIoTCoreRequest::new("cmd/#", Qos::AtMostOnce))
        .unwrap();
    emu.cloud()
        .inject_message("cmd/t1", br#"{"sensor":"t1","celsius":21.5}"#.to_vec());
    emu.cloud().inject_message("cmd/t1", b"not json".to_vec());
    let StreamItem::Event(message) = sub.recv_timeout(BOUND).unwrap() else {
        panic!("expected an event")
    };
    assert_eq!(message.topic(), "cmd/t1");
    assert_eq!(message.json_as::<Reading>().unwrap(), reading());
    let StreamItem::Event(garbage) = sub.recv_timeout(BOUND).unwrap() else {
        panic!("expected an event")
    };
    assert!(matches!(
        garbage.json_as::<Reading>(),
        Err(Error::Json { .. })
    ));
}

#[test]
fn a_configuration_value_reads_into_a_type() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client
        .update_configuration(UpdateConfigurationRequest::merge(
            ["probe"],
            serde_json::to_value(reading()).unwrap(),
        ))
        .unwrap();
    let whole = client
        .get_configuration(GetConfigurationRequest::all())
        .unwrap();
    #[derive(Deserialize)]
    struct Config {
        probe: Reading,
    }
    assert_eq!(whole.value_as::<Config>().unwrap().probe, reading());
    let probe = client
        .get_configuration(GetConfigurationRequest::new(["probe"]))
        .unwrap();
    assert_eq!(probe.value_as::<Reading>().unwrap(), reading());
    assert!(matches!(
        probe.value_as::<Vec<u8>>(),
        Err(Error::Json { .. })
    ));
}

#[test]
fn a_value_that_cannot_be_serialized_is_an_error_not_a_panic() {
    // JSON object keys must be strings: a map keyed by a tuple cannot be written.
    let mut map = std::collections::BTreeMap::new();
    map.insert((1, 2), "x");
    assert!(matches!(
        PublishToTopicRequest::json_from("t", &map),
        Err(Error::Json { .. })
    ));
    assert!(matches!(
        PublishToIoTCoreRequest::json_from("t", Qos::AtMostOnce, &map),
        Err(Error::Json { .. })
    ));
}

#[test]
fn a_followed_configuration_arrives_typed_now_and_after_each_change() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    let set = |value: serde_json::Value| {
        client
            .update_configuration(UpdateConfigurationRequest::merge(["probe"], value))
            .unwrap();
    };
    set(serde_json::to_value(reading()).unwrap());
    let (tx, rx) = crossbeam_channel::unbounded();
    let following = client
        .follow_configuration(["probe"], move |r: Reading| tx.send(r.celsius))
        .unwrap();
    // The current value was handed over before follow_configuration returned.
    assert_eq!(rx.try_recv().unwrap(), 21.5);
    set(json!({"celsius": 22.0}));
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), 22.0);
    // A value that is not a `Reading` is reported, not delivered; the follower goes on.
    set(json!({"celsius": "warm"}));
    set(json!({"celsius": 23.5}));
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), 23.5);
    assert!(following.is_open());
    // Dropping the subscription ends the deliveries. (Each update event reads the value
    // again, so a value can arrive twice when changes come close together: what was
    // delivered before the drop is drained first.)
    drop(following);
    std::thread::sleep(Duration::from_millis(100));
    assert!(rx.try_iter().all(|celsius| celsius == 23.5));
    set(json!({"celsius": 30.0}));
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn following_a_configuration_that_is_not_the_type_fails_at_once() {
    let emu = Emulator::start().unwrap();
    let client = emu.connect().unwrap();
    client
        .update_configuration(UpdateConfigurationRequest::merge(
            ["probe"],
            json!({"x": 1}),
        ))
        .unwrap();
    let outcome = client.follow_configuration(["probe"], |_: Reading| ());
    match outcome {
        Err(Error::Json { shape, .. }) => assert!(shape.contains("Reading"), "{shape}"),
        other => panic!("{:?}", other.map(|s| s.is_open())),
    }
}
