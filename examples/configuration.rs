//! Configuration: read, update, react to updates, validate proposed configurations.
//!
//! Outside Greengrass (no `SVCUID`), it starts the embedded emulator with a recipe whose
//! default configuration is read here, and simulates a deployment to drive validation.
//!
//! Run: `cargo run --example configuration`
mod common;

use std::error::Error;
use std::time::Duration;

use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, RecipeFormat, SimulatedDeployment};
use ggipc::model::{
    ConfigurationUpdateEvents, ConfigurationValidityReport, ConfigurationValidityStatus,
    GetConfigurationRequest, SendConfigurationValidityReportRequest,
    SubscribeToConfigurationUpdateRequest, SubscribeToValidateConfigurationUpdatesRequest,
    Timestamp, UpdateConfigurationRequest, ValidateConfigurationUpdateEvents,
};
use serde_json::json;

const RECIPE: &str = "
ComponentName: com.example.Configuration
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    mqtt:
      port: 1883
      host: localhost
";

fn main() -> Result<(), Box<dyn Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (emulator, client) =
        common::connect(Emulator::builder().recipe_str(RECIPE, RecipeFormat::Yaml))?;
    let wait = Duration::from_secs(10);

    let mqtt = client.get_configuration(GetConfigurationRequest::new(["mqtt"]))?;
    println!("mqtt configuration: {}", mqtt.value.unwrap_or_default());

    let (tx, rx) = unbounded();
    let _updates = client.subscribe_to_configuration_update(
        SubscribeToConfigurationUpdateRequest::new(["mqtt"]),
        move |event: ConfigurationUpdateEvents| {
            let _ = tx.send(event);
        },
    )?;
    client.update_configuration(
        UpdateConfigurationRequest::new(Timestamp::now(), json!({"port": 8883}))
            .with_key_path(["mqtt"]),
    )?;
    println!("merged {{\"port\": 8883}} under mqtt");
    if let Ok(ConfigurationUpdateEvents::ConfigurationUpdateEvent(e)) = rx.recv_timeout(wait) {
        println!("configuration changed at {}", e.key_path.join("/"));
    }

    let (vtx, vrx) = unbounded();
    let _validate = client.subscribe_to_validate_configuration_updates(
        SubscribeToValidateConfigurationUpdatesRequest::new(),
        move |event: ValidateConfigurationUpdateEvents| {
            let _ = vtx.send(event);
        },
    )?;
    let deployment = emulator.as_ref().map(|emulator| {
        emulator.device().simulate_deployment(
            SimulatedDeployment::new()
                .merge_configuration("com.example.Configuration", json!({"mqtt": {"port": 8884}})),
        )
    });
    match vrx.recv_timeout(wait) {
        Ok(ValidateConfigurationUpdateEvents::ValidateConfigurationUpdateEvent(v)) => {
            let port = v
                .configuration
                .as_ref()
                .and_then(|c| c["mqtt"]["port"].as_i64())
                .unwrap_or(0);
            let (status, message) = if (1..=65535).contains(&port) {
                (ConfigurationValidityStatus::Accepted, "port is valid")
            } else {
                (ConfigurationValidityStatus::Rejected, "port out of range")
            };
            println!(
                "deployment {} proposes port {port}: {message}",
                v.deployment_id
            );
            client.send_configuration_validity_report(
                SendConfigurationValidityReportRequest::new(
                    ConfigurationValidityReport::new(status, v.deployment_id.clone())
                        .with_message(message),
                ),
            )?;
        }
        Ok(other) => println!("other event: {other:?}"),
        Err(_) => println!("no configuration to validate arrived"),
    }
    if let Some(deployment) = deployment {
        let done = deployment.wait(wait);
        println!("deployment finished: {:?}", done.map(|d| d.status));
        let port = client.get_configuration(GetConfigurationRequest::new(["mqtt", "port"]))?;
        println!("port is now {}", port.value.unwrap_or_default());
    }
    Ok(())
}
