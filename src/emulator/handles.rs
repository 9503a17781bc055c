//! The sub-handles of [`Emulator`]: its controls grouped by what they stand in for.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use crate::emulator::common::scripts::Reply;
use crate::emulator::common::scripts::ScriptedRequest;
use crate::emulator::handlers::deployment;
use crate::emulator::handlers::deployment::DeploymentHandle;
use crate::emulator::state::LifecycleRequest;
use crate::emulator::state::{CallRecord, Recorded};
use crate::emulator::stores::clientdevices::ClientDeviceAnswers;
use crate::emulator::stores::deployment::SimulatedDeployment;
use crate::emulator::stores::faults::Fault;
use crate::emulator::stores::iotcore::CloudMessage;
use crate::emulator::stores::lifecycle::Deferral;
use crate::emulator::stores::secrets::Secret;
use crate::emulator::Emulator;
use crate::model::LifecycleState;

/// The device's state as components changed it, and what the nucleus' other components
/// (secret manager, shadow manager, client device auth, deployments) hold:
/// [`Emulator::device`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = ggipc::emulator::Emulator::start()?;
/// let me = emulator.component_name().to_owned();
/// assert_eq!(emulator.device().configuration(&me), Some(serde_json::json!({})));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct DeviceHandle<'a>(pub(super) &'a Emulator);

impl DeviceHandle<'_> {
    /// The last lifecycle state of a component (`STARTING` until it reports one with
    /// `UpdateState`; changed by restart/stop requests and deployments).
    pub fn component_state(&self, component: &str) -> Option<LifecycleState> {
        self.0
            .state
            .components
            .lock()
            .get(component)
            .map(|c| c.state.clone())
    }

    /// A component's current configuration.
    pub fn configuration(&self, component: &str) -> Option<Value> {
        self.0
            .state
            .components
            .lock()
            .get(component)
            .map(|c| c.config.clone())
    }

    /// Adds a secret for `GetSecretValue`.
    pub fn add_secret(&self, secret: Secret) {
        self.0.state.secrets.lock().push(secret);
    }

    /// The current document of a local shadow (`shadow_name` `""` = classic).
    pub fn shadow(&self, thing_name: &str, shadow_name: &str) -> Option<Value> {
        self.0.state.shadows.document(thing_name, shadow_name)
    }

    /// Sets what the client device auth operations answer.
    pub fn set_client_device_answers(&self, answers: ClientDeviceAnswers) {
        *self.0.state.client_devices.lock() = answers;
    }

    /// Starts a simulated deployment on a background thread: configuration validation,
    /// pre-update notifications honouring deferrals, the configuration merge, and
    /// post-update notifications. See [`SimulatedDeployment`].
    pub fn simulate_deployment(&self, deployment: SimulatedDeployment) -> DeploymentHandle {
        deployment::start(&self.0.state, deployment)
    }
}

/// The AWS IoT Core stand-in behind the MQTT proxy operations: [`Emulator::cloud`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = ggipc::emulator::Emulator::start()?;
/// emulator.cloud().set_connected(false);
/// assert_eq!(emulator.cloud().inject_message("a/b", b"hi".to_vec()), 0);
/// assert!(emulator.cloud().published().is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct CloudHandle<'a>(pub(super) &'a Emulator);

impl CloudHandle<'_> {
    /// Delivers a message from the cloud to every matching `SubscribeToIoTCore` stream.
    /// Returns how many streams received it.
    pub fn inject_message(&self, topic: &str, payload: impl Into<Vec<u8>>) -> usize {
        self.0.state.cloud.deliver(topic, payload.into())
    }

    /// Messages components published to IoT Core so far (while the cloud was connected,
    /// or spooled and then sent on reconnection), oldest first.
    pub fn published(&self) -> Vec<CloudMessage> {
        self.0.state.cloud.published()
    }

    /// Connects or disconnects the cloud stand-in; `SubscribeToIoTCoreConnectionStatus`
    /// streams are told. While disconnected, publishes are spooled.
    pub fn set_connected(&self, connected: bool) {
        self.0.state.cloud.set_connected(connected);
    }
}

/// What components asked for, as the emulator recorded it: [`Emulator::records`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let emulator = ggipc::emulator::Emulator::start()?;
/// assert!(emulator.records().calls().is_empty());
/// assert!(emulator.records().lifecycle_requests().is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct RecordsHandle<'a>(pub(super) &'a Emulator);

impl RecordsHandle<'_> {
    /// Calls served so far (the latest 10 000).
    pub fn calls(&self) -> Vec<CallRecord> {
        self.0
            .state
            .calls
            .lock()
            .iter()
            .map(Recorded::to_record)
            .collect()
    }

    /// Pause, resume, restart and stop requests received so far.
    pub fn lifecycle_requests(&self) -> Vec<LifecycleRequest> {
        self.0.state.lifecycle_requests.lock().clone()
    }

    /// Deferrals received so far (`DeferComponentUpdate`).
    pub fn deferrals(&self) -> Vec<Deferral> {
        self.0.state.lifecycle.deferrals()
    }

    /// Metrics received so far (`PutComponentMetric`), with the reporting component.
    pub fn metrics(&self) -> Vec<(String, crate::model::Metric)> {
        self.0.state.metrics.lock().clone()
    }
}

/// Scripted replies that replace the emulator's own semantics: [`Emulator::replies`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::emulator::{Emulator, Reply};
/// use ggipc::model::ListComponentsResponse;
///
/// let emulator = Emulator::start()?;
/// emulator
///     .replies()
///     .set("ListComponents", |_| Reply::response(&ListComponentsResponse::default()));
/// emulator.replies().clear("ListComponents");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct RepliesHandle<'a>(pub(super) &'a Emulator);

impl RepliesHandle<'_> {
    /// Answers every call of `operation` (short name) with `script` instead of the
    /// emulator's own semantics.
    pub fn set(
        &self,
        operation: &str,
        script: impl Fn(&ScriptedRequest) -> Reply + Send + Sync + 'static,
    ) {
        self.0
            .state
            .scripts
            .lock()
            .insert(operation.to_owned(), Arc::new(script));
    }

    /// Removes the script of `operation`: the emulator's own semantics apply again.
    pub fn clear(&self, operation: &str) {
        self.0.state.scripts.lock().remove(operation);
    }

    /// Sends one event (`model_type`, JSON `body`) on every open stream of `operation`
    /// that a [`Reply::Stream`] script opened. Returns how many streams received it.
    /// Waits for room in a full outbound queue as [`Emulator::publish`] does.
    pub fn push_event(&self, operation: &str, model_type: &str, body: &Value) -> usize {
        let state = &self.0.state;
        let streams: Vec<_> = state
            .scripted_streams
            .lock()
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, s)| s.clone())
            .collect();
        let payload = bytes::Bytes::from(body.to_string().into_bytes());
        let wait = state.settings.write_timeout;
        streams
            .iter()
            .filter(|s| s.send_event_waiting(model_type.to_owned().into(), payload.clone(), wait))
            .count()
    }
}

/// Fault injection: makes the server misbehave on purpose (see [`Fault`]):
/// [`Emulator::faults`]. Taking the nucleus down and back is on [`Emulator`] itself
/// ([`Emulator::go_down`], [`Emulator::come_back`], [`Emulator::restart`]).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::emulator::{Emulator, Fault};
///
/// let emulator = Emulator::start()?;
/// emulator.faults().inject_for("PublishToTopic", Fault::NoReply);
/// assert_eq!(emulator.faults().hits(), 0);
/// emulator.faults().clear();
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct FaultsHandle<'a>(pub(super) &'a Emulator);

impl FaultsHandle<'_> {
    /// `fault` applies to every request (or connection, for the connect faults) until
    /// [`clear`](FaultsHandle::clear).
    pub fn inject(&self, fault: Fault) {
        self.0.state.faults.add(None, fault);
    }

    /// As [`inject`](FaultsHandle::inject), for requests of one operation (short name)
    /// only.
    pub fn inject_for(&self, operation: &str, fault: Fault) {
        self.0.state.faults.add(Some(operation), fault);
    }

    /// How many requests (and connects) an injected fault has acted on so far.
    pub fn hits(&self) -> u64 {
        self.0.state.faults.hits.load(Ordering::Relaxed)
    }

    /// Removes every injected fault (a stalled reader resumes).
    pub fn clear(&self) {
        self.0.state.faults.clear();
    }
}

macro_rules! opaque_debug {
    ($($handle:ident),*) => {$(
        impl fmt::Debug for $handle<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($handle))
                    .field("socket_path", &self.0.socket_path())
                    .finish()
            }
        }
    )*};
}

opaque_debug!(
    DeviceHandle,
    CloudHandle,
    RecordsHandle,
    RepliesHandle,
    FaultsHandle
);
