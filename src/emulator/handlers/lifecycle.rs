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

use serde_json::Value;

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::resource_not_found;
use crate::emulator::common::errors::service_error;
use crate::emulator::conn::StreamRef;
use crate::emulator::registry::{Body, Stream, Streaming, Unary};
use crate::emulator::state::CallContext;
use crate::emulator::state::LifecycleRequest;
use crate::emulator::stores::lifecycle::Deferral;
use crate::model::{
    DeferComponentUpdate, DeferComponentUpdateRequest, DeferComponentUpdateResponse, IpcError,
    LifecycleState, Operation, PauseComponent, PauseComponentRequest, PauseComponentResponse,
    ResumeComponent, ResumeComponentRequest, ResumeComponentResponse, SubscribeToComponentUpdates,
    SubscribeToComponentUpdatesRequest, SubscribeToComponentUpdatesResponse, UpdateState,
    UpdateStateRequest, UpdateStateResponse,
};

impl Unary for UpdateState {
    fn serve(
        ctx: &CallContext<'_>,
        request: UpdateStateRequest,
    ) -> Result<UpdateStateResponse, IpcError> {
        let state = match request.state.as_str() {
            "RUNNING" => LifecycleState::Running,
            "ERRORED" => LifecycleState::Errored,
            other => {
                return Err(invalid_arguments(&format!(
                    "state must be RUNNING or ERRORED, not {other:?}"
                )))
            }
        };
        let mut components = ctx.state.components.lock();
        let Some(c) = components.get_mut(ctx.component) else {
            return Err(resource_not_found(
                "Component with given name not found",
                "Component",
                ctx.component,
            ));
        };
        c.state = state;
        drop(components);
        Ok(UpdateStateResponse::default())
    }
}

impl Streaming for SubscribeToComponentUpdates {
    fn parse(
        _ctx: &CallContext<'_>,
        _body: &Body<'_>,
    ) -> Result<SubscribeToComponentUpdatesRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(SubscribeToComponentUpdatesRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: SubscribeToComponentUpdatesRequest,
    ) -> Result<Stream<SubscribeToComponentUpdatesResponse>, IpcError> {
        let state = ctx.state.clone();
        let component = ctx.component.to_owned();
        Ok(Stream::new(
            SubscribeToComponentUpdatesResponse::default(),
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
        ))
    }
}

impl Unary for DeferComponentUpdate {
    fn serve(
        ctx: &CallContext<'_>,
        request: DeferComponentUpdateRequest,
    ) -> Result<DeferComponentUpdateResponse, IpcError> {
        // Errors as in LifecycleIPCEventStreamAgent.deferComponentUpdate (aws-greengrass-nucleus):
        // no subscription = InvalidArgumentsError; no update awaiting this component's answer
        // (unknown deployment, timed out, or already answered) = ServiceError.
        let area = &ctx.state.lifecycle;
        if !area.is_subscribed(ctx.component) {
            return Err(invalid_arguments(
                &crate::emulator::common::texts::nucleus_text(
                    "Component is not subscribed to component update events",
                    &format!(
                        "{} has no SubscribeToComponentUpdates stream",
                        ctx.component
                    ),
                ),
            ));
        }
        // Not validated by the nucleus: a negative value is accepted.
        let recheck = request.recheck_after_ms.unwrap_or(0);
        let mut pending = area.pending.lock();
        let Some(slot) = pending
            .get_mut(&request.deployment_id)
            .and_then(|p| p.get_mut(ctx.component))
            .filter(|slot| slot.is_none())
        else {
            return Err(service_error(&format!(
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
        Ok(DeferComponentUpdateResponse::default())
    }
}

/// The target of a PauseComponent or ResumeComponent request, read raw: missing, not a
/// string or empty is `Component name is required.`.
fn raw_target(request: &Value) -> Result<String, IpcError> {
    match request.get("componentName").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => Err(invalid_arguments("Component name is required.")),
    }
}

impl Unary for PauseComponent {
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<PauseComponentRequest, IpcError> {
        let request = body.value();
        raw_target(&request).map(PauseComponentRequest::new)
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: PauseComponentRequest,
    ) -> Result<PauseComponentResponse, IpcError> {
        pause_or_resume(ctx, Self::NAME, request.component_name)?;
        Ok(PauseComponentResponse::default())
    }
}

impl Unary for ResumeComponent {
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<ResumeComponentRequest, IpcError> {
        let request = body.value();
        raw_target(&request).map(ResumeComponentRequest::new)
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: ResumeComponentRequest,
    ) -> Result<ResumeComponentResponse, IpcError> {
        pause_or_resume(ctx, Self::NAME, request.component_name)?;
        Ok(ResumeComponentResponse::default())
    }
}

/// Records a pause or resume of `target` by the caller.
fn pause_or_resume(ctx: &CallContext<'_>, operation: &str, target: String) -> Result<(), IpcError> {
    ctx.state
        .authorize(ctx, operation, std::slice::from_ref(&target))?;
    if !ctx.state.has_component(&target) {
        return Err(resource_not_found(
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
    Ok(())
}
