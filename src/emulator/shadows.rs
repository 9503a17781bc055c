//! Local shadows: GetThingShadow, UpdateThingShadow, DeleteThingShadow and
//! ListNamedShadowsForThing, with the shadow document semantics of AWS IoT (versions,
//! `state.desired` / `state.reported` / `delta`, `null` deletes a key). Documents carry no
//! `metadata`.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::server::Outcome;
use super::{
    invalid_arguments, json_response, modeled_error, parse_request, resource_not_found, CallContext,
};
use crate::model::{
    DeleteThingShadowRequest, DeleteThingShadowResponse, GetThingShadowRequest,
    GetThingShadowResponse, ListNamedShadowsForThingRequest, ListNamedShadowsForThingResponse,
    Shape, UpdateThingShadowRequest, UpdateThingShadowResponse,
};

#[derive(Default)]
struct Shadow {
    desired: Option<Value>,
    reported: Option<Value>,
    version: i64,
    timestamp: i64,
    deleted: bool,
}

/// Every shadow, by (thing, shadow name; `""` = classic).
#[derive(Default)]
pub(crate) struct Store {
    shadows: Mutex<BTreeMap<(String, String), Shadow>>,
}

fn now_secs() -> i64 {
    super::now_millis() / 1000
}

/// Merges `patch` into `target`; `null` members delete keys.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => match target.get_mut(k) {
                Some(Value::Object(t)) => merge(t, p),
                _ => {
                    let mut t = Map::new();
                    merge(&mut t, p);
                    target.insert(k.clone(), Value::Object(t));
                }
            },
            v => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The part of `desired` that differs from `reported`.
fn delta(desired: &Value, reported: Option<&Value>) -> Option<Value> {
    match (desired, reported) {
        (Value::Object(d), Some(Value::Object(r))) => {
            let mut out = Map::new();
            for (k, dv) in d {
                if let Some(sub) = delta(dv, r.get(k)) {
                    out.insert(k.clone(), sub);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (d, Some(r)) if d == r => None,
        (d, _) => Some(d.clone()),
    }
}

impl Shadow {
    fn state(&self) -> Value {
        let mut state = Map::new();
        if let Some(d) = &self.desired {
            state.insert("desired".into(), d.clone());
        }
        if let Some(r) = &self.reported {
            state.insert("reported".into(), r.clone());
        }
        if let Some(d) = &self.desired {
            if let Some(delta) = delta(d, self.reported.as_ref()) {
                state.insert("delta".into(), delta);
            }
        }
        Value::Object(state)
    }

    fn document(&self) -> Value {
        json!({"state": self.state(), "version": self.version, "timestamp": self.timestamp})
    }
}

impl Store {
    pub(crate) fn document(&self, thing: &str, shadow: &str) -> Option<Value> {
        self.shadows
            .lock()
            .get(&(thing.to_owned(), shadow.to_owned()))
            .filter(|s| !s.deleted)
            .map(Shadow::document)
    }
}

fn resource(thing: &str, shadow: &str) -> String {
    if shadow.is_empty() {
        format!("$aws/things/{thing}/shadow")
    } else {
        format!("$aws/things/{thing}/shadow/name/{shadow}")
    }
}

fn check(
    ctx: &CallContext<'_>,
    op: &str,
    thing: &str,
    shadow: &str,
) -> Result<(), crate::model::IpcError> {
    if thing.is_empty() {
        return Err(invalid_arguments("thingName is required"));
    }
    ctx.state.authorize(ctx, op, &[resource(thing, shadow)])
}

fn not_found(thing: &str, shadow: &str) -> crate::model::IpcError {
    let name = if shadow.is_empty() { "Classic" } else { shadow };
    resource_not_found(
        &format!("No shadow exists with name: {thing}/{name}"),
        "Shadow",
        &resource(thing, shadow),
    )
}

fn blob_response(model_type: &'static str, document: &Value) -> Outcome {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.encode(document.to_string());
    json_response(model_type, &json!({ "payload": payload }))
}

pub(crate) fn get_thing_shadow(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: GetThingShadowRequest = match parse_request(request, "GetThingShadowRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let shadow = r.shadow_name.unwrap_or_default();
    if let Err(e) = check(ctx, "GetThingShadow", &r.thing_name, &shadow) {
        return Outcome::Error(e);
    }
    match ctx.state.shadows.document(&r.thing_name, &shadow) {
        Some(doc) => blob_response(GetThingShadowResponse::MODEL_TYPE, &doc),
        None => Outcome::Error(not_found(&r.thing_name, &shadow)),
    }
}

pub(crate) fn update_thing_shadow(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: UpdateThingShadowRequest = match parse_request(request, "UpdateThingShadowRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let shadow_name = r.shadow_name.unwrap_or_default();
    if let Err(e) = check(ctx, "UpdateThingShadow", &r.thing_name, &shadow_name) {
        return Outcome::Error(e);
    }
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&r.payload) else {
        return Outcome::Error(invalid_arguments(
            "the shadow document must be a JSON object",
        ));
    };
    let Some(Value::Object(state)) = doc.get("state") else {
        return Outcome::Error(invalid_arguments("Missing required node: state"));
    };
    let version = match doc.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(v) => Some(v),
            None => return Outcome::Error(invalid_arguments("version must be an integer")),
        },
    };
    for key in state.keys() {
        if key != "desired" && key != "reported" {
            return Outcome::Error(invalid_arguments(&format!(
                "State contains an invalid node: {key:?}"
            )));
        }
    }
    let mut shadows = ctx.state.shadows.shadows.lock();
    let s = shadows
        .entry((r.thing_name.clone(), shadow_name.clone()))
        .or_default();
    if s.deleted {
        s.desired = None;
        s.reported = None;
        s.deleted = false;
    }
    let current = s.version;
    if let Some(v) = version {
        if v != current {
            return Outcome::Error(modeled_error("ConflictError", "Version conflict"));
        }
    }
    for (key, slot) in [("desired", &mut s.desired), ("reported", &mut s.reported)] {
        match state.get(key) {
            None => {}
            Some(Value::Null) => *slot = None,
            Some(Value::Object(patch)) => {
                let mut target = match slot.take() {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                merge(&mut target, patch);
                *slot = (!target.is_empty()).then_some(Value::Object(target));
            }
            Some(_) => {
                return Outcome::Error(invalid_arguments(&format!(
                    "state.{key} must be an object or null"
                )))
            }
        }
    }
    s.version += 1;
    s.timestamp = now_secs();
    let mut response = json!({
        "state": Value::Object(state.clone()),
        "version": s.version,
        "timestamp": s.timestamp,
    });
    if let Some(token) = doc.get("clientToken") {
        response["clientToken"] = token.clone();
    }
    drop(shadows);
    blob_response(UpdateThingShadowResponse::MODEL_TYPE, &response)
}

pub(crate) fn delete_thing_shadow(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: DeleteThingShadowRequest = match parse_request(request, "DeleteThingShadowRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let shadow = r.shadow_name.unwrap_or_default();
    if let Err(e) = check(ctx, "DeleteThingShadow", &r.thing_name, &shadow) {
        return Outcome::Error(e);
    }
    let mut shadows = ctx.state.shadows.shadows.lock();
    match shadows.get_mut(&(r.thing_name.clone(), shadow.clone())) {
        Some(s) if !s.deleted => {
            s.deleted = true;
            s.timestamp = now_secs();
            let doc = json!({"version": s.version, "timestamp": s.timestamp});
            drop(shadows);
            blob_response(DeleteThingShadowResponse::MODEL_TYPE, &doc)
        }
        _ => Outcome::Error(not_found(&r.thing_name, &shadow)),
    }
}

pub(crate) fn list_named_shadows_for_thing(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: ListNamedShadowsForThingRequest =
        match parse_request(request, "ListNamedShadowsForThingRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if r.thing_name.is_empty() {
        return Outcome::Error(invalid_arguments("thingName is required"));
    }
    if let Err(e) = ctx.state.authorize(
        ctx,
        "ListNamedShadowsForThing",
        std::slice::from_ref(&r.thing_name),
    ) {
        return Outcome::Error(e);
    }
    let page_size = r.page_size.unwrap_or(25);
    if !(1..=100).contains(&page_size) {
        return Outcome::Error(invalid_arguments("pageSize must be between 1 and 100"));
    }
    let offset = match r.next_token.as_deref() {
        None | Some("") => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return Outcome::Error(invalid_arguments("invalid nextToken")),
        },
    };
    let names: Vec<String> = ctx
        .state
        .shadows
        .shadows
        .lock()
        .iter()
        .filter(|((thing, name), s)| thing == &r.thing_name && !name.is_empty() && !s.deleted)
        .map(|((_, name), _)| name.clone())
        .collect();
    let page: Vec<String> = names
        .iter()
        .skip(offset)
        .take(page_size as usize)
        .cloned()
        .collect();
    let mut body = json!({"results": page, "timestamp": now_secs()});
    if offset + (page_size as usize) < names.len() {
        body["nextToken"] = Value::String((offset + page_size as usize).to_string());
    }
    json_response(ListNamedShadowsForThingResponse::MODEL_TYPE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_is_what_desired_differs_in() {
        let d = json!({"color": "red", "n": {"a": 1, "b": 2}});
        let r = json!({"color": "red", "n": {"a": 1, "b": 3}});
        assert_eq!(delta(&d, Some(&r)), Some(json!({"n": {"b": 2}})));
        assert_eq!(delta(&d, Some(&d)), None);
        assert_eq!(delta(&d, None), Some(d.clone()));
    }
}
