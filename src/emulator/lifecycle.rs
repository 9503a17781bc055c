//! Component lifecycle: UpdateState, SubscribeToComponentUpdates, DeferComponentUpdate,
//! PauseComponent and ResumeComponent.
//!
//! # Rules
//!
//! From aws-greengrass/aws-greengrass-nucleus at a28341c; `LC` is
//! `src/main/java/com/aws/greengrass/builtin/services/lifecycle/LifecycleIPCEventStreamAgent.java`.
//! `IAE` = InvalidArgumentsError. Tests: `tests/emulator_fidelity.rs` (`lifecycle_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | DeferComponentUpdate from a component with no SubscribeToComponentUpdates stream → IAE `Component is not subscribed to component update events`. | `LC:276-279` |
//! | DeferComponentUpdate for no update awaiting this component's answer (unknown deployment, timed out, already answered) → ServiceError `Time limit to respond to PreComponentUpdateEvent exceeded`. | `LC:284-288` |
//! | `recheckAfterMs` is not validated: a negative value is accepted (and defers nothing). | `LC:275-294` |
//! | PauseComponent/ResumeComponent without `componentName` → IAE `Component name is required.`; authorization; an unknown component → `ResourceNotFoundError` (no message). | `LC:453-471,523-540` |
//!
//! Deliberate differences: pause/resume do not check that the target is a running (or
//! paused) generic component — the emulator runs no processes, so it records the request;
//! the ServiceError and ResourceNotFoundError texts carry ggipc's explanation after the
//! nucleus's words.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use super::server::{Outcome, StreamRef};
use super::{
    invalid_arguments, parse_request, resource_not_found, service_error, CallContext,
    LifecycleRequest, State,
};
use crate::model::{
    ComponentUpdatePolicyEvents, DeferComponentUpdateRequest, DeferComponentUpdateResponse,
    LifecycleState, PauseComponentResponse, ResumeComponentResponse, Shape,
    SubscribeToComponentUpdatesResponse, UpdateStateRequest, UpdateStateResponse,
};

/// One `DeferComponentUpdate` a component sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deferral {
    /// The deferring component.
    pub component: String,
    /// The deployment it answered.
    pub deployment_id: String,
    /// `recheckAfterMs` (0 = go ahead).
    pub recheck_after_ms: i64,
    /// The free-text `message`.
    pub message: Option<String>,
}

/// Update subscribers and the answers awaited from them.
#[derive(Default)]
pub(crate) struct Area {
    subscribers: Mutex<Vec<(String, StreamRef)>>,
    /// deployment id -> component -> recheckAfterMs once answered.
    pending: Mutex<HashMap<String, HashMap<String, Option<i64>>>>,
    answered: Condvar,
    history: Mutex<Vec<Deferral>>,
}

impl Area {
    pub(crate) fn wake_all(&self) {
        self.answered.notify_all();
    }

    pub(crate) fn deferrals(&self) -> Vec<Deferral> {
        self.history.lock().clone()
    }

    fn send_all(&self, event: &Value) -> Vec<String> {
        let targets: Vec<(String, StreamRef)> = self.subscribers.lock().clone();
        let payload = bytes::Bytes::from(event.to_string().into_bytes());
        let mut reached = Vec::new();
        for (component, stream) in targets {
            if stream.send_event(ComponentUpdatePolicyEvents::MODEL_TYPE, payload.clone())
                && !reached.contains(&component)
            {
                reached.push(component);
            }
        }
        reached
    }

    /// Sends a pre-update event to every subscriber; returns the components reached, whose
    /// answers are then awaited with [`Area::await_answers`].
    pub(crate) fn notify_pre_update(
        &self,
        deployment_id: &str,
        is_ggc_restarting: bool,
    ) -> Vec<String> {
        self.pending.lock().insert(
            deployment_id.to_owned(),
            self.subscribers
                .lock()
                .iter()
                .map(|(c, _)| (c.clone(), None))
                .collect(),
        );
        let reached = self.send_all(&json!({"preUpdateEvent": {
            "deploymentId": deployment_id, "isGgcRestarting": is_ggc_restarting }}));
        let mut pending = self.pending.lock();
        if let Some(p) = pending.get_mut(deployment_id) {
            p.retain(|c, _| reached.contains(c));
        }
        reached
    }

    /// Waits until every notified component answered or `timeout` passed; returns the
    /// longest deferral asked for (0 = proceed). Components that do not answer in time
    /// are taken as agreeing, as the nucleus does when its wait times out.
    pub(crate) fn await_answers(
        &self,
        state: &State,
        deployment_id: &str,
        timeout: Duration,
    ) -> i64 {
        let deadline = Instant::now() + timeout;
        let mut pending = self.pending.lock();
        loop {
            let all_answered = pending
                .get(deployment_id)
                .map_or(true, |p| p.values().all(Option::is_some));
            if all_answered
                || state.is_stopping()
                || self.answered.wait_until(&mut pending, deadline).timed_out()
            {
                let answers = pending.remove(deployment_id).unwrap_or_default();
                return answers.values().flatten().copied().max().unwrap_or(0);
            }
        }
    }

    /// Sends the post-update event to every subscriber.
    pub(crate) fn notify_post_update(&self, deployment_id: &str) {
        self.send_all(&json!({"postUpdateEvent": {"deploymentId": deployment_id}}));
    }

    fn is_subscribed(&self, component: &str) -> bool {
        self.subscribers.lock().iter().any(|(c, _)| c == component)
    }
}

pub(crate) fn update_state(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: UpdateStateRequest = match parse_request(request, "UpdateStateRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let state = match request.state.as_str() {
        "RUNNING" => LifecycleState::Running,
        "ERRORED" => LifecycleState::Errored,
        other => {
            return Outcome::Error(invalid_arguments(&format!(
                "state must be RUNNING or ERRORED, not {other:?}"
            )))
        }
    };
    let mut components = ctx.state.components.lock();
    let Some(c) = components.get_mut(ctx.component) else {
        return Outcome::Error(resource_not_found(
            "Component with given name not found",
            "Component",
            ctx.component,
        ));
    };
    c.state = state;
    drop(components);
    Outcome::response(&UpdateStateResponse::default())
}

pub(crate) fn subscribe_to_component_updates(ctx: &CallContext<'_>) -> Outcome {
    let state = ctx.state.clone();
    let component = ctx.component.to_owned();
    Outcome::subscribe(
        &SubscribeToComponentUpdatesResponse::default(),
        move |stream: StreamRef| {
            state
                .lifecycle
                .subscribers
                .lock()
                .push((component, stream.clone()));
            Box::new(move || {
                state
                    .lifecycle
                    .subscribers
                    .lock()
                    .retain(|(_, s)| !s.same_stream(&stream))
            })
        },
    )
}

pub(crate) fn defer_component_update(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: DeferComponentUpdateRequest =
        match parse_request(request, "DeferComponentUpdateRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    // Errors as in LifecycleIPCEventStreamAgent.deferComponentUpdate (aws-greengrass-nucleus):
    // no subscription = InvalidArgumentsError; no update awaiting this component's answer
    // (unknown deployment, timed out, or already answered) = ServiceError.
    let area = &ctx.state.lifecycle;
    if !area.is_subscribed(ctx.component) {
        return Outcome::Error(invalid_arguments(&super::texts::nucleus_text(
            "Component is not subscribed to component update events",
            &format!(
                "{} has no SubscribeToComponentUpdates stream",
                ctx.component
            ),
        )));
    }
    // Not validated by the nucleus: a negative value is accepted.
    let recheck = request.recheck_after_ms.unwrap_or(0);
    let mut pending = area.pending.lock();
    let Some(slot) = pending
        .get_mut(&request.deployment_id)
        .and_then(|p| p.get_mut(ctx.component))
        .filter(|slot| slot.is_none())
    else {
        return Outcome::Error(service_error(&format!(
            "Time limit to respond to PreComponentUpdateEvent exceeded (no update of deployment \
             {:?} awaits an answer from {})",
            request.deployment_id, ctx.component
        )));
    };
    *slot = Some(recheck);
    area.answered.notify_all();
    drop(pending);
    area.history.lock().push(Deferral {
        component: ctx.component.to_owned(),
        deployment_id: request.deployment_id,
        recheck_after_ms: recheck,
        message: request.message,
    });
    Outcome::response(&DeferComponentUpdateResponse::default())
}

pub(crate) fn pause_or_resume(ctx: &CallContext<'_>, operation: &str, request: Value) -> Outcome {
    let target = match request.get("componentName").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => return Outcome::Error(invalid_arguments("Component name is required.")),
    };
    if let Err(e) = ctx
        .state
        .authorize(ctx, operation, std::slice::from_ref(&target))
    {
        return Outcome::Error(e);
    }
    if !ctx.state.has_component(&target) {
        return Outcome::Error(resource_not_found(
            &format!("component {target} not found"),
            "Component",
            &target,
        ));
    }
    ctx.state.lifecycle_requests.lock().push(LifecycleRequest {
        caller: ctx.component.to_owned(),
        operation: operation.to_owned(),
        component: target,
    });
    if operation == "PauseComponent" {
        Outcome::response(&PauseComponentResponse::default())
    } else {
        Outcome::response(&ResumeComponentResponse::default())
    }
}
