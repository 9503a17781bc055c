//! Runs anywhere, no device needed: starts the embedded emulator, connects, subscribes,
//! publishes a few messages from another thread, prints what the handler receives.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use ggipc::emulator::Emulator;
use ggipc::model::{
    PublishToTopicRequest, ReceiveMode, SubscribeToTopicRequest, SubscriptionResponseMessage,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // A local nucleus on a fresh socket, with one component allowed to do everything.
    let emulator = Emulator::start()?;
    println!("emulator listening on {}", emulator.socket_path().display());

    // On a device this is `ggipc::Client::connect()?`, reading the Greengrass environment.
    let client = emulator.connect()?;

    // Handlers run on the client's handler pool, never on the I/O thread.
    let (tx, rx) = crossbeam_channel::unbounded();
    // A filter with `+`/`#` defaults to messages from *other* components (as on the
    // nucleus); we publish from this same component, so ask for all messages.
    let _subscription = client.subscribe_to_topic(
        SubscribeToTopicRequest::new("quickstart/#")
            .with_receive_mode(ReceiveMode::ReceiveAllMessages),
        move |event: SubscriptionResponseMessage| {
            let topic = event.topic().to_owned();
            let text = match (event.json(), event.binary()) {
                (Some(value), _) => value.to_string(),
                (None, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            };
            println!("received on {topic}: {text}");
            let _ = tx.send(());
        },
    )?;

    // Publish from another thread: `Client` is a cheap, thread-safe handle.
    let publisher = client.clone();
    let sender = std::thread::spawn(move || -> Result<(), ggipc::Error> {
        for i in 1..=3 {
            publisher.publish_to_topic(PublishToTopicRequest::json(
                "quickstart/json",
                json!({ "count": i }),
            ))?;
        }
        publisher.publish_to_topic(PublishToTopicRequest::binary(
            "quickstart/binary",
            b"hello, binary".to_vec(),
        ))?;
        Ok(())
    });
    sender.join().expect("publisher thread")?;

    for _ in 0..4 {
        rx.recv_timeout(Duration::from_secs(5))?;
    }
    println!("done: 4 messages round-tripped through the emulator");
    Ok(())
}
