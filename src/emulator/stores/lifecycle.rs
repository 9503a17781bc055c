//! Lifecycle's store: component-update subscribers, the deferrals awaited and received.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use crate::emulator::conn::StreamRef;
use crate::model::{ComponentUpdatePolicyEvents, Shape};

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
    pub(crate) subscribers: Mutex<Vec<(String, StreamRef)>>,
    /// deployment id -> component -> recheckAfterMs once answered.
    pub(crate) pending: Mutex<HashMap<String, HashMap<String, Option<i64>>>>,
    pub(crate) answered: Condvar,
    pub(crate) history: Mutex<Vec<Deferral>>,
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
        stopping: &AtomicBool,
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
                || stopping.load(Ordering::Acquire)
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

    pub(crate) fn is_subscribed(&self, component: &str) -> bool {
        self.subscribers.lock().iter().any(|(c, _)| c == component)
    }
}
