//! Shadows: update the desired and reported state of a local shadow, read it back with
//! its delta, list named shadows and delete.
//!
//! Outside Greengrass (no `SVCUID`), it starts the embedded emulator.
//!
//! Run: `cargo run --example shadows [THING_NAME]`
mod common;

use std::error::Error;

use ggipc::emulator::{Emulator, RecipeFormat};
use ggipc::model::{
    DeleteThingShadowRequest, GetThingShadowRequest, ListNamedShadowsForThingRequest,
    UpdateThingShadowRequest,
};
use serde_json::json;

const RECIPE: &str = "
ComponentName: com.example.Shadows
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ShadowManager:
        com.example.Shadows:shadow:1:
          policyDescription: Allows access to the shadows of MyThing.
          operations:
            - '*'
          resources:
            - $aws/things/MyThing/shadow
            - $aws/things/MyThing/shadow/name/*
            - MyThing
";

fn main() -> Result<(), Box<dyn Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let thing = std::env::args().nth(1).unwrap_or_else(|| "MyThing".into());
    let (_emulator, client) =
        common::connect(Emulator::builder().recipe_str(RECIPE, RecipeFormat::Yaml))?;

    let desired = json!({"state": {"desired": {"color": "green", "brightness": 80}}});
    let r = client.update_thing_shadow(UpdateThingShadowRequest::json(thing.clone(), &desired))?;
    println!("desired state set: {}", String::from_utf8_lossy(&r.payload));
    let reported = json!({"state": {"reported": {"color": "green", "brightness": 20}}});
    client.update_thing_shadow(UpdateThingShadowRequest::json(thing.clone(), &reported))?;
    println!("reported state set");

    let shadow = client.get_thing_shadow(GetThingShadowRequest::new(thing.clone()))?;
    let document = shadow.document()?;
    println!(
        "shadow version {}: delta {}",
        document["version"], document["state"]["delta"]
    );

    client.update_thing_shadow(
        UpdateThingShadowRequest::json(
            thing.clone(),
            &json!({"state": {"reported": {"on": true}}}),
        )
        .with_shadow_name("settings"),
    )?;
    let names =
        client.list_named_shadows_for_thing(ListNamedShadowsForThingRequest::new(thing.clone()))?;
    println!("named shadows: {:?}", names.results);

    client.delete_thing_shadow(
        DeleteThingShadowRequest::new(thing.clone()).with_shadow_name("settings"),
    )?;
    println!("deleted the named shadow 'settings'");
    Ok(())
}
