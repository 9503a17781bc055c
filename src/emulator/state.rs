//! The shared state of a running emulator: every area's store, the components, the
//! connections and what was recorded; and what a handler sees of its call
//! ([`CallContext`]), with the authorization check every handler runs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::emulator::common::auth;
use crate::emulator::common::errors::modeled_error;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::common::scripts::Reply;
use crate::emulator::common::scripts::ScriptedRequest;
use crate::emulator::conn::admission::{Admission, ConnectionSettings};
use crate::emulator::conn::{ServerConn, StreamRef};
use crate::emulator::stores::clientdevices::ClientDeviceAnswers;
use crate::emulator::stores::components::Component;
use crate::emulator::stores::secrets::Secret;
use crate::emulator::stores::{
    configuration, deployment, faults, iotcore, lifecycle, pubsub, shadows,
};
use crate::model::IpcError;

type Script = Arc<dyn Fn(&ScriptedRequest) -> Reply + Send + Sync>;

/// A lifecycle request one component made about another (pause, resume, restart, stop).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleRequest {
    /// The calling component.
    pub caller: String,
    /// `PauseComponent`, `ResumeComponent`, `RestartComponent` or `StopComponent`.
    pub operation: String,
    /// The target component.
    pub component: String,
}

/// The shared state of a running emulator.
pub(crate) struct State {
    pub(crate) flavor: Flavor,
    pub(crate) stopping: AtomicBool,
    pub(crate) tokens: Mutex<HashMap<String, String>>,
    pub(crate) connections: Mutex<HashMap<u64, Arc<ServerConn>>>,
    pub(crate) calls: Mutex<std::collections::VecDeque<Recorded>>,
    pub(crate) scripts: Mutex<HashMap<String, Script>>,
    pub(crate) scripted_streams: Mutex<Vec<(String, StreamRef)>>,
    pub(crate) pubsub: pubsub::Broker,
    pub(crate) components: Mutex<BTreeMap<String, Component>>,
    pub(crate) configuration: configuration::Area,
    pub(crate) lifecycle: lifecycle::Area,
    pub(crate) cloud: iotcore::Cloud,
    pub(crate) secrets: Mutex<Vec<Secret>>,
    pub(crate) shadows: shadows::Store,
    pub(crate) deployments: deployment::Deployments,
    pub(crate) client_devices: Mutex<ClientDeviceAnswers>,
    pub(crate) metrics: Mutex<Vec<(String, crate::model::Metric)>>,
    pub(crate) lifecycle_requests: Mutex<Vec<LifecycleRequest>>,
    pub(crate) control_topic: bool,
    /// Fault injection (see fault.rs).
    pub(crate) faults: Arc<faults::Faults>,
    /// Connection cap, deadlines and outbound queue bounds (see listener.rs, outbound.rs).
    pub(crate) settings: ConnectionSettings,
    /// Which connections hold a slot under the cap.
    pub(crate) admission: Admission,
    /// The id of the next accepted connection (unique across restarts).
    pub(crate) next_connection_id: std::sync::atomic::AtomicU64,
    /// Events dropped because a connection's outbound queue was full.
    pub(crate) dropped_events: Arc<std::sync::atomic::AtomicU64>,
}

/// The reserved local topic that triggers a simulated deployment when the emulator was
/// built with [`EmulatorBuilder::control_topic`](crate::emulator::EmulatorBuilder::control_topic).
pub const DEPLOY_TOPIC: &str = "$ggipc/emulator/deploy";

impl State {
    pub(crate) fn component_for_token(&self, token: &str) -> Option<String> {
        self.tokens.lock().get(token).cloned()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn is_valid_token(&self, token: &str) -> bool {
        self.tokens.lock().contains_key(token)
    }

    pub(crate) fn record(&self, record: Recorded) {
        // Logged by the caller (server.rs `CallLog::finish`), with resources and reason.
        let mut calls = self.calls.lock();
        if calls.len() >= MAX_RECORDED_CALLS {
            calls.pop_front();
        }
        calls.push_back(record);
    }

    /// Checks the caller's policies (and the hard-coded rules) for `operation` on each of
    /// `resources`.
    pub(crate) fn authorize(
        &self,
        ctx: &CallContext<'_>,
        operation: &str,
        resources: &[String],
    ) -> Result<(), IpcError> {
        // Only the call's log line shows them (server.rs `CallLog`).
        if log::log_enabled!(log::Level::Info) {
            ctx.resources.lock().extend(resources.iter().cloned());
        }
        let empty_denied = self.flavor == Flavor::Nucleus;
        // Decided under the lock, rather than on a copy of the policies.
        let components = self.components.lock();
        let none = auth::Policies::default();
        let policies = components.get(ctx.component).map_or(&none, |c| &c.policies);
        auth::authorize_as(ctx.component, policies, operation, resources, empty_denied)
            .map_err(|d| modeled_error("UnauthorizedError", &d.message))
    }

    /// Whether the component exists (and was not removed by a deployment).
    pub(crate) fn has_component(&self, name: &str) -> bool {
        self.components.lock().get(name).is_some_and(|c| !c.removed)
    }
}

pub(crate) const MAX_RECORDED_CALLS: usize = 10_000;

/// What a service sees of the call it serves.
pub(crate) struct CallContext<'a> {
    pub(crate) state: &'a Arc<State>,
    pub(crate) component: &'a str,
    /// The resources the call was authorized against (for the call's log line).
    pub(crate) resources: parking_lot::Mutex<Vec<String>>,
}

/// One call the emulator served, for assertions and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// The calling component.
    pub component: String,
    /// The short operation name (`PublishToTopic`).
    pub operation: String,
    /// `ok`, `ok: stream open` or `error: <model type>`.
    pub outcome: String,
}

/// A served call as the emulator keeps it: the component's name shared with its
/// connection, the operation's and the outcome's names static where they are known. The
/// serving thread copies no text for it; [`Recorded::to_record`] does, when the records
/// are read.
pub(crate) struct Recorded {
    pub(crate) component: Arc<str>,
    pub(crate) operation: Cow<'static, str>,
    pub(crate) outcome: Cow<'static, str>,
}

impl Recorded {
    pub(crate) fn to_record(&self) -> CallRecord {
        CallRecord {
            component: self.component.to_string(),
            operation: self.operation.to_string(),
            outcome: self.outcome.to_string(),
        }
    }
}
