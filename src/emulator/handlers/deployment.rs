//! Simulated deployments: the engine behind [`DeviceHandle::simulate_deployment`] and
//! `CreateLocalDeployment`. A deployment asks the affected components to validate their new
//! configuration, notifies every update subscriber before the update and honours its
//! deferrals, merges the configuration, and notifies after the update.
//!
//! Not modelled: artifacts, recipes' dependencies and lifecycle scripts, rollback, and the
//! deployment's own timeouts (validation and update-policy waits are the simulation's
//! settings). The IPC rules of the operations that start and query deployments are in
//! `cli.rs`, of the update notifications in `lifecycle.rs`.
//!
//! [`DeviceHandle::simulate_deployment`]: crate::emulator::DeviceHandle::simulate_deployment

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::registry::Outcome;
use crate::emulator::state::CallContext;
use crate::emulator::state::State;
use crate::emulator::state::DEPLOY_TOPIC;
use crate::emulator::stores::deployment::{is_terminal, new_deployment_id, SimulatedDeployment};
use crate::model::{
    DeploymentStatus, DeploymentStatusDetails, DetailedDeploymentStatus, LifecycleState,
    LocalDeployment, PublishToTopicResponse,
};

/// A deployment started by [`DeviceHandle::simulate_deployment`](crate::emulator::DeviceHandle::simulate_deployment).
#[derive(Clone)]
pub struct DeploymentHandle {
    state: Arc<State>,
    id: String,
}

impl std::fmt::Debug for DeploymentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl DeploymentHandle {
    /// The deployment id (what components see in their update events).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current status.
    pub fn status(&self) -> Option<LocalDeployment> {
        self.state.deployments.get(&self.id)
    }

    /// Waits until the deployment finished (succeeded, failed or was canceled), up to
    /// `timeout`; returns its final record, or `None` if it is still running.
    pub fn wait(&self, timeout: Duration) -> Option<LocalDeployment> {
        let deadline = Instant::now() + timeout;
        let deployments = &self.state.deployments;
        let mut records = deployments.records.lock();
        loop {
            if let Some(r) = records
                .iter()
                .find(|r| r.deployment.deployment_id == self.id)
            {
                if is_terminal(&r.deployment.status) {
                    return Some(r.deployment.clone());
                }
            }
            if deployments
                .changed
                .wait_until(&mut records, deadline)
                .timed_out()
            {
                return None;
            }
        }
    }
}

/// Records the deployment and runs it on a background thread.
pub(crate) fn start(state: &Arc<State>, deployment: SimulatedDeployment) -> DeploymentHandle {
    let id = deployment.id.clone().unwrap_or_else(new_deployment_id);
    state.deployments.insert(&id);
    let run_state = state.clone();
    let run_id = id.clone();
    let spawned = thread::Builder::new()
        .name("ggipc-emu-deploy".into())
        .spawn(move || run(&run_state, &run_id, deployment));
    if let Err(e) = spawned {
        state.deployments.set(
            &id,
            DeploymentStatus::Failed,
            Some(failed(
                DetailedDeploymentStatus::FailedNoStateChange,
                &format!("cannot start: {e}"),
            )),
        );
    }
    DeploymentHandle {
        state: state.clone(),
        id,
    }
}

fn failed(status: DetailedDeploymentStatus, cause: &str) -> DeploymentStatusDetails {
    DeploymentStatusDetails {
        detailed_deployment_status: status,
        deployment_error_stack: None,
        deployment_error_types: None,
        deployment_failure_cause: Some(cause.to_owned()),
    }
}

/// Proposed configuration of `component` after resets and the merge.
fn proposed(state: &State, component: &str, d: &SimulatedDeployment) -> Value {
    let components = state.components.lock();
    let (mut config, defaults) = components
        .get(component)
        .map(|c| (c.config.clone(), c.default_config.clone()))
        .unwrap_or_else(|| {
            (
                Value::Object(Default::default()),
                Value::Object(Default::default()),
            )
        });
    drop(components);
    for pointer in d.reset.get(component).into_iter().flatten() {
        reset_pointer(&mut config, &defaults, pointer);
    }
    if let Some(merge) = d.configuration.get(component) {
        merge_values(&mut config, merge);
    }
    config
}

fn reset_pointer(config: &mut Value, defaults: &Value, pointer: &str) {
    if pointer.is_empty() || pointer == "/" {
        *config = defaults.clone();
        return;
    }
    let default = defaults.pointer(pointer).cloned();
    let (parent, key) = match pointer.rsplit_once('/') {
        Some(p) => p,
        None => return,
    };
    let parent_node = if parent.is_empty() {
        Some(&mut *config)
    } else {
        config.pointer_mut(parent)
    };
    if let Some(Value::Object(m)) = parent_node {
        match default {
            Some(v) => {
                m.insert(key.to_owned(), v);
            }
            None => {
                m.remove(key);
            }
        }
    }
}

fn merge_values(target: &mut Value, merge: &Value) {
    match (target, merge) {
        (Value::Object(t), Value::Object(m)) => {
            for (k, v) in m {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_values(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, m) => *t = m.clone(),
    }
}

fn run(state: &Arc<State>, id: &str, d: SimulatedDeployment) {
    let deployments = &state.deployments;
    deployments.set(id, DeploymentStatus::InProgress, None);
    log::info!("deployment {id} in progress");
    let Some(new_configs) = validate(state, id, &d) else {
        return;
    };
    if !await_deferrals(state, id, &d) {
        return;
    }
    apply(state, id, &d, new_configs);
    // 4. Post-update notifications.
    state.lifecycle.notify_post_update(id);
    deployments.set(
        id,
        DeploymentStatus::Succeeded,
        Some(DeploymentStatusDetails {
            detailed_deployment_status: DetailedDeploymentStatus::Successful,
            deployment_error_stack: None,
            deployment_error_types: None,
            deployment_failure_cause: None,
        }),
    );
    log::info!("deployment {id} succeeded");
}

/// Step 1: the components whose configuration changes validate it; their new
/// configurations, or `None` when one refused (the deployment is then failed).
fn validate(
    state: &Arc<State>,
    id: &str,
    d: &SimulatedDeployment,
) -> Option<BTreeMap<String, Value>> {
    let deployments = &state.deployments;
    let mut targets: Vec<&String> = d.configuration.keys().chain(d.reset.keys()).collect();
    targets.dedup();
    let mut new_configs = BTreeMap::new();
    for component in targets {
        let config = proposed(state, component, d);
        if state
            .configuration
            .request_validation(component, id, &config)
        {
            match state.configuration.await_report(
                &state.stopping,
                component,
                id,
                d.validation_timeout,
            ) {
                Some(report) if report.status.as_str() == "ACCEPTED" => {}
                Some(report) => {
                    let cause = format!(
                        "{component} rejected the configuration: {}",
                        report.message.unwrap_or_default()
                    );
                    log::info!("deployment {id} failed: {cause}");
                    deployments.set(
                        id,
                        DeploymentStatus::Failed,
                        Some(failed(
                            DetailedDeploymentStatus::FailedNoStateChange,
                            &cause,
                        )),
                    );
                    return None;
                }
                None => {
                    let cause =
                        format!("{component} sent no configuration validity report in time");
                    deployments.set(
                        id,
                        DeploymentStatus::Failed,
                        Some(failed(
                            DetailedDeploymentStatus::FailedNoStateChange,
                            &cause,
                        )),
                    );
                    return None;
                }
            }
        }
        new_configs.insert(component.clone(), config);
    }
    Some(new_configs)
}

/// Step 2: pre-update notifications; deferrals postpone the update. False when the
/// deployment was canceled (its status is then set).
fn await_deferrals(state: &Arc<State>, id: &str, d: &SimulatedDeployment) -> bool {
    let deployments = &state.deployments;
    let mut deferrals = 0;
    loop {
        if deployments.is_canceled(id) || state.is_stopping() {
            deployments.set(id, DeploymentStatus::Canceled, None);
            return false;
        }
        let reached = state.lifecycle.notify_pre_update(id, d.is_ggc_restarting);
        if reached.is_empty() {
            break;
        }
        let recheck = state
            .lifecycle
            .await_answers(&state.stopping, id, d.answer_timeout);
        if recheck <= 0 || deferrals >= d.max_deferrals {
            break;
        }
        deferrals += 1;
        log::info!("deployment {id} deferred by {recheck} ms");
        if !deployments.pause(&state.stopping, id, Duration::from_millis(recheck as u64)) {
            deployments.set(id, DeploymentStatus::Canceled, None);
            return false;
        }
    }
    true
}

/// Step 3: the new versions, removals and configurations.
fn apply(
    state: &Arc<State>,
    id: &str,
    d: &SimulatedDeployment,
    new_configs: BTreeMap<String, Value>,
) {
    {
        let mut components = state.components.lock();
        for (name, version) in &d.versions {
            let c = components.entry(name.clone()).or_insert_with(|| {
                let mut c = crate::emulator::stores::components::Component::new(
                    version,
                    Value::Object(Default::default()),
                    Default::default(),
                );
                c.state = LifecycleState::Running;
                c
            });
            c.version = version.clone();
            c.removed = false;
        }
        for name in &d.remove {
            if let Some(c) = components.get_mut(name) {
                c.removed = true;
                c.state = LifecycleState::Finished;
            }
        }
    }
    let now = crate::emulator::common::clock::now_millis();
    for (component, config) in new_configs {
        if let Err(e) =
            super::configuration::merge_into(state, &component, &[], &config, now, false)
        {
            log::warn!("deployment {id}: {component}: {e}");
        }
        // Keys removed by a reset: drop them from the stored configuration too.
        if let Some(c) = state.components.lock().get_mut(&component) {
            let policies_permissive = c.policies.is_permissive();
            c.config = config;
            if !policies_permissive {
                let access = c
                    .config
                    .get("accessControl")
                    .cloned()
                    .unwrap_or(Value::Null);
                if let Ok((p, _)) =
                    crate::emulator::common::auth::Policies::parse(&access, "accessControl", false)
                {
                    c.policies = p;
                }
            }
        }
    }
}

/// A publish to the control topic starts a deployment; `None` = not the control topic.
pub(crate) fn control_publish(ctx: &CallContext<'_>, request: &Value) -> Option<Outcome> {
    if request.get("topic").and_then(Value::as_str) != Some(DEPLOY_TOPIC) {
        return None;
    }
    let message = &request["publishMessage"];
    let description = if let Some(v) = message.get("jsonMessage") {
        v.get("message")
            .cloned()
            .unwrap_or(Value::Object(Default::default()))
    } else if let Some(b) = message
        .get("binaryMessage")
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
    {
        match {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        }
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(v) => v,
            None => {
                return Some(Outcome::Error(invalid_arguments(
                    "the deployment description is not JSON",
                )))
            }
        }
    } else {
        Value::Object(Default::default())
    };
    match SimulatedDeployment::from_json(&description) {
        Ok(d) => {
            let handle = start(ctx.state, d);
            log::info!("{} triggered deployment {}", ctx.component, handle.id());
            Some(Outcome::response(&PublishToTopicResponse::default()))
        }
        Err(e) => Some(Outcome::Error(invalid_arguments(&format!(
            "invalid deployment description: {e}"
        )))),
    }
}
