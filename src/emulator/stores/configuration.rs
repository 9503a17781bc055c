//! Configuration's store: update and validation subscribers, and the validity reports
//! awaited from them (the configurations themselves are the components', see
//! `components.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use crate::emulator::conn::StreamRef;
use crate::model::{ConfigurationValidityReport, Shape, ValidateConfigurationUpdateEvents};

pub(crate) struct UpdateSubscriber {
    pub(crate) component: String,
    pub(crate) key_path: Vec<String>,
    pub(crate) stream: StreamRef,
}

/// Subscribers and pending validations.
#[derive(Default)]
pub(crate) struct Area {
    pub(crate) update_subscribers: Mutex<Vec<UpdateSubscriber>>,
    pub(crate) validators: Mutex<Vec<(String, StreamRef)>>,
    /// (deployment id, component) -> report, once received; `None` while awaited.
    pub(crate) reports: Mutex<HashMap<(String, String), Option<ConfigurationValidityReport>>>,
    pub(crate) reported: Condvar,
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
        stopping: &AtomicBool,
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
            if stopping.load(Ordering::Acquire)
                || self.reported.wait_until(&mut reports, deadline).timed_out()
            {
                reports.remove(&key);
                return None;
            }
        }
    }
}
