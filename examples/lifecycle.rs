//! Lifecycle: report RUNNING, subscribe to component updates and defer one.
//!
//! Mirrors the developer guide's "defer component updates" example. Outside Greengrass
//! (no `SVCUID`), it starts the embedded emulator and simulates a deployment itself.
//!
//! Run: `cargo run --example lifecycle`
mod common;

use std::error::Error;
use std::time::Duration;

use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, RecipeFormat, SimulatedDeployment};
use ggipc::model::{
    ComponentUpdatePolicyEvents, DeferComponentUpdateRequest, ReportedLifecycleState,
    SubscribeToComponentUpdatesRequest,
};

const RECIPE: &str = "
ComponentName: com.example.Lifecycle
ComponentVersion: '1.0.0'
";

fn main() -> Result<(), Box<dyn Error>> {
    // ggipc logs through `log`; without a logger its warnings (a stream ended by a lost
    // connection, dropped events, a handler panic) vanish. RUST_LOG=debug shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (emulator, client) =
        common::connect(Emulator::builder().recipe_str(RECIPE, RecipeFormat::Yaml))?;
    client.update_state(ReportedLifecycleState::Running)?;
    println!("reported RUNNING");

    let (tx, rx) = unbounded();
    let _updates = client.subscribe_to_component_updates(
        SubscribeToComponentUpdatesRequest::new(),
        move |event: ComponentUpdatePolicyEvents| {
            let _ = tx.send(event);
        },
    )?;
    println!("subscribed to component updates");

    if let Some(emulator) = &emulator {
        let deployment = emulator
            .device()
            .simulate_deployment(SimulatedDeployment::new());
        println!("emulator: simulating deployment {}", deployment.id());
    }

    let mut deferred = false;
    let wait = if emulator.is_some() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(120)
    };
    loop {
        let Ok(event) = rx.recv_timeout(wait) else {
            println!("no (further) component update arrived; done");
            break;
        };
        match event {
            ComponentUpdatePolicyEvents::PreUpdateEvent(pre) => {
                // Busy the first time: ask the nucleus to check again in 2 seconds.
                let recheck = if deferred { 0 } else { 2_000 };
                deferred = true;
                client.defer_component_update(
                    DeferComponentUpdateRequest::new(pre.deployment_id.clone())
                        .with_message("finishing current work")
                        .with_recheck_after_ms(recheck),
                )?;
                println!("update {}: deferred by {recheck} ms", pre.deployment_id);
            }
            ComponentUpdatePolicyEvents::PostUpdateEvent(post) => {
                println!("update {} applied", post.deployment_id);
                break;
            }
            other => println!("other event: {other:?}"),
        }
    }
    if let Some(emulator) = &emulator {
        println!(
            "emulator: component state is {:?}",
            emulator.device().component_state("com.example.Lifecycle")
        );
    }
    Ok(())
}
