//! Component configuration: GetConfiguration, UpdateConfiguration,
//! SubscribeToConfigurationUpdate, SubscribeToValidateConfigurationUpdates and
//! SendConfigurationValidityReport.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Map, Value};

use super::server::{Outcome, StreamRef};
use super::{
    invalid_arguments, json_response, modeled_error, parse_request, resource_not_found,
    CallContext, State,
};
use crate::model::{
    ConfigurationUpdateEvents, ConfigurationValidityReport, GetConfigurationRequest,
    SendConfigurationValidityReportRequest, SendConfigurationValidityReportResponse, Shape,
    SubscribeToConfigurationUpdateRequest, SubscribeToConfigurationUpdateResponse,
    SubscribeToValidateConfigurationUpdatesResponse, UpdateConfigurationRequest,
    UpdateConfigurationResponse, ValidateConfigurationUpdateEvents,
};

struct UpdateSubscriber {
    component: String,
    key_path: Vec<String>,
    stream: StreamRef,
}

/// Subscribers and pending validations.
#[derive(Default)]
pub(crate) struct Area {
    update_subscribers: Mutex<Vec<UpdateSubscriber>>,
    validators: Mutex<Vec<(String, StreamRef)>>,
    /// (deployment id, component) -> report, once received; `None` while awaited.
    reports: Mutex<HashMap<(String, String), Option<ConfigurationValidityReport>>>,
    reported: Condvar,
}

impl Area {
    pub(crate) fn wake_all(&self) {
        self.reported.notify_all();
    }

    /// Sends a validation event to every validator of `component`; returns whether any
    /// stream received it (the report is then awaited with [`Area::await_report`]).
    pub(crate) fn request_validation(
        &self,
        component: &str,
        deployment_id: &str,
        proposed: &Value,
    ) -> bool {
        let targets: Vec<StreamRef> = self
            .validators
            .lock()
            .iter()
            .filter(|(c, _)| c == component)
            .map(|(_, s)| s.clone())
            .collect();
        if targets.is_empty() {
            return false;
        }
        self.reports
            .lock()
            .insert((deployment_id.to_owned(), component.to_owned()), None);
        let event = json!({"validateConfigurationUpdateEvent": {
            "configuration": proposed, "deploymentId": deployment_id }});
        let payload = bytes::Bytes::from(event.to_string().into_bytes());
        let mut sent = false;
        for t in targets {
            sent |= t.send_event(
                ValidateConfigurationUpdateEvents::MODEL_TYPE,
                payload.clone(),
            );
        }
        sent
    }

    /// Waits for the report of `component` on `deployment_id`, up to `timeout`.
    pub(crate) fn await_report(
        &self,
        state: &State,
        component: &str,
        deployment_id: &str,
        timeout: Duration,
    ) -> Option<ConfigurationValidityReport> {
        let key = (deployment_id.to_owned(), component.to_owned());
        let deadline = Instant::now() + timeout;
        let mut reports = self.reports.lock();
        loop {
            if let Some(Some(report)) = reports.get(&key) {
                let report = report.clone();
                reports.remove(&key);
                return Some(report);
            }
            if state.is_stopping() || self.reported.wait_until(&mut reports, deadline).timed_out() {
                reports.remove(&key);
                return None;
            }
        }
    }
}

fn get_path<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = root;
    for key in path {
        node = node.as_object()?.get(key)?;
    }
    Some(node)
}

/// Leaves of `value` placed under `prefix` (an empty object counts as a leaf).
fn leaves(prefix: &[String], value: &Value, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let mut p = prefix.to_vec();
                p.push(k.clone());
                leaves(&p, v, out);
            }
        }
        v => out.push((prefix.to_vec(), v.clone())),
    }
}

/// Sets `value` at `path`, creating maps on the way (replacing non-map nodes). Returns
/// whether anything changed.
fn set_path(root: &mut Value, path: &[String], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        if *root == value {
            return false;
        }
        *root = value;
        return true;
    };
    let mut node = root;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(m) = node else { return false };
        node = m
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(m) = node else { return false };
    // An empty map merged onto an existing map changes nothing.
    if let (Some(Value::Object(_)), Value::Object(new)) = (m.get(last), &value) {
        if new.is_empty() {
            return false;
        }
    }
    if m.get(last) == Some(&value) {
        return false;
    }
    m.insert(last.clone(), value);
    true
}

/// Merges `value` into the configuration of `component` at `key_path` with modification
/// time `millis`, like a deployment or UpdateConfiguration; returns the changed key paths.
/// `check` = reject (FailedUpdateConditionCheck) when a node is newer than `millis`.
pub(crate) fn merge_into(
    state: &State,
    component: &str,
    key_path: &[String],
    value: &Value,
    millis: i64,
    check: bool,
) -> Result<Vec<Vec<String>>, crate::model::IpcError> {
    let mut new_leaves = Vec::new();
    leaves(key_path, value, &mut new_leaves);
    let changed = {
        let mut components = state.components.lock();
        let Some(c) = components.get_mut(component) else {
            return Err(resource_not_found(
                &format!("component {component} not found"),
                "Component",
                component,
            ));
        };
        if check {
            for (path, _) in &new_leaves {
                let newer = c
                    .modified
                    .iter()
                    .any(|(p, t)| *t > millis && (p.starts_with(path) || path.starts_with(p)));
                if newer {
                    return Err(modeled_error(
                        "FailedUpdateConditionCheckError",
                        &format!(
                            "the value at {} was modified after the request's timestamp",
                            path.join(".")
                        ),
                    ));
                }
            }
        }
        let mut changed = Vec::new();
        for (path, v) in new_leaves {
            if set_path(&mut c.config, &path, v) {
                c.modified.insert(path.clone(), millis);
                changed.push(path);
            }
        }
        if key_path.first().is_some_and(|k| k == "accessControl")
            || (key_path.is_empty() && value.get("accessControl").is_some())
        {
            // Runtime policy changes, parsed leniently like the nucleus.
            let access = c
                .config
                .get("accessControl")
                .cloned()
                .unwrap_or(Value::Null);
            match super::auth::Policies::parse(&access, "accessControl", false) {
                Ok((p, problems)) => {
                    for pr in problems {
                        log::warn!("{component}: {}: {}", pr.path, pr.problem);
                    }
                    if !c.policies.is_permissive() {
                        c.policies = p;
                    }
                }
                Err(pr) => log::warn!("{component}: {}: {}", pr.path, pr.problem),
            }
        }
        changed
    };
    notify(state, component, &changed);
    Ok(changed)
}

fn notify(state: &State, component: &str, changed: &[Vec<String>]) {
    if changed.is_empty() {
        return;
    }
    let targets: Vec<(Vec<String>, StreamRef)> = state
        .configuration
        .update_subscribers
        .lock()
        .iter()
        .filter(|s| s.component == component)
        .map(|s| (s.key_path.clone(), s.stream.clone()))
        .collect();
    for (sub_path, stream) in targets {
        for path in changed {
            if path.starts_with(&sub_path) || sub_path.starts_with(path) {
                let event = json!({"configurationUpdateEvent": {
                    "componentName": component, "keyPath": path }});
                stream.send_event(
                    ConfigurationUpdateEvents::MODEL_TYPE,
                    event.to_string().into_bytes().into(),
                );
            }
        }
    }
}

pub(crate) fn get_configuration(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: GetConfigurationRequest = match parse_request(request, "GetConfigurationRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let name = request
        .component_name
        .clone()
        .unwrap_or_else(|| ctx.component.to_owned());
    let components = ctx.state.components.lock();
    let Some(c) = components.get(&name).filter(|c| !c.removed) else {
        return Outcome::Error(resource_not_found(
            &format!("component {name} not found"),
            "Component",
            &name,
        ));
    };
    let Some(node) = get_path(&c.config, &request.key_path) else {
        return Outcome::Error(resource_not_found(
            &format!(
                "key {} not found in the configuration of {name}",
                request.key_path.join(".")
            ),
            "Configuration",
            &request.key_path.join("."),
        ));
    };
    let value = match (node, request.key_path.last()) {
        (Value::Object(_), _) | (_, None) => node.clone(),
        (leaf, Some(key)) => json!({ key: leaf }),
    };
    json_response(
        crate::model::GetConfigurationResponse::MODEL_TYPE,
        &json!({"componentName": name, "value": value}),
    )
}

pub(crate) fn update_configuration(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: UpdateConfigurationRequest =
        match parse_request(request, "UpdateConfigurationRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    let key_path = request.key_path.unwrap_or_default();
    let touches_acl = key_path.first().is_some_and(|k| k == "accessControl")
        || (key_path.is_empty()
            && request
                .value_to_merge
                .as_object()
                .is_some_and(|m| m.contains_key("accessControl")));
    if touches_acl {
        return Outcome::Error(invalid_arguments(
            "accessControl cannot be changed with UpdateConfiguration",
        ));
    }
    if key_path.is_empty() && !request.value_to_merge.is_object() {
        return Outcome::Error(invalid_arguments(
            "valueToMerge must be an object when keyPath is empty",
        ));
    }
    match merge_into(
        ctx.state,
        ctx.component,
        &key_path,
        &request.value_to_merge,
        request.timestamp.as_millis(),
        true,
    ) {
        Ok(_) => Outcome::response(&UpdateConfigurationResponse::default()),
        Err(e) => Outcome::Error(e),
    }
}

pub(crate) fn subscribe_to_configuration_update(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: SubscribeToConfigurationUpdateRequest =
        match parse_request(request, "SubscribeToConfigurationUpdateRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    let name = request
        .component_name
        .clone()
        .unwrap_or_else(|| ctx.component.to_owned());
    {
        let components = ctx.state.components.lock();
        let Some(c) = components.get(&name).filter(|c| !c.removed) else {
            return Outcome::Error(resource_not_found(
                &format!("component {name} not found"),
                "Component",
                &name,
            ));
        };
        if get_path(&c.config, &request.key_path).is_none() {
            return Outcome::Error(resource_not_found(
                &format!(
                    "key {} not found in the configuration of {name}",
                    request.key_path.join(".")
                ),
                "Configuration",
                &request.key_path.join("."),
            ));
        }
    }
    let state = ctx.state.clone();
    let key_path = request.key_path;
    Outcome::subscribe(
        &SubscribeToConfigurationUpdateResponse::default(),
        move |stream: StreamRef| {
            state
                .configuration
                .update_subscribers
                .lock()
                .push(UpdateSubscriber {
                    component: name,
                    key_path,
                    stream: stream.clone(),
                });
            Box::new(move || {
                state
                    .configuration
                    .update_subscribers
                    .lock()
                    .retain(|s| !s.stream.same_stream(&stream))
            })
        },
    )
}

pub(crate) fn subscribe_to_validate_configuration_updates(ctx: &CallContext<'_>) -> Outcome {
    let state = ctx.state.clone();
    let component = ctx.component.to_owned();
    Outcome::subscribe(
        &SubscribeToValidateConfigurationUpdatesResponse::default(),
        move |stream: StreamRef| {
            state
                .configuration
                .validators
                .lock()
                .push((component, stream.clone()));
            Box::new(move || {
                state
                    .configuration
                    .validators
                    .lock()
                    .retain(|(_, s)| !s.same_stream(&stream))
            })
        },
    )
}

pub(crate) fn send_configuration_validity_report(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: SendConfigurationValidityReportRequest =
        match parse_request(request, "SendConfigurationValidityReportRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    let report = request.configuration_validity_report;
    let key = (report.deployment_id.clone(), ctx.component.to_owned());
    let area = &ctx.state.configuration;
    let mut reports = area.reports.lock();
    match reports.get_mut(&key) {
        Some(slot @ None) => {
            *slot = Some(report);
            area.reported.notify_all();
            drop(reports);
            Outcome::response(&SendConfigurationValidityReportResponse::default())
        }
        _ => Outcome::Error(invalid_arguments(&format!(
            "no configuration validation is pending for deployment {:?}: the request timed out or was never made",
            key.0
        ))),
    }
}
