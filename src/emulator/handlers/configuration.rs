//! Component configuration: GetConfiguration, UpdateConfiguration,
//! SubscribeToConfigurationUpdate, SubscribeToValidateConfigurationUpdates and
//! SendConfigurationValidityReport.
//!
//! # Rules (`nucleus` flavour)
//!
//! From aws-greengrass/aws-greengrass-nucleus at a28341c; `N/` is
//! `src/main/java/com/aws/greengrass/`, `CS` is
//! `N/builtin/services/configstore/ConfigStoreIPCEventStreamAgent.java`. `IAE` =
//! InvalidArgumentsError. Tests: `tests/emulator_fidelity.rs` (`config_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | Keys are case-insensitive: lookup, merge and subscription paths; a merged key keeps the stored spelling. | `N/config/Topics.java:29,91,309-363` (`CaseInsensitiveString` children) |
//! | Reading a container hides keys starting with `_`, at every depth; a `_` key read by its own path is returned. | `N/config/Topics.java:517-522` (`toPOJO`), `CS:203-222` |
//! | A leaf is returned as `{<stored name>: value}`, a container as its map, an empty `keyPath` as the whole configuration. | `CS:204-222` |
//! | Unknown component or key → `ResourceNotFoundError` with the fixed text `Key not found`. | `CS:72,194-212,377-393` |
//! | No `timestamp` → IAE `Timestamp is required`; no `valueToMerge` → IAE `ValueToMerge is required`. | `CS:313-318` |
//! | A `keyPath` starting with `accessControl`, or an empty `keyPath` whose value holds `accessControl` → IAE `Config update is not allowed for following fields [accessControl]`. | `CS:240,323-328` |
//! | Stale timestamp: each leaf older than the request is written; a leaf modified after it is skipped; then, if anything under `keyPath` is newer than the request, `FailedUpdateConditionCheckError` `Proposed timestamp is older than the config's latest modified timestamp` — the rest of the request has been applied. | `N/config/Topic.java:223-262`, `N/config/Topics.java:484-491`, `CS:276-302` |
//! | A `keyPath` that does not exist yet is created with the current time, so the request cannot be stale. | `CS:277-283` |
//! | A leaf written with its current value and a newer timestamp only moves the timestamp (no update event). | `N/config/Topic.java:228-245` |
//! | SendConfigurationValidityReport with no validation pending → IAE `Validation request either timed out or was never made`. | `CS:144-150` |
//!
//! # `lite` flavour
//!
//! Nucleus lite 2.6.0 (aws-greengrass/aws-greengrass-lite tag v2.6.0; checked against a
//! running one with `tests/tools/lite_probe.py`):
//!
//! | Rule | Source |
//! |---|---|
//! | A leaf whose stored timestamp is newer than the request's is left as it is and the request still succeeds. | `modules/ggconfigd/src/db_interface.c:832-842` (ends the transaction with `GG_ERR_OK`) |
//! | Keys are case-sensitive; `_` keys are not hidden. | `modules/ggconfigd/src/sql/create_db.sql:3` (`COLLATE BINARY`) |
//! | Texts: `Key not found.` (GetConfiguration), `Key not found` (SubscribeToConfigurationUpdate), `Config update is not allowed for following field [accessControl]`. | `modules/ggipcd/src/services/config/get_configuration.c:87`, `subscribe_to_configuration_update.c:165`, `update_configuration.c:77,92` |
//!
//! Deliberate differences: values keep their JSON types (the nucleus coerces some through
//! Java types); the `_` rule also hides keys in events' values; the texts after the fixed
//! words are ggipc's.

use serde_json::{json, Map, Value};

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::modeled_error;
use crate::emulator::common::errors::parse_request;
use crate::emulator::common::errors::resource_not_found;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::common::texts::nucleus_text;
use crate::emulator::conn::StreamRef;
use crate::emulator::registry::{Body, Stream, Streaming, Unary};
use crate::emulator::state::CallContext;
use crate::emulator::state::State;
use crate::emulator::stores::configuration::UpdateSubscriber;
use crate::model::{
    ConfigurationUpdateEvents, GetConfiguration, GetConfigurationRequest, GetConfigurationResponse,
    IpcError, SendConfigurationValidityReport, SendConfigurationValidityReportRequest,
    SendConfigurationValidityReportResponse, Shape, SubscribeToConfigurationUpdate,
    SubscribeToConfigurationUpdateRequest, SubscribeToConfigurationUpdateResponse,
    SubscribeToValidateConfigurationUpdates, SubscribeToValidateConfigurationUpdatesRequest,
    SubscribeToValidateConfigurationUpdatesResponse, UpdateConfiguration,
    UpdateConfigurationRequest, UpdateConfigurationResponse,
};

/// The stored spelling of `key` in `m`; `ci` = keys are case-insensitive (the Java
/// nucleus; nucleus lite stores them `COLLATE BINARY`, `modules/ggconfigd/src/sql/create_db.sql:3`).
fn find_key(m: &Map<String, Value>, key: &str, ci: bool) -> Option<String> {
    if m.contains_key(key) {
        return Some(key.to_owned());
    }
    if !ci {
        return None;
    }
    let key = key.to_lowercase();
    m.keys().find(|k| k.to_lowercase() == key).cloned()
}

/// The node at `path` and the path in its stored spelling.
fn get_path<'a>(root: &'a Value, path: &[String], ci: bool) -> Option<(&'a Value, Vec<String>)> {
    let mut node = root;
    let mut stored = Vec::with_capacity(path.len());
    for key in path {
        let m = node.as_object()?;
        let k = find_key(m, key, ci)?;
        node = m.get(&k)?;
        stored.push(k);
    }
    Some((node, stored))
}

/// The key of the modification times: lower-cased when keys are case-insensitive.
fn folded(path: &[String], ci: bool) -> Vec<String> {
    path.iter()
        .map(|k| if ci { k.to_lowercase() } else { k.clone() })
        .collect()
}

/// Whether configuration keys are case-insensitive in this flavour.
fn case_insensitive(state: &State) -> bool {
    state.flavor == Flavor::Nucleus
}

/// The value with every key starting with `_` removed, at every depth (`Topics.toPOJO`).
fn without_hidden(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), without_hidden(v)))
                .collect(),
        ),
        v => v.clone(),
    }
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

/// The path in stored spelling where `path` lands (existing keys matched
/// case-insensitively, new ones as given).
fn resolve(root: &Value, path: &[String], ci: bool) -> Vec<String> {
    let mut node = Some(root);
    path.iter()
        .map(|key| {
            let found = node
                .and_then(Value::as_object)
                .and_then(|m| find_key(m, key, ci));
            node = found
                .as_ref()
                .and_then(|k| node.and_then(|n| n.get(k.as_str())));
            found.unwrap_or_else(|| key.clone())
        })
        .collect()
}

/// Sets `value` at the stored-spelling `path`, creating maps on the way (replacing
/// non-map nodes). Returns whether anything changed.
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
///
/// `check` = an UpdateConfiguration: leaves modified after `millis` are skipped, and (in
/// the `nucleus` flavour) the call then fails with FailedUpdateConditionCheckError when
/// anything under `key_path` is newer than `millis`, after the rest was applied and
/// notified — as the nucleus does.
/// Writes the leaves of `value` under `key_path` whose timestamp is not older than the
/// stored one (with `check`); the paths that changed.
fn set_leaves(
    c: &mut crate::emulator::stores::components::Component,
    key_path: &[String],
    value: &Value,
    millis: i64,
    check: bool,
    ci: bool,
) -> Vec<Vec<String>> {
    let mut new_leaves = Vec::new();
    leaves(key_path, value, &mut new_leaves);
    let mut changed = Vec::new();
    for (path, v) in new_leaves {
        let path = resolve(&c.config, &path, ci);
        let key = folded(&path, ci);
        let current = c.modified.get(&key).copied().unwrap_or(0);
        if check && millis < current {
            continue;
        }
        if set_path(&mut c.config, &path, v) {
            // A subtree replaced by a leaf (or the reverse) loses its times.
            c.modified
                .retain(|p, _| !(p.starts_with(&key) && p.len() > key.len()));
            c.modified.insert(key, millis);
            changed.push(path);
        } else if millis > current {
            c.modified.insert(key, millis);
        }
    }
    changed
}

/// Runtime policy changes, parsed leniently like the nucleus.
fn reload_policies(c: &mut crate::emulator::stores::components::Component, component: &str) {
    let access = c
        .config
        .get("accessControl")
        .cloned()
        .unwrap_or(Value::Null);
    match crate::emulator::common::auth::Policies::parse(&access, "accessControl", false) {
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

pub(crate) fn merge_into(
    state: &State,
    component: &str,
    key_path: &[String],
    value: &Value,
    millis: i64,
    check: bool,
) -> Result<Vec<Vec<String>>, crate::model::IpcError> {
    let mut stale = false;
    let changed = {
        let mut components = state.components.lock();
        let Some(c) = components.get_mut(component) else {
            return Err(resource_not_found(
                &nucleus_text(
                    key_not_found_text(state, false),
                    &format!("component {component} not found"),
                ),
                "Component",
                component,
            ));
        };
        // A key path that does not exist yet is created "now" (CS:277-283).
        let ci = case_insensitive(state);
        let millis = if check && get_path(&c.config, key_path, ci).is_none() {
            crate::emulator::common::clock::now_millis()
        } else {
            millis
        };
        let changed = set_leaves(c, key_path, value, millis, check, ci);
        if check && state.flavor == Flavor::Nucleus {
            let kp = folded(&resolve(&c.config, key_path, ci), ci);
            stale = c
                .modified
                .iter()
                .any(|(p, t)| *t > millis && p.starts_with(&kp));
        }
        if key_path
            .first()
            .is_some_and(|k| k.eq_ignore_ascii_case("accessControl"))
            || (key_path.is_empty() && value.get("accessControl").is_some())
        {
            reload_policies(c, component);
        }
        changed
    };
    notify(state, component, &changed);
    if stale {
        return Err(modeled_error(
            "FailedUpdateConditionCheckError",
            &nucleus_text(
                "Proposed timestamp is older than the config's latest modified timestamp",
                &format!(
                    "a value under {} was modified after the request's timestamp; the other \
                     values of the request were applied",
                    if key_path.is_empty() {
                        "the root".to_owned()
                    } else {
                        key_path.join(".")
                    }
                ),
            ),
        ));
    }
    Ok(changed)
}

fn notify(state: &State, component: &str, changed: &[Vec<String>]) {
    if changed.is_empty() {
        return;
    }
    let ci = case_insensitive(state);
    let targets: Vec<(Vec<String>, StreamRef)> = state
        .configuration
        .update_subscribers
        .lock()
        .iter()
        .filter(|s| s.component == component)
        .map(|s| (folded(&s.key_path, ci), s.stream.clone()))
        .collect();
    for (sub_path, stream) in targets {
        for path in changed {
            let p = folded(path, ci);
            if p.starts_with(&sub_path) || sub_path.starts_with(&p) {
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

/// `Key not found` (Java nucleus, CS:72); nucleus lite says `Key not found.` in
/// GetConfiguration (`modules/ggipcd/src/services/config/get_configuration.c:87`) and `Key
/// not found` in SubscribeToConfigurationUpdate (`subscribe_to_configuration_update.c:165`).
fn key_not_found_text(state: &State, subscribe: bool) -> &'static str {
    if state.flavor == Flavor::Lite && !subscribe {
        "Key not found."
    } else {
        "Key not found"
    }
}

fn key_not_found(
    state: &State,
    subscribe: bool,
    name: &str,
    key_path: &[String],
) -> crate::model::IpcError {
    resource_not_found(
        &nucleus_text(
            key_not_found_text(state, subscribe),
            &format!(
                "key {} not found in the configuration of {name}",
                key_path.join(".")
            ),
        ),
        "Configuration",
        &key_path.join("."),
    )
}

/// The nucleus's answer when the component a configuration call names does not exist
/// (`subscribing`: the text of SubscribeToConfigurationUpdate).
fn component_not_found(state: &State, name: &str, subscribing: bool) -> IpcError {
    resource_not_found(
        &nucleus_text(
            key_not_found_text(state, subscribing),
            &format!("component {name} not found"),
        ),
        "Component",
        name,
    )
}

impl Unary for GetConfiguration {
    fn serve(
        ctx: &CallContext<'_>,
        request: GetConfigurationRequest,
    ) -> Result<GetConfigurationResponse, IpcError> {
        let name = request
            .component_name
            .clone()
            .unwrap_or_else(|| ctx.component.to_owned());
        let components = ctx.state.components.lock();
        let Some(c) = components.get(&name).filter(|c| !c.removed) else {
            return Err(component_not_found(ctx.state, &name, false));
        };
        let nucleus = ctx.state.flavor == Flavor::Nucleus;
        let Some((node, stored)) = get_path(&c.config, &request.key_path, nucleus) else {
            return Err(key_not_found(ctx.state, false, &name, &request.key_path));
        };
        let value = match (node, stored.last()) {
            // Only the Java nucleus hides `_` keys (Topics.toPOJO).
            (Value::Object(_), _) | (_, None) if nucleus => without_hidden(node),
            (Value::Object(_), _) | (_, None) => node.clone(),
            (leaf, Some(key)) => json!({ key: leaf }),
        };
        Ok(GetConfigurationResponse::new()
            .with_component_name(name)
            .with_value(value))
    }
}

impl Unary for UpdateConfiguration {
    fn parse(
        ctx: &CallContext<'_>,
        body: &Body<'_>,
    ) -> Result<UpdateConfigurationRequest, IpcError> {
        let request = body.value();
        if ctx.state.flavor == Flavor::Nucleus {
            // CS:313-318, on the raw request (the typed one cannot lack them).
            if request.get("timestamp").map_or(true, Value::is_null) {
                return Err(invalid_arguments("Timestamp is required"));
            }
            if request.get("valueToMerge").map_or(true, Value::is_null) {
                return Err(invalid_arguments("ValueToMerge is required"));
            }
        }
        parse_request(request, "UpdateConfigurationRequest")
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: UpdateConfigurationRequest,
    ) -> Result<UpdateConfigurationResponse, IpcError> {
        let key_path = request.key_path.unwrap_or_default();
        let touches_acl = key_path.first().is_some_and(|k| k == "accessControl")
            || (key_path.is_empty()
                && request
                    .value_to_merge
                    .as_object()
                    .is_some_and(|m| m.contains_key("accessControl")));
        if touches_acl {
            // Nucleus lite words it in the singular (update_configuration.c:77,92).
            return Err(invalid_arguments(if ctx.state.flavor == Flavor::Lite {
                "Config update is not allowed for following field [accessControl]"
            } else {
                "Config update is not allowed for following fields [accessControl]"
            }));
        }
        if key_path.is_empty() && !request.value_to_merge.is_object() {
            return Err(invalid_arguments(
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
            Ok(_) => Ok(UpdateConfigurationResponse::default()),
            Err(e) => Err(e),
        }
    }
}

impl Streaming for SubscribeToConfigurationUpdate {
    fn serve(
        ctx: &CallContext<'_>,
        request: SubscribeToConfigurationUpdateRequest,
    ) -> Result<Stream<SubscribeToConfigurationUpdateResponse>, IpcError> {
        let name = request
            .component_name
            .clone()
            .unwrap_or_else(|| ctx.component.to_owned());
        {
            let components = ctx.state.components.lock();
            let Some(c) = components.get(&name).filter(|c| !c.removed) else {
                return Err(component_not_found(ctx.state, &name, true));
            };
            let ci = case_insensitive(ctx.state);
            if get_path(&c.config, &request.key_path, ci).is_none() {
                return Err(key_not_found(ctx.state, true, &name, &request.key_path));
            }
        }
        let state = ctx.state.clone();
        let key_path = request.key_path;
        Ok(Stream::new(
            SubscribeToConfigurationUpdateResponse::default(),
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
        ))
    }
}

impl Streaming for SubscribeToValidateConfigurationUpdates {
    fn parse(
        _ctx: &CallContext<'_>,
        _body: &Body<'_>,
    ) -> Result<SubscribeToValidateConfigurationUpdatesRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(SubscribeToValidateConfigurationUpdatesRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: SubscribeToValidateConfigurationUpdatesRequest,
    ) -> Result<Stream<SubscribeToValidateConfigurationUpdatesResponse>, IpcError> {
        let state = ctx.state.clone();
        let component = ctx.component.to_owned();
        Ok(Stream::new(
            SubscribeToValidateConfigurationUpdatesResponse::default(),
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
        ))
    }
}

impl Unary for SendConfigurationValidityReport {
    fn serve(
        ctx: &CallContext<'_>,
        request: SendConfigurationValidityReportRequest,
    ) -> Result<SendConfigurationValidityReportResponse, IpcError> {
        let report = request.configuration_validity_report;
        let key = (report.deployment_id.clone(), ctx.component.to_owned());
        let area = &ctx.state.configuration;
        let mut reports = area.reports.lock();
        match reports.get_mut(&key) {
            Some(slot @ None) => {
                *slot = Some(report);
                area.reported.notify_all();
                drop(reports);
                Ok(SendConfigurationValidityReportResponse::default())
            }
            _ => Err(invalid_arguments(&nucleus_text(
                "Validation request either timed out or was never made",
                &format!(
                    "no configuration validation is pending for deployment {:?}",
                    key.0
                ),
            ))),
        }
    }
}
