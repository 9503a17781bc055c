//! No thread outlives the client. One test in this binary so the thread count is ours.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, Reply};
use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
use ggipc::CallOptions;
use serde_json::json;

#[test]
fn no_client_thread_is_left_after_close_drop_or_connection_loss() {
    let emu = Emulator::start().unwrap();
    assert_eq!(ggipc_threads(), 0);

    // 1. Dropped with an open subscription.
    let client = emu.client_builder().handler_threads(3).connect().unwrap();
    // A thread names itself once it runs, so wait for the names to appear.
    wait_until(
        Duration::from_secs(5),
        "one I/O thread and 3 handler threads",
        || ggipc_threads() == 4,
    );
    let (tx, rx) = unbounded();
    let sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("t"),
            move |e: SubscriptionResponseMessage| {
                tx.send(e).unwrap();
            },
        )
        .unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap();
    expect_within(&rx, Duration::from_secs(5), "event");
    drop(client);
    drop(sub);
    wait_until(Duration::from_secs(5), "threads gone after drop", || {
        ggipc_threads() == 0
    });

    // 2. The server goes away while a call is pending.
    let (arrived_tx, arrived) = unbounded();
    emu.set_reply("GetConfiguration", move |_| {
        let _ = arrived_tx.send(());
        std::thread::sleep(Duration::from_millis(500));
        Reply::Response {
            model_type: "aws.greengrass#GetConfigurationResponse".into(),
            body: json!({}),
        }
    });
    let client = emu.connect().unwrap();
    let caller = {
        let c = client.clone();
        std::thread::spawn(move || {
            c.call_json("GetConfiguration", &json!({}), CallOptions::default())
        })
    };
    expect_within(
        &arrived,
        Duration::from_secs(5),
        "the call reaching the server",
    );
    emu.disconnect_all();
    assert!(caller.join().unwrap().is_err());
    drop(client);
    wait_until(
        Duration::from_secs(5),
        "threads gone after connection loss",
        || ggipc_threads() == 0,
    );

    // 3. Explicit close, then drop.
    let client = emu.connect().unwrap();
    client.close();
    drop(client);
    wait_until(Duration::from_secs(5), "threads gone after close", || {
        ggipc_threads() == 0
    });
}
