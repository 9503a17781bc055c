//! The dispatcher: a request's operation name to what answers it, in order a test's
//! scripted reply, nucleus lite's refusal of an operation it does not serve, the control
//! topic of simulated deployments, then the operation's typed handler (the generated
//! table `handlers/table.rs`, see `registry.rs`).

use serde_json::Value;

use super::common::errors::service_error;
use super::common::facts::facts;
use super::common::flavor::Flavor;
use super::common::scripts::{Reply, ScriptedRequest};
use super::conn::StreamRef;
use super::handlers::deployment;
use super::handlers::table::HANDLERS;
use super::registry::{Body, Outcome, Run};
use super::state::CallContext;

/// Runs the operation (`run`: its handler, from [`lookup`]); `None` = the operation is
/// unknown.
pub(crate) fn handle(
    ctx: &CallContext<'_>,
    operation: &str,
    run: Option<Run>,
    body: &Body<'_>,
) -> Option<Outcome> {
    let state = ctx.state;
    let script = state.scripts.lock().get(operation).cloned();
    if let Some(script) = script {
        if !body.is_json() {
            // Answered as unparsable by the server; the script never sees it.
            return None;
        }
        return Some(scripted(ctx, operation, body.value(), &*script));
    }
    if state.flavor == Flavor::Lite && !facts(operation).is_some_and(|f| f.lite) {
        return Some(Outcome::Error(service_error(&format!(
            "aws.greengrass#{operation} is not supported by Greengrass nucleus lite"
        ))));
    }
    if state.control_topic
        && operation == <crate::model::PublishToTopic as crate::model::Operation>::NAME
    {
        if let Some(outcome) = deployment::control_publish(ctx, &body.value()) {
            return Some(outcome);
        }
    }
    Some(run?(ctx, body))
}

/// The operation called `name` (its short name), if the emulator serves it: its name
/// as a static string (so a call's record copies no text) and its handler.
pub(crate) fn lookup(name: &str) -> Option<(&'static str, Run)> {
    HANDLERS.iter().find(|(n, _)| *n == name).copied()
}

/// The outcome of a scripted reply (see `Emulator::replies().set`).
fn scripted(
    ctx: &CallContext<'_>,
    operation: &str,
    request: Value,
    script: &(dyn Fn(&ScriptedRequest) -> Reply + Send + Sync),
) -> Outcome {
    let request = ScriptedRequest {
        component: ctx.component.to_owned(),
        operation: operation.to_owned(),
        body: request,
    };
    match script(&request) {
        Reply::Response { model_type, body } => Outcome::Response {
            model_type: model_type.into(),
            payload: body.to_string().into_bytes().into(),
        },
        Reply::Error(e) => Outcome::Error(e),
        Reply::Stream { model_type, body } => {
            let state = ctx.state.clone();
            let operation = operation.to_owned();
            Outcome::Subscribe {
                model_type: model_type.into(),
                payload: body.to_string().into_bytes().into(),
                register: Box::new(move |stream: StreamRef| {
                    state
                        .scripted_streams
                        .lock()
                        .push((operation, stream.clone()));
                    let state = state.clone();
                    Box::new(move || {
                        state
                            .scripted_streams
                            .lock()
                            .retain(|(_, s)| !s.same_stream(&stream))
                    })
                }),
                initial: None,
            }
        }
    }
}
