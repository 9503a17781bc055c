//! Issue 14 item 6: a request over the frame limit fails before anything is sent and says
//! why; `ClientBuilder::nucleus_lite` sets lite's limit; a connection lite closes after a
//! frame it refuses is reported as such.

mod common;

use std::time::Duration;

use common::*;
use ggipc::emulator::{Emulator, Flavor};
use ggipc::model::PublishToTopicRequest;
use ggipc::{CloseReason, Error};

const BOUND: Duration = Duration::from_secs(5);

fn lite() -> Emulator {
    Emulator::builder()
        .socket_path(unique_socket_path("frame-limit"))
        .flavor(Flavor::Lite)
        .start()
        .unwrap()
}

fn publishes(emu: &Emulator) -> usize {
    emu.records()
        .calls()
        .iter()
        .filter(|c| format!("{c:?}").contains("PublishToTopic"))
        .count()
}

#[test]
fn a_request_over_the_limit_fails_before_sending_and_names_payload_frame_and_limit() {
    let emu = Emulator::builder()
        .socket_path(unique_socket_path("frame-limit-nucleus"))
        .start()
        .unwrap();
    let client = emu.client_builder().max_frame_size(4096).connect().unwrap();
    let error = returns_within(BOUND, "the refused call", || {
        client.publish_to_topic(PublishToTopicRequest::binary("t", vec![b'x'; 5000]))
    })
    .unwrap_err();
    let Error::RequestTooLarge {
        payload,
        frame,
        max,
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(max, 4096);
    assert!(payload > 5000, "base64 in JSON: {payload}");
    assert!(frame > payload, "{frame} vs {payload}");
    let text = error.to_string();
    for part in [
        payload.to_string(),
        frame.to_string(),
        "4096".to_owned(),
        "nothing was sent".to_owned(),
    ] {
        assert!(text.contains(&part), "{part:?} missing from {text}");
    }
    assert!(!error.is_retryable());
    // Nothing reached the server and the connection is intact.
    assert_eq!(publishes(&emu), 0);
    assert!(client.is_connected());
    client
        .publish_to_topic(PublishToTopicRequest::binary("t", b"ok".to_vec()))
        .unwrap();
    assert_eq!(publishes(&emu), 1);
}

#[test]
fn nucleus_lite_sets_the_limit_lite_accepts() {
    let emu = lite();
    let client = emu.client_builder().nucleus_lite().connect().unwrap();
    // 7,000 bytes (about 9,400 in base64, about 9,800 as a frame) are accepted.
    client
        .publish_to_topic(PublishToTopicRequest::binary("t", vec![b'x'; 7_000]))
        .unwrap();
    // 12 KB are refused before sending, naming lite's limit.
    let error = client
        .publish_to_topic(PublishToTopicRequest::binary("t", vec![b'x'; 12_000]))
        .unwrap_err();
    assert!(
        matches!(error, Error::RequestTooLarge { max: 10_012, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("10012"), "{error}");
    assert!(client.is_connected());
    assert_eq!(publishes(&emu), 1);
}

#[test]
fn lite_closing_after_a_large_frame_is_reported_with_the_frame_size() {
    let emu = lite();
    // The client does not know the server is lite: its limit is 16 MiB.
    let client = emu.connect().unwrap();
    let error = returns_within(BOUND, "the call lite refuses", || {
        client.publish_to_topic(PublishToTopicRequest::binary("t", vec![b'x'; 12_000]))
    })
    .unwrap_err();
    let Error::FrameRefused { frame, ref reason } = error else {
        panic!("{error:?}")
    };
    assert!(frame > 16_000, "{frame}");
    assert_ne!(*reason, CloseReason::ByUser);
    let text = error.to_string();
    assert!(
        text.contains(&format!("a frame of {frame} bytes")),
        "{text}"
    );
    assert!(
        text.contains("nucleus lite accepts at most about 10,000"),
        "{text}"
    );
    assert!(error.is_connection_lost());
    assert!(!error.is_retryable());
}

#[test]
fn a_small_call_on_a_closed_connection_is_not_blamed_on_its_size() {
    let mut emu = lite();
    let client = emu.connect().unwrap();
    emu.restart(None).unwrap();
    wait_until(BOUND, "the loss noticed", || !client.is_connected());
    let error = client
        .publish_to_topic(PublishToTopicRequest::binary("t", vec![b'x'; 100]))
        .unwrap_err();
    assert!(matches!(error, Error::Closed(_)), "{error:?}");
}
