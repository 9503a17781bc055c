//! IoT Core MQTT: subscribe to a topic filter and publish.
//!
//! Outside Greengrass (no `SVCUID`), it starts the embedded emulator, whose in-process
//! cloud stand-in echoes publishes to matching subscriptions and can inject messages.
//!
//! Run: `cargo run --example iot_core`
mod common;

use std::error::Error;
use std::time::Duration;

use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, RecipeFormat};
use ggipc::model::{IoTCoreMessage, PublishToIoTCoreRequest, Qos, SubscribeToIoTCoreRequest};

const RECIPE: &str = "
ComponentName: com.example.IoTCore
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.mqttproxy:
        com.example.IoTCore:mqttproxy:1:
          policyDescription: Allows access to publish and subscribe under my/
          operations:
            - aws.greengrass#PublishToIoTCore
            - aws.greengrass#SubscribeToIoTCore
          resources:
            - my/#
";

fn main() -> Result<(), Box<dyn Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (emulator, client) =
        common::connect(Emulator::builder().recipe_str(RECIPE, RecipeFormat::Yaml))?;
    let (tx, rx) = unbounded();
    let _sub = client.subscribe_to_iot_core(
        SubscribeToIoTCoreRequest::new("my/+/topic", Qos::AtLeastOnce),
        move |message: IoTCoreMessage| {
            let _ = tx.send((message.topic().to_owned(), message.payload().to_vec()));
        },
    )?;
    println!("subscribed to my/+/topic");

    client.publish_to_iot_core(
        PublishToIoTCoreRequest::new("my/test/topic", Qos::AtLeastOnce)
            .with_payload(b"Hello, World".to_vec()),
    )?;
    println!("published to my/test/topic");
    if let Some(emulator) = &emulator {
        emulator
            .cloud()
            .inject_message("my/cloud/topic", b"from the cloud".to_vec());
        for m in emulator.cloud().published() {
            println!(
                "cloud received on {}: {}",
                m.topic,
                String::from_utf8_lossy(&m.payload)
            );
        }
    }
    while let Ok((topic, payload)) = rx.recv_timeout(Duration::from_secs(3)) {
        println!("received on {topic}: {}", String::from_utf8_lossy(&payload));
    }
    Ok(())
}
