//! A whole Greengrass component: it reads its configuration into a typed struct and follows
//! changes to it, republishes every message published under `sensors/+` to AWS IoT Core
//! (`dt/<topic>`) and to a local topic (`relayed/<topic>`) from inside the subscription's
//! handler, reads a secret, reports RUNNING, and stops cleanly on SIGTERM (exit 0) or when
//! the nucleus goes away (exit 1).
//!
//! The same component with the official Python V2 client is `examples/component_v2.py`;
//! the README's "A whole component" section compares their lengths.
//!
//! Against the emulator (from the repository root):
//! `ggipc-emulator --recipe examples/emulator/com.example.Relay.yaml --secrets
//! examples/emulator/secrets.json --env-file /tmp/gg.env`, then
//! `. /tmp/gg.env && cargo run --example component`.

use ggipc::model::*;
use ggipc::{Client, Report, Shutdown};
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    site: String,
}

fn settings(client: &Client) -> ggipc::Result<Settings> {
    let response = client.get_configuration(GetConfigurationRequest::new(["settings"]))?;
    response.value_as()
}

/// Republishes one message, as it came, to IoT Core and to a local topic.
fn relay(client: &Client, message: SubscriptionResponseMessage) -> ggipc::Result<()> {
    let cloud = format!("dt/{}", message.topic());
    let cloud = PublishToIoTCoreRequest::binary(cloud, Qos::AtLeastOnce, message.payload_bytes());
    client.publish_to_iot_core(cloud)?;
    let local = format!("relayed/{}", message.topic());
    client.publish_to_topic(PublishToTopicRequest::new(local, message))?;
    Ok(())
}

fn main() -> Result<(), Report> {
    env_logger::init(); // shows a handler's error (logged at error level)
    let client = Client::connect()?;
    println!("site: {}", settings(&client)?.site);
    let c = client.clone();
    let _updates = client.subscribe_to_configuration_update(
        SubscribeToConfigurationUpdateRequest::new(["settings"]),
        move |_: ConfigurationUpdateEvents| settings(&c).map(|s| println!("now: {}", s.site)),
    )?;
    let c = client.clone();
    let _messages = client.subscribe_to_topic(
        SubscribeToTopicRequest::new("sensors/+"),
        move |message: SubscriptionResponseMessage| relay(&c, message),
    )?;
    let secret = client.get_secret_value(GetSecretValueRequest::new("MyGreengrassSecret"))?;
    println!("secret: {} bytes", secret.secret_value.as_bytes().len());
    client.update_state(UpdateStateRequest::new(ReportedLifecycleState::Running))?;
    match client.wait_for_shutdown() {
        Shutdown::Signal(_) => Ok(()),
        Shutdown::ConnectionLost(e) => Err(e.into()),
    }
}
