//! The shared state of a running emulator and the helpers its service areas use.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use super::server::{self, Outcome, ServerConn};
use super::{
    auth, configuration, deployment, fault, iotcore, lifecycle, pubsub, shadows, CallRecord,
    ClientDeviceAnswers, Flavor, Reply, ScriptedRequest, Secret,
};
use crate::model::{IpcError, LifecycleState};

type Script = Arc<dyn Fn(&ScriptedRequest) -> Reply + Send + Sync>;

/// One component known to the emulator.
pub(crate) struct Component {
    pub(crate) version: String,
    pub(crate) config: Value,
    pub(crate) default_config: Value,
    /// Last modification (epoch ms) of configuration leaves, by key path.
    pub(crate) modified: HashMap<Vec<String>, i64>,
    pub(crate) policies: auth::Policies,
    pub(crate) state: LifecycleState,
    pub(crate) removed: bool,
}

impl Component {
    pub(crate) fn new(version: &str, config: Value, policies: auth::Policies) -> Component {
        Component {
            version: version.to_owned(),
            default_config: config.clone(),
            config,
            modified: HashMap::new(),
            policies,
            state: LifecycleState::Starting,
            removed: false,
        }
    }
}

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
    pub(crate) calls: Mutex<std::collections::VecDeque<CallRecord>>,
    pub(crate) scripts: Mutex<HashMap<String, Script>>,
    pub(crate) scripted_streams: Mutex<Vec<(String, server::StreamRef)>>,
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
    pub(crate) faults: Arc<fault::Faults>,
    /// Connection cap, deadlines and outbound queue bounds (see listener.rs, outbound.rs).
    pub(crate) settings: super::listener::ConnectionSettings,
    /// Which connections hold a slot under the cap.
    pub(crate) admission: super::listener::Admission,
    /// The id of the next accepted connection (unique across restarts).
    pub(crate) next_connection_id: std::sync::atomic::AtomicU64,
    /// Events dropped because a connection's outbound queue was full.
    pub(crate) dropped_events: Arc<std::sync::atomic::AtomicU64>,
}

/// The reserved local topic that triggers a simulated deployment when the emulator was
/// built with [`EmulatorBuilder::control_topic`](super::EmulatorBuilder::control_topic).
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

    pub(crate) fn record(&self, record: CallRecord) {
        // Logged by the caller (server.rs `log_call`), with resources and reason.
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
        let policies = self
            .components
            .lock()
            .get(ctx.component)
            .map(|c| c.policies.clone())
            .unwrap_or_default();
        ctx.resources.lock().extend(resources.iter().cloned());
        let empty_denied = self.flavor == Flavor::Nucleus;
        auth::authorize_as(ctx.component, &policies, operation, resources, empty_denied)
            .map_err(|d| modeled_error("UnauthorizedError", &d.message))
    }

    /// Whether the component exists (and was not removed by a deployment).
    pub(crate) fn has_component(&self, name: &str) -> bool {
        self.components.lock().get(name).is_some_and(|c| !c.removed)
    }

    /// Runs the operation; `None` = the operation is unknown.
    pub(crate) fn handle(
        self: &Arc<Self>,
        ctx: &CallContext<'_>,
        operation: &str,
        request: Value,
    ) -> Option<Outcome> {
        let script = self.scripts.lock().get(operation).cloned();
        if let Some(script) = script {
            return Some(scripted(ctx, operation, request, &*script));
        }
        if self.flavor == Flavor::Lite && !super::registry::facts(operation).is_some_and(|f| f.lite)
        {
            return Some(Outcome::Error(service_error(&format!(
                "aws.greengrass#{operation} is not supported by Greengrass nucleus lite"
            ))));
        }
        if self.control_topic
            && operation == <crate::model::PublishToTopic as crate::model::Operation>::NAME
        {
            if let Some(outcome) = deployment::control_publish(ctx, &request) {
                return Some(outcome);
            }
        }
        let facts = super::registry::facts(operation)?;
        Some((facts.run)(ctx, request))
    }
}

/// The outcome of a scripted reply (see `Emulator::replies().set`).
fn scripted(
    ctx: &CallContext<'_>,
    operation: &str,
    request: Value,
    script: &(dyn Fn(&ScriptedRequest) -> Reply + Send + Sync),
) -> Outcome {
    let request = ScriptedRequest {
        component: ctx.component.to_owned(),
        operation: operation.to_owned(),
        body: request,
    };
    match script(&request) {
        Reply::Response { model_type, body } => Outcome::Response {
            model_type: model_type.into(),
            payload: body.to_string().into_bytes().into(),
        },
        Reply::Error(e) => Outcome::Error(e),
        Reply::Stream { model_type, body } => {
            let state = ctx.state.clone();
            let operation = operation.to_owned();
            Outcome::Subscribe {
                model_type: model_type.into(),
                payload: body.to_string().into_bytes().into(),
                register: Box::new(move |stream: server::StreamRef| {
                    state
                        .scripted_streams
                        .lock()
                        .push((operation, stream.clone()));
                    let state = state.clone();
                    Box::new(move || {
                        state
                            .scripted_streams
                            .lock()
                            .retain(|(_, s)| !s.same_stream(&stream))
                    })
                }),
                initial: None,
            }
        }
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

pub(crate) fn invalid_arguments(message: &str) -> IpcError {
    modeled_error("InvalidArgumentsError", message)
}

pub(crate) fn service_error(message: &str) -> IpcError {
    modeled_error("ServiceError", message)
}

pub(crate) fn resource_not_found(message: &str, resource_type: &str, name: &str) -> IpcError {
    crate::model::ResourceNotFoundError::new(message)
        .with_resource_type(resource_type)
        .with_resource_name(name)
        .into()
}

pub(crate) fn modeled_error(shape: &str, message: &str) -> IpcError {
    let body = serde_json::json!({ "message": message }).to_string();
    IpcError::from_application_error(
        Some(&format!("aws.greengrass#{shape}")),
        Some(crate::rpc::CONTENT_TYPE_JSON),
        body.as_bytes(),
    )
}

/// Decodes a request; a body that does not fit the shape is `InvalidArgumentsError`.
pub(crate) fn parse_request<T: serde::de::DeserializeOwned>(
    request: Value,
    shape: &str,
) -> Result<T, IpcError> {
    serde_json::from_value(request).map_err(|e| invalid_arguments(&format!("invalid {shape}: {e}")))
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
