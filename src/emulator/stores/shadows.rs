//! Local shadows' store: every shadow document with its metadata and version, and the
//! pure operations on documents (merge, delta, metadata).

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

#[derive(Clone, Default)]
pub(crate) struct Shadow {
    desired: Option<Value>,
    pub(crate) reported: Option<Value>,
    meta_desired: Option<Value>,
    meta_reported: Option<Value>,
    pub(crate) version: i64,
}

/// Every live shadow, by (thing, shadow name; `""` = classic). Deleted shadows are gone.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) shadows: Mutex<BTreeMap<(String, String), Shadow>>,
}

pub(crate) fn now_secs() -> i64 {
    crate::emulator::common::clock::now_millis() / 1000
}

/// `isNullOrMissing` of JsonUtil.java:104-110: null, or an empty object.
pub(crate) fn is_null_or_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn null_if_empty(v: Value) -> Option<Value> {
    (!is_null_or_empty(Some(&v))).then_some(v)
}

/// JsonMerger.merge of two objects: `null`/`{}` members delete, objects merge, the rest
/// replaces.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, p) in patch {
        if is_null_or_empty(Some(p)) {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), p) {
            (Some(Value::Object(t)), Value::Object(p)) => merge(t, p),
            (_, Value::Object(p)) => {
                let mut t = Map::new();
                merge(&mut t, p);
                if !t.is_empty() {
                    target.insert(k.clone(), Value::Object(t));
                } else {
                    target.remove(k);
                }
            }
            (_, p) => {
                target.insert(k.clone(), p.clone());
            }
        }
    }
}

/// Numbers compare by value (JsonUtil.calculateDelta: `asLong` and `asDouble` both equal).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// JsonUtil.calculateDelta(reported, desired).
fn delta(reported: &Value, desired: &Value) -> Option<Value> {
    match (reported, desired) {
        (Value::Object(r), Value::Object(d)) => {
            let mut out = Map::new();
            for (k, dv) in d {
                let rv = r.get(k);
                if is_null_or_empty(Some(dv)) {
                    if !is_null_or_empty(rv) {
                        out.insert(k.clone(), Value::Null);
                    }
                    continue;
                }
                match rv {
                    _ if is_null_or_empty(rv) => {
                        out.insert(k.clone(), dv.clone());
                    }
                    Some(rv) => {
                        if let Some(sub) = delta(rv, dv) {
                            out.insert(k.clone(), sub);
                        }
                    }
                    None => {}
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (r, d) if same_value(r, d) => None,
        (_, d) => Some(d.clone()),
    }
}

/// ShadowStateMetadata.createMetadataPatch: every value becomes `{"timestamp": now}`.
fn metadata_patch(source: &Value, now: i64) -> Value {
    match source {
        Value::Array(items) => Value::Array(items.iter().map(|v| metadata_patch(v, now)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), metadata_patch(v, now)))
                .collect(),
        ),
        _ => json!({ "timestamp": now }),
    }
}

/// ShadowStateMetadata.isMetadataNode: an object holding only an integral `timestamp`.
fn is_metadata_node(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1
        && m.get("timestamp").is_some_and(|t| t.is_i64() || t.is_u64()))
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// ShadowStateMetadata.merge(state, metadata, patch) for objects.
fn merge_metadata(
    state: &Map<String, Value>,
    metadata: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) {
    for (k, p) in patch {
        let Some(s) = state.get(k).filter(|s| !is_null_or_empty(Some(s))) else {
            metadata.remove(k);
            continue;
        };
        if p.is_array() {
            metadata.insert(k.clone(), p.clone());
            continue;
        }
        let replace = match metadata.get(k) {
            None => true,
            Some(m) => is_null_or_empty(Some(m)) || !same_kind(m, p) || is_metadata_node(m),
        };
        if is_metadata_node(p) || replace {
            metadata.insert(k.clone(), p.clone());
            if is_metadata_node(p) {
                continue;
            }
        }
        if let (Value::Object(s), Value::Object(p), Some(Value::Object(m))) =
            (s, p, metadata.get_mut(k))
        {
            merge_metadata(s, m, p);
        }
    }
}

fn merged_metadata(state: Option<&Value>, metadata: Option<Value>, patch: &Value) -> Option<Value> {
    let Some(Value::Object(state)) = state else {
        return None;
    };
    let mut m = match metadata {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Value::Object(p) = patch {
        merge_metadata(state, &mut m, p);
    }
    null_if_empty(Value::Object(m))
}

impl Shadow {
    fn state_with_delta(&self) -> Value {
        let mut state = Map::new();
        if let Some(d) = &self.desired {
            state.insert("desired".into(), d.clone());
        }
        if let Some(r) = &self.reported {
            state.insert("reported".into(), r.clone());
        }
        let delta = match (&self.desired, &self.reported) {
            (None, _) => None,
            (Some(d), None) => Some(d.clone()),
            (Some(d), Some(r)) => delta(r, d),
        };
        if let Some(delta) = delta {
            state.insert("delta".into(), delta);
        }
        Value::Object(state)
    }

    fn metadata(&self) -> Value {
        let mut m = Map::new();
        if let Some(d) = &self.meta_desired {
            m.insert("desired".into(), d.clone());
        }
        if let Some(r) = &self.meta_reported {
            m.insert("reported".into(), r.clone());
        }
        Value::Object(m)
    }

    /// The GetThingShadow document.
    fn document(&self) -> Value {
        json!({
            "state": self.state_with_delta(),
            "metadata": self.metadata(),
            "version": self.version,
            "timestamp": now_secs(),
        })
    }

    /// ShadowState.update then ShadowStateMetadata.update; returns the patch metadata.
    pub(crate) fn apply(&mut self, state: &Value, now: i64) -> Value {
        let patch_meta = metadata_patch(state, now);
        match state {
            Value::Null => {
                self.desired = None;
                self.reported = None;
            }
            Value::Object(m) if m.is_empty() => {}
            Value::Object(m) => {
                for (key, slot) in [
                    ("desired", &mut self.desired),
                    ("reported", &mut self.reported),
                ] {
                    let Some(value) = m.get(key) else { continue };
                    if is_null_or_empty(Some(value)) {
                        *slot = None;
                        continue;
                    }
                    let Value::Object(patch) = value else {
                        continue;
                    };
                    let mut target = match slot.take() {
                        Some(Value::Object(t)) => t,
                        _ => Map::new(),
                    };
                    merge(&mut target, patch);
                    *slot = null_if_empty(Value::Object(target));
                }
            }
            _ => {}
        }
        if self.desired.is_none() && self.reported.is_none() {
            self.meta_desired = None;
            self.meta_reported = None;
            return patch_meta;
        }
        if let Some(p) = patch_meta
            .get("desired")
            .filter(|p| !is_null_or_empty(Some(p)))
        {
            self.meta_desired = merged_metadata(self.desired.as_ref(), self.meta_desired.take(), p);
        }
        if let Some(p) = patch_meta
            .get("reported")
            .filter(|p| !is_null_or_empty(Some(p)))
        {
            self.meta_reported =
                merged_metadata(self.reported.as_ref(), self.meta_reported.take(), p);
        }
        patch_meta
    }

    pub(crate) fn size(&self) -> usize {
        [&self.desired, &self.reported]
            .into_iter()
            .flatten()
            .map(|v| v.to_string().len())
            .sum()
    }
}

impl Store {
    pub(crate) fn document(&self, thing: &str, shadow: &str) -> Option<Value> {
        self.shadows
            .lock()
            .get(&(thing.to_owned(), shadow.to_owned()))
            .map(Shadow::document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_is_what_desired_differs_in() {
        let d = json!({"color": "red", "n": {"a": 1, "b": 2}});
        let r = json!({"color": "red", "n": {"a": 1.0, "b": 3}});
        assert_eq!(delta(&r, &d), Some(json!({"n": {"b": 2}})));
        assert_eq!(delta(&d, &d), None);
    }

    #[test]
    fn metadata_follows_the_state() {
        let mut s = Shadow::default();
        s.apply(
            &json!({"desired": {"a": 1, "b": [1, 2], "c": {"d": true}}}),
            100,
        );
        assert_eq!(
            s.meta_desired,
            Some(
                json!({"a": {"timestamp": 100}, "b": [{"timestamp": 100}, {"timestamp": 100}],
                        "c": {"d": {"timestamp": 100}}})
            )
        );
        s.apply(&json!({"desired": {"a": null, "c": {"e": 2}}}), 200);
        assert_eq!(
            s.meta_desired,
            Some(json!({"b": [{"timestamp": 100}, {"timestamp": 100}],
                        "c": {"d": {"timestamp": 100}, "e": {"timestamp": 200}}}))
        );
        s.apply(&json!(null), 300);
        assert_eq!((s.meta_desired.clone(), s.desired.clone()), (None, None));
    }
}
