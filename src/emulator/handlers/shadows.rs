//! Local shadows: GetThingShadow, UpdateThingShadow, DeleteThingShadow and
//! ListNamedShadowsForThing, as the shadow manager (`aws.greengrass.ShadowManager`) answers
//! them.
//!
//! # Rules
//!
//! From aws-greengrass/aws-greengrass-shadow-manager at 17fb54e; `SM/` is
//! `src/main/java/com/aws/greengrass/shadowmanager/`. Errors are InvalidArgumentsError
//! (IAE) unless said otherwise. Tests: `tests/emulator_fidelity.rs` (`shadow_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | Thing name: empty → IAE `ThingName is missing`; over 128 characters → IAE `ThingName has a maximum length of 128`; not `[a-zA-Z0-9:_-]+` → IAE `ThingName must match pattern [a-zA-Z0-9:_-]+`. Checked before authorization. | `SM/util/Validator.java:73-89`, `SM/model/Constants.java:50-52` |
//! | Shadow name (absent or empty = classic): over 64 characters → IAE `ShadowName has a maximum length of 64`; pattern as above → IAE `ShadowName must match pattern …`. | `SM/util/Validator.java:50-65`, `Constants.java:51` |
//! | Update with an empty payload → IAE `Missing update payload` (before authorization). | `SM/ipc/UpdateThingShadowRequestHandler.java:116-117`, `SM/model/ErrorMessage.java:43-44` |
//! | Authorization is on `$aws/things/<thing>/shadow` or `…/shadow/name/<shadow>`; a denial is `UnauthorizedError` with the nucleus's `Principal … is not authorized …` text. | `UpdateThingShadowRequestHandler.java:119,150-159`, `GetThingShadowRequestHandler.java:88,122-131` |
//! | A payload that is not JSON → **ServiceError** (the JSON parser's IOException). `null` or `{}` → IAE `Invalid JSON: `. | `UpdateThingShadowRequestHandler.java:130-134,174-175` |
//! | `state.delta` in an update is dropped, not rejected. | `UpdateThingShadowRequestHandler.java:136-142` |
//! | Schema: the document is an object with `state` (object or null); `desired`/`reported` objects or null; a `state` with neither holds nothing else; `clientToken` a string of at most 64 characters; `version` a number ≥ 0. Else IAE `Invalid JSON: <what>`. | `src/main/resources/json/schema/update_payload_schema.json`, `SM/util/JsonUtil.java:72-84` |
//! | `desired` or `reported` nested deeper than 6 levels (counting containers only) → IAE `JSON contains too many levels of nesting; maximum is 6`. Checked before the version. | `SM/util/JsonUtil.java:146-172,188-190`, `ErrorMessage.java:30-32`, `Constants.java:37` |
//! | Version on a new shadow: absent or exactly 1, else IAE `Invalid version`. On an existing shadow: absent or equal to the current version, else `ConflictError` `Version conflict`. | `SM/util/JsonUtil.java:192-207`, `ErrorMessage.java:27-28,49-50` |
//! | The merged `desired` + `reported` (compact JSON bytes) over 8 KiB → IAE `The payload exceeds the maximum size allowed`. | `UpdateThingShadowRequestHandler.java:183-214`, `SM/util/Validator.java:138-142`, `Constants.java:38` |
//! | A rejected update stores nothing (the update runs on a copy). | `UpdateThingShadowRequestHandler.java:180,216-219` |
//! | Merge: `state: null` clears both; `state: {}` changes nothing; `desired`/`reported` `null` or `{}` clears that part; inside, a `null` or `{}` member deletes the key, arrays replace, objects merge. | `SM/model/ShadowState.java:62-98`, `SM/util/JsonMerger.java` |
//! | Metadata: every leaf of `desired`/`reported` has `{"timestamp": <epoch s>}` of its last update, arrays per element; removed keys lose theirs. | `SM/model/ShadowStateMetadata.java:72-204` |
//! | Update response: `version`, `clientToken` (if sent), `timestamp`, `state` (as sent, less `delta`), `metadata` of the patch. | `UpdateThingShadowRequestHandler.java:243-249`, `SM/model/ResponseMessageBuilder.java` |
//! | Get response: `state` with `delta`, `metadata`, `version`, `timestamp` (now). No shadow → `ResourceNotFoundError` `No shadow found`, resource type `shadow`. | `SM/ipc/GetThingShadowRequestHandler.java:90-110` |
//! | Delta: members of `desired` that differ from `reported` (numbers compare by value). | `SM/model/ShadowState.java:135-144`, `SM/util/JsonUtil.java:246-303` |
//! | Delete answers an empty payload; no shadow → `ResourceNotFoundError` `No shadow found`. An update after a delete starts again at version 1 (the IPC path reads only undeleted shadows). | `SM/ipc/DeleteThingShadowRequestHandler.java:105-141`, `SM/ShadowManagerDAOImpl.java:56,92-113` |
//! | List: thing name validated as above; `pageSize` default 25, outside 1..=100 → IAE `pageSize argument must be between 1 and 100`; `nextToken` is set whenever a page is full (so a last full page is followed by an empty one). | `SM/ipc/ListNamedShadowsForThingIPCHandler.java:117-146`, `Constants.java:53-55` |
//!
//! Deliberate differences: the shadow manager's request rate limits (`ServiceError` `Too
//! Many Requests` past 20 per thing or 200 in total per second) are not modelled, so tests
//! do not fail by timing; `nextToken` is the offset in plain text, not the shadow manager's
//! encrypted token; the text after `Invalid JSON: ` is ggipc's, where the shadow manager
//! gives the json-schema library's; the first `desired`/`reported` of a shadow drops `null`
//! members (the shadow manager stores them as sent); no `/accepted`, `/rejected`, `/delta`
//! or `/documents` messages are published on local pub/sub, and nothing syncs with the cloud.

use serde_json::{Map, Value};

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::modeled_error;
use crate::emulator::common::errors::resource_not_found;
use crate::emulator::common::errors::service_error;
use crate::emulator::common::texts::nucleus_text;
use crate::emulator::registry::Unary;
use crate::emulator::state::CallContext;
use crate::emulator::stores::shadows::{is_null_or_empty, now_secs, Shadow};
use crate::model::{
    DeleteThingShadow, DeleteThingShadowRequest, DeleteThingShadowResponse, GetThingShadow,
    GetThingShadowRequest, GetThingShadowResponse, IpcError, ListNamedShadowsForThing,
    ListNamedShadowsForThingRequest, ListNamedShadowsForThingResponse, Timestamp,
    UpdateThingShadow, UpdateThingShadowRequest, UpdateThingShadowResponse,
};

/// `MAX_THING_NAME_LENGTH` (Constants.java:50).
pub(crate) const MAX_THING_NAME_LENGTH: usize = 128;
/// `MAX_SHADOW_NAME_LENGTH` (Constants.java:51).
pub(crate) const MAX_SHADOW_NAME_LENGTH: usize = 64;
/// `DEFAULT_DOCUMENT_SIZE` (Constants.java:38): `desired` + `reported` bytes.
pub(crate) const MAX_DOCUMENT_SIZE: usize = 8 * 1024;
/// `DEFAULT_DOCUMENT_STATE_DEPTH` (Constants.java:37).
pub(crate) const MAX_STATE_DEPTH: usize = 6;
/// `clientToken` maxLength in update_payload_schema.json.
pub(crate) const MAX_CLIENT_TOKEN_LENGTH: usize = 64;

fn resource(thing: &str, shadow: &str) -> String {
    if shadow.is_empty() {
        format!("$aws/things/{thing}/shadow")
    } else {
        format!("$aws/things/{thing}/shadow/name/{shadow}")
    }
}

/// `[a-zA-Z0-9:_-]+` (Constants.SHADOW_PATTERN).
fn matches_shadow_pattern(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
}

/// Validator.validateThingName.
fn validate_thing_name(thing: &str) -> Result<(), IpcError> {
    if thing.is_empty() {
        return Err(invalid_arguments("ThingName is missing"));
    }
    if thing.chars().count() > MAX_THING_NAME_LENGTH {
        return Err(invalid_arguments(&format!(
            "ThingName has a maximum length of {MAX_THING_NAME_LENGTH}"
        )));
    }
    if !matches_shadow_pattern(thing) {
        return Err(invalid_arguments(
            "ThingName must match pattern [a-zA-Z0-9:_-]+",
        ));
    }
    Ok(())
}

/// Validator.validateShadowName (empty = classic, valid).
fn validate_shadow_name(shadow: &str) -> Result<(), IpcError> {
    if shadow.is_empty() {
        return Ok(());
    }
    if shadow.chars().count() > MAX_SHADOW_NAME_LENGTH {
        return Err(invalid_arguments(&format!(
            "ShadowName has a maximum length of {MAX_SHADOW_NAME_LENGTH}"
        )));
    }
    if !matches_shadow_pattern(shadow) {
        return Err(invalid_arguments(
            "ShadowName must match pattern [a-zA-Z0-9:_-]+",
        ));
    }
    Ok(())
}

fn validate_names(thing: &str, shadow: &str) -> Result<(), IpcError> {
    validate_thing_name(thing)?;
    validate_shadow_name(shadow)
}

fn not_found(thing: &str, shadow: &str) -> IpcError {
    let name = if shadow.is_empty() { "Classic" } else { shadow };
    resource_not_found(
        &nucleus_text("No shadow found", &format!("no shadow {thing}/{name}")),
        "shadow",
        &resource(thing, shadow),
    )
}

fn invalid_json(what: &str) -> IpcError {
    invalid_arguments(&format!("Invalid JSON: {what}"))
}

/// The container depth JsonUtil.calculateDepth counts: value nodes and empty containers
/// count 0; a non-empty container at depth `d` counts `d` and its children `d + 1`.
fn too_deep(node: &Value, depth: usize) -> bool {
    let children: Vec<&Value> = match node {
        Value::Object(m) if !m.is_empty() => m.values().collect(),
        Value::Array(a) if !a.is_empty() => a.iter().collect(),
        _ => return false,
    };
    depth > MAX_STATE_DEPTH || children.iter().any(|c| too_deep(c, depth + 1))
}

/// update_payload_schema.json, in ggipc's words.
fn validate_schema(doc: &Value) -> Result<(), IpcError> {
    let Value::Object(doc) = doc else {
        return Err(invalid_json("the document must be an object"));
    };
    match doc.get("state") {
        None => return Err(invalid_json("state: is missing but it is required")),
        Some(Value::Null) => {}
        Some(Value::Object(state)) => {
            for key in ["desired", "reported", "delta"] {
                if let Some(v) = state.get(key) {
                    if !v.is_object() && !v.is_null() {
                        return Err(invalid_json(&format!(
                            "state.{key}: must be an object or null"
                        )));
                    }
                }
            }
            let has_part = state.contains_key("desired") || state.contains_key("reported");
            if !has_part {
                if let Some(extra) = state.keys().find(|k| *k != "delta") {
                    return Err(invalid_json(&format!(
                        "state.{extra}: is not defined in the schema and the schema does not allow additional properties"
                    )));
                }
            }
        }
        Some(_) => return Err(invalid_json("state: must be an object or null")),
    }
    if let Some(token) = doc.get("clientToken") {
        match token {
            Value::String(t) if t.chars().count() <= MAX_CLIENT_TOKEN_LENGTH => {}
            Value::String(_) => {
                return Err(invalid_json(&format!(
                    "clientToken: may only be {MAX_CLIENT_TOKEN_LENGTH} characters long"
                )))
            }
            _ => return Err(invalid_json("clientToken: must be a string")),
        }
    }
    if let Some(version) = doc.get("version") {
        match version.as_f64() {
            Some(v) if v >= 0.0 => {}
            Some(_) => return Err(invalid_json("version: must have a minimum value of 0")),
            None => return Err(invalid_json("version: must be a number")),
        }
    }
    Ok(())
}

impl Unary for GetThingShadow {
    fn serve(
        ctx: &CallContext<'_>,
        r: GetThingShadowRequest,
    ) -> Result<GetThingShadowResponse, IpcError> {
        let shadow = r.shadow_name.unwrap_or_default();
        validate_names(&r.thing_name, &shadow)?;
        ctx.state
            .authorize(ctx, "GetThingShadow", &[resource(&r.thing_name, &shadow)])?;
        match ctx.state.shadows.document(&r.thing_name, &shadow) {
            Some(doc) => Ok(GetThingShadowResponse::new(doc.to_string().into_bytes())),
            None => Err(not_found(&r.thing_name, &shadow)),
        }
    }
}

impl Unary for UpdateThingShadow {
    fn serve(
        ctx: &CallContext<'_>,
        request: UpdateThingShadowRequest,
    ) -> Result<UpdateThingShadowResponse, IpcError> {
        update(ctx, request)
    }
}

fn update(
    ctx: &CallContext<'_>,
    r: UpdateThingShadowRequest,
) -> Result<UpdateThingShadowResponse, IpcError> {
    let shadow_name = r.shadow_name.unwrap_or_default();
    validate_names(&r.thing_name, &shadow_name)?;
    if r.payload.is_empty() {
        return Err(invalid_arguments("Missing update payload"));
    }
    ctx.state.authorize(
        ctx,
        "UpdateThingShadow",
        &[resource(&r.thing_name, &shadow_name)],
    )?;
    let mut doc: Value = serde_json::from_slice(&r.payload)
        .map_err(|e| service_error(&format!("the update payload is not JSON: {e}")))?;
    if is_null_or_empty(Some(&doc)) {
        return Err(invalid_json(""));
    }
    if let Some(Value::Object(state)) = doc.get_mut("state") {
        state.remove("delta");
    }
    validate_schema(&doc)?;
    let state = doc.get("state").cloned().unwrap_or(Value::Null);
    for key in ["desired", "reported"] {
        if let Some(part) = state.get(key) {
            if too_deep(part, 1) {
                return Err(invalid_arguments(
                    "JSON contains too many levels of nesting; maximum is 6",
                ));
            }
        }
    }
    let key = (r.thing_name.clone(), shadow_name.clone());
    let mut shadows = ctx.state.shadows.shadows.lock();
    let current = shadows.get(&key);
    check_version(&doc, current)?;
    let mut updated = current.cloned().unwrap_or_default();
    let now = now_secs();
    let patch_meta = updated.apply(&state, now);
    updated.version = current.map_or(1, |s| s.version + 1);
    let size = updated.size();
    if size > MAX_DOCUMENT_SIZE {
        return Err(invalid_arguments(&nucleus_text(
            "The payload exceeds the maximum size allowed",
            &format!("desired + reported would be {size} bytes, over {MAX_DOCUMENT_SIZE}"),
        )));
    }
    let version = updated.version;
    shadows.insert(key, updated);
    drop(shadows);
    let mut response = Map::new();
    response.insert("version".into(), Value::from(version));
    if let Some(token) = doc.get("clientToken").and_then(Value::as_str) {
        response.insert("clientToken".into(), Value::String(token.to_owned()));
    }
    response.insert("timestamp".into(), Value::from(now));
    response.insert("state".into(), state);
    response.insert("metadata".into(), patch_meta);
    Ok(UpdateThingShadowResponse::new(
        Value::Object(response).to_string().into_bytes(),
    ))
}

/// The update's `version` against the stored shadow: a new shadow takes 1 or none, an
/// existing one its current version.
fn check_version(doc: &Value, current: Option<&Shadow>) -> Result<(), IpcError> {
    let Some(v) = doc.get("version").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    // `asInt()`: a fractional version is truncated.
    let v = v.as_f64().unwrap_or(-1.0).trunc() as i64;
    match current {
        None if v != 1 => Err(invalid_arguments(&nucleus_text(
            "Invalid version",
            "a new shadow takes version 1 or none",
        ))),
        Some(s) if s.version != v => Err(modeled_error(
            "ConflictError",
            &nucleus_text(
                "Version conflict",
                &format!(
                    "the shadow is at version {}, the update names {v}",
                    s.version
                ),
            ),
        )),
        _ => Ok(()),
    }
}

impl Unary for DeleteThingShadow {
    fn serve(
        ctx: &CallContext<'_>,
        r: DeleteThingShadowRequest,
    ) -> Result<DeleteThingShadowResponse, IpcError> {
        let shadow = r.shadow_name.unwrap_or_default();
        validate_names(&r.thing_name, &shadow)?;
        ctx.state.authorize(
            ctx,
            "DeleteThingShadow",
            &[resource(&r.thing_name, &shadow)],
        )?;
        let removed = ctx
            .state
            .shadows
            .shadows
            .lock()
            .remove(&(r.thing_name.clone(), shadow.clone()));
        match removed {
            // "After a successful delete, the payload ... is an empty response".
            Some(_) => Ok(DeleteThingShadowResponse::new(Vec::new())),
            None => Err(not_found(&r.thing_name, &shadow)),
        }
    }
}

impl Unary for ListNamedShadowsForThing {
    fn serve(
        ctx: &CallContext<'_>,
        r: ListNamedShadowsForThingRequest,
    ) -> Result<ListNamedShadowsForThingResponse, IpcError> {
        validate_thing_name(&r.thing_name)?;
        ctx.state.authorize(
            ctx,
            "ListNamedShadowsForThing",
            std::slice::from_ref(&r.thing_name),
        )?;
        let page_size = r.page_size.unwrap_or(25);
        if !(1..=100).contains(&page_size) {
            return Err(invalid_arguments(
                "pageSize argument must be between 1 and 100",
            ));
        }
        let offset = match r.next_token.as_deref() {
            None | Some("") => 0,
            Some(t) => match t.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return Err(invalid_arguments("invalid nextToken")),
            },
        };
        let page: Vec<String> = ctx
            .state
            .shadows
            .shadows
            .lock()
            .keys()
            .filter(|(thing, name)| thing == &r.thing_name && !name.is_empty())
            .map(|(_, name)| name.clone())
            .skip(offset)
            .take(page_size as usize)
            .collect();
        let full = page.len() == page_size as usize;
        let response = ListNamedShadowsForThingResponse::new(
            page,
            Timestamp::from_secs_f64(now_secs() as f64),
        );
        Ok(if full {
            response.with_next_token((offset + page_size as usize).to_string())
        } else {
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_containers_only() {
        // desired(1) a(2) b(3) c(4) d(5) e(6): six levels, the leaf does not count.
        let six = json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
        assert!(!too_deep(&six, 1));
        let seven = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}});
        assert!(too_deep(&seven, 1));
        assert!(!too_deep(
            &json!({"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}),
            1
        ));
    }
}
