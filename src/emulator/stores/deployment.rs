//! Deployments' store: what a simulated deployment changes, and the record of every
//! deployment's status.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::Value;

use crate::emulator::common::ids::random_u64;
use crate::model::{DeploymentStatus, DeploymentStatusDetails, LocalDeployment};

/// What a simulated deployment changes, and how patiently it waits for components.
#[derive(Clone, Debug)]
#[must_use]
pub struct SimulatedDeployment {
    pub(crate) id: Option<String>,
    pub(crate) configuration: BTreeMap<String, Value>,
    pub(crate) reset: BTreeMap<String, Vec<String>>,
    pub(crate) versions: BTreeMap<String, String>,
    pub(crate) remove: Vec<String>,
    pub(crate) is_ggc_restarting: bool,
    pub(crate) answer_timeout: Duration,
    pub(crate) validation_timeout: Duration,
    pub(crate) max_deferrals: u32,
}

impl Default for SimulatedDeployment {
    fn default() -> Self {
        SimulatedDeployment {
            id: None,
            configuration: BTreeMap::new(),
            reset: BTreeMap::new(),
            versions: BTreeMap::new(),
            remove: Vec::new(),
            is_ggc_restarting: false,
            answer_timeout: Duration::from_secs(2),
            validation_timeout: Duration::from_secs(5),
            max_deferrals: 20,
        }
    }
}

impl SimulatedDeployment {
    /// A deployment that changes nothing but still notifies update subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this deployment id (default: a random UUID).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Merges `value` (an object) into the component's configuration.
    pub fn merge_configuration(mut self, component: impl Into<String>, value: Value) -> Self {
        self.configuration.insert(component.into(), value);
        self
    }

    /// Resets key paths (JSON pointers such as `/a/b`, `""` = everything) of a
    /// component's configuration to its recipe defaults, before merging.
    pub fn reset_configuration(
        mut self,
        component: impl Into<String>,
        pointer: impl Into<String>,
    ) -> Self {
        self.reset
            .entry(component.into())
            .or_default()
            .push(pointer.into());
        self
    }

    /// Sets a component's version (adds the component when unknown).
    pub fn component_version(
        mut self,
        component: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        self.versions.insert(component.into(), version.into());
        self
    }

    /// Removes a component (it disappears from ListComponents).
    pub fn remove_component(mut self, component: impl Into<String>) -> Self {
        self.remove.push(component.into());
        self
    }

    /// The `isGgcRestarting` flag of the pre-update event.
    pub fn ggc_restarting(mut self, restarting: bool) -> Self {
        self.is_ggc_restarting = restarting;
        self
    }

    /// How long to wait for subscribers to answer a pre-update event (default 2 s).
    /// Components that do not answer are taken as agreeing.
    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout;
        self
    }

    /// How long to wait for a validity report (default 5 s); no report fails the deployment.
    pub fn validation_timeout(mut self, timeout: Duration) -> Self {
        self.validation_timeout = timeout;
        self
    }

    /// Reads a deployment description from JSON (used by the control topic):
    /// `{"id", "configuration": {component: {...}}, "versions": {component: version},
    /// "remove": [component], "isGgcRestarting", "answerTimeoutMs", "validationTimeoutMs"}`,
    /// every member optional.
    ///
    /// # Errors
    /// A description of the first invalid member.
    pub fn from_json(value: &Value) -> Result<SimulatedDeployment, String> {
        let Value::Object(m) = value else {
            return Err("a deployment description must be a JSON object".into());
        };
        let mut d = SimulatedDeployment::new();
        for (k, v) in m {
            match k.as_str() {
                "id" => d.id = Some(v.as_str().ok_or("id must be a string")?.to_owned()),
                "configuration" => {
                    let map = v
                        .as_object()
                        .ok_or("configuration must map components to objects")?;
                    for (c, cfg) in map {
                        if !cfg.is_object() {
                            return Err(format!("configuration.{c} must be an object"));
                        }
                        d.configuration.insert(c.clone(), cfg.clone());
                    }
                }
                "versions" => {
                    let map = v
                        .as_object()
                        .ok_or("versions must map components to versions")?;
                    for (c, ver) in map {
                        let ver = ver
                            .as_str()
                            .ok_or_else(|| format!("versions.{c} must be a string"))?;
                        d.versions.insert(c.clone(), ver.to_owned());
                    }
                }
                "remove" => {
                    for c in v.as_array().ok_or("remove must be a list")? {
                        d.remove
                            .push(c.as_str().ok_or("remove must list names")?.to_owned());
                    }
                }
                "isGgcRestarting" => {
                    d.is_ggc_restarting = v.as_bool().ok_or("isGgcRestarting must be a boolean")?
                }
                "answerTimeoutMs" => {
                    d.answer_timeout =
                        Duration::from_millis(v.as_u64().ok_or("answerTimeoutMs must be a number")?)
                }
                "validationTimeoutMs" => {
                    d.validation_timeout = Duration::from_millis(
                        v.as_u64().ok_or("validationTimeoutMs must be a number")?,
                    )
                }
                other => return Err(format!("unknown member {other:?}")),
            }
        }
        Ok(d)
    }
}

pub(crate) struct Record {
    pub(crate) deployment: LocalDeployment,
    cancel: bool,
}

/// Every deployment so far.
#[derive(Default)]
pub(crate) struct Deployments {
    pub(crate) records: Mutex<Vec<Record>>,
    pub(crate) changed: Condvar,
}

const MAX_DEPLOYMENTS: usize = 50;

impl Deployments {
    pub(crate) fn get(&self, id: &str) -> Option<LocalDeployment> {
        self.records
            .lock()
            .iter()
            .find(|r| r.deployment.deployment_id == id)
            .map(|r| r.deployment.clone())
    }

    pub(crate) fn list(&self) -> Vec<LocalDeployment> {
        self.records
            .lock()
            .iter()
            .map(|r| r.deployment.clone())
            .collect()
    }

    /// Asks a running deployment to stop; `Some(true)` = requested, `Some(false)` =
    /// already finished, `None` = unknown.
    pub(crate) fn cancel(&self, id: &str) -> Option<bool> {
        let mut records = self.records.lock();
        let r = records
            .iter_mut()
            .find(|r| r.deployment.deployment_id == id)?;
        if is_terminal(&r.deployment.status) {
            return Some(false);
        }
        r.cancel = true;
        self.changed.notify_all();
        Some(true)
    }

    pub(crate) fn is_canceled(&self, id: &str) -> bool {
        self.records
            .lock()
            .iter()
            .any(|r| r.deployment.deployment_id == id && r.cancel)
    }

    pub(crate) fn set(
        &self,
        id: &str,
        status: DeploymentStatus,
        details: Option<DeploymentStatusDetails>,
    ) {
        let mut records = self.records.lock();
        if let Some(r) = records
            .iter_mut()
            .find(|r| r.deployment.deployment_id == id)
        {
            r.deployment.status = status;
            r.deployment.deployment_status_details = details;
        }
        self.changed.notify_all();
    }

    pub(crate) fn insert(&self, id: &str) {
        let mut records = self.records.lock();
        if records.len() >= MAX_DEPLOYMENTS {
            records.remove(0);
        }
        records.push(Record {
            deployment: LocalDeployment {
                deployment_id: id.to_owned(),
                status: DeploymentStatus::Queued,
                created_on: Some(created_on()),
                deployment_status_details: None,
            },
            cancel: false,
        });
    }

    /// Sleeps up to `duration`, waking early on cancel; false = canceled or stopping.
    pub(crate) fn pause(&self, stopping: &AtomicBool, id: &str, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut records = self.records.lock();
        loop {
            if stopping.load(Ordering::Acquire)
                || records
                    .iter()
                    .any(|r| r.deployment.deployment_id == id && r.cancel)
            {
                return false;
            }
            if self.changed.wait_until(&mut records, deadline).timed_out() {
                return true;
            }
        }
    }
}

pub(crate) fn is_terminal(status: &DeploymentStatus) -> bool {
    matches!(
        status,
        DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Canceled
    )
}

fn created_on() -> String {
    // The nucleus formats createdOn as epoch milliseconds in a string.
    crate::emulator::common::clock::now_millis().to_string()
}

pub(crate) fn new_deployment_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}
