//! A whole Greengrass component: it follows its configuration as a typed struct (printed
//! now and after every change), republishes every message published under `sensors/+` to
//! AWS IoT Core (`dt/<topic>`) and to a local topic (`relayed/<topic>`) from inside the
//! subscription's handler, reads a secret, reports RUNNING, and stops cleanly on SIGTERM
//! (exit 0) or when the nucleus goes away (exit 1). A handler's error goes to stderr (or to
//! the `log` logger, when the component installs one).
//!
//! The same component with the official Python V2 client is `examples/component_v2.py`;
//! the README's "A whole component" section compares their lengths.
//!
//! Against the emulator (from the repository root):
//! `ggipc-emulator --recipe examples/emulator/com.example.Relay.yaml --secrets
//! examples/emulator/secrets.json --env-file /tmp/gg.env`, then
//! `. /tmp/gg.env && cargo run --example component`.

use ggipc::{model::*, Client, Report};

#[derive(serde::Deserialize)]
struct Settings {
    site: String,
}

/// Republishes one message, as it came, to IoT Core and to a local topic.
fn relay(client: &Client, message: SubscriptionResponseMessage) -> ggipc::Result<()> {
    let (topic, payload) = (message.topic().to_owned(), message.payload_bytes());
    let cloud = PublishToIoTCoreRequest::binary(format!("dt/{topic}"), Qos::AtLeastOnce, payload);
    client.publish_to_iot_core(cloud)?;
    let local = format!("relayed/{topic}");
    client.publish_to_topic(PublishToTopicRequest::new(local, message))?;
    Ok(())
}

fn main() -> Result<(), Report> {
    let client = Client::connect()?;
    let show = |settings: Settings| println!("site: {}", settings.site);
    let _settings = client.follow_configuration(["settings"], show)?;
    let c = client.clone();
    let _messages = client.subscribe_to_topic("sensors/+", move |message| relay(&c, message))?;
    let secret = client.get_secret_value("MyGreengrassSecret")?.secret_value;
    println!("secret: {} bytes", secret.as_bytes().len());
    client.update_state(ReportedLifecycleState::Running)?;
    Ok(client.wait_for_shutdown().into_result()?)
}
