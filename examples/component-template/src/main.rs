//! `com.example.RustComponent`: a template for a Greengrass component written with ggipc.
//! Copy the `examples/component-template/` folder to start a component of your own; its
//! README and the crate README's "Deploying to a device" section walk from `cargo build` to a
//! deployment on a device.
//!
//! What it does, and what its recipe (`recipe.yaml`) must grant for it:
//!
//! | Call | Grant in `accessControl` |
//! |---|---|
//! | `GetConfiguration` of its own `Greeting` | none (a component reads its own configuration) |
//! | `UpdateState` RUNNING | none |
//! | `SubscribeToTopic` `com.example.RustComponent/ping` | `aws.greengrass.ipc.pubsub`, that topic |
//! | `PublishToTopic` `com.example.RustComponent/pong` | `aws.greengrass.ipc.pubsub`, that topic |
//!
//! Once subscribed it publishes `{"started": true, "greeting": …}` on the pong topic, then
//! answers every ping message with `{"pong": <the message>, "greeting": …}`. It exits
//! non-zero on any error (a missing grant shows as `UnauthorizedError`) or when its
//! subscription ends (the nucleus restarted or went away), so that the nucleus restarts it.
//!
//! Against the emulator (the test `tests/component_template.rs` does this with the recipe):
//!
//! ```sh
//! ggipc-emulator --recipe examples/component-template/recipe.yaml > env.sh & . ./env.sh
//! cargo run --example component_template
//! ```

use std::process::ExitCode;

use ggipc::model::{
    GetConfigurationRequest, PublishToTopicRequest, ReportedLifecycleState,
    SubscribeToTopicRequest, SubscriptionResponseMessage, UpdateStateRequest,
};
use ggipc::{Client, Error, StreamControl, StreamHandler};
use serde_json::{json, Value};

const PING_TOPIC: &str = "com.example.RustComponent/ping";
const PONG_TOPIC: &str = "com.example.RustComponent/pong";

/// What the subscription handler tells `main`.
enum Note {
    Ping(Value),
    Ended(String),
}

struct Pings(crossbeam_channel::Sender<Note>);

impl StreamHandler<SubscriptionResponseMessage> for Pings {
    fn on_stream_event(&mut self, event: SubscriptionResponseMessage) {
        let message = match (event.json(), event.binary()) {
            (Some(value), _) => value.clone(),
            (None, Some(bytes)) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            _ => Value::Null,
        };
        let _ = self.0.send(Note::Ping(message));
    }

    fn on_stream_error(&mut self, error: Error) -> StreamControl {
        let _ = self
            .0
            .send(Note::Ended(format!("subscription error: {error}")));
        StreamControl::Close
    }

    fn on_stream_closed(&mut self) {
        let _ = self.0.send(Note::Ended("subscription closed".into()));
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("com.example.RustComponent: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    // Reads AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID, which the nucleus
    // sets for every component it runs.
    let client = Client::connect().map_err(|e| format!("connect: {e}"))?;
    let greeting = greeting(&client)?;
    client
        .update_state(UpdateStateRequest::new(ReportedLifecycleState::Running))
        .map_err(|e| format!("update_state: {e}"))?;

    // The handler runs on ggipc's worker pool; it hands messages to this thread, which
    // answers them (a handler may also call the client itself).
    let (tx, rx) = crossbeam_channel::unbounded();
    let _subscription = client
        .subscribe_to_topic(SubscribeToTopicRequest::new(PING_TOPIC), Pings(tx))
        .map_err(|e| format!("subscribe to {PING_TOPIC}: {e}"))?;
    publish(&client, json!({"started": true, "greeting": greeting}))?;
    eprintln!("running: answering {PING_TOPIC} on {PONG_TOPIC}");

    loop {
        match rx.recv() {
            Ok(Note::Ping(message)) => {
                publish(&client, json!({"pong": message, "greeting": greeting}))?
            }
            Ok(Note::Ended(why)) => return Err(why),
            Err(_) => return Err("subscription handler gone".into()),
        }
    }
}

/// The `Greeting` key of this component's configuration (its recipe's
/// `DefaultConfiguration`, merged with the deployment's configuration update).
fn greeting(client: &Client) -> Result<Value, String> {
    let response = client
        .get_configuration(GetConfigurationRequest::new(vec!["Greeting".to_owned()]))
        .map_err(|e| format!("get_configuration: {e}"))?;
    let value = response.value.unwrap_or(Value::Null);
    // The value comes back as {"Greeting": …} (the nucleus) or bare (some servers).
    Ok(match value {
        Value::Object(mut map) if map.contains_key("Greeting") => {
            map.remove("Greeting").unwrap_or(Value::Null)
        }
        other => other,
    })
}

fn publish(client: &Client, message: Value) -> Result<(), String> {
    client
        .publish_to_topic(PublishToTopicRequest::json(PONG_TOPIC, message))
        .map(|_| ())
        .map_err(|e| format!("publish to {PONG_TOPIC}: {e}"))
}
