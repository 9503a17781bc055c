//! The shared state of a running emulator and the helpers its service areas use.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use super::server::{self, Outcome, ServerConn};
use super::{
    auth, cli, clientdevices, configuration, deployment, fault, iotcore, lifecycle, metrics,
    pubsub, secrets, shadows, tokens, CallRecord, ClientDeviceAnswers, Flavor, Reply,
    ScriptedRequest, Secret,
};
use crate::model::{IpcError, LifecycleState};

type Script = Arc<dyn Fn(&ScriptedRequest) -> Reply + Send + Sync>;

/// Operations Greengrass nucleus lite serves (from the aws-greengrass-lite sources,
/// `modules/ggipcd/src/services/*` registered in `ipc_dispatch.c`, main branch at
/// 326e992). `SubscribeToIoTCoreConnectionStatus` is included as well: it is added on the
/// lite branch `dev/subscribe-to-iotcore-connection-status-ipc` and the service spec
/// dates it to lite 2.7.0. Any other operation gets a `ServiceError`, as lite answers an
/// operation it has no handler for.
pub const LITE_OPERATIONS: &[&str] = &[
    "PublishToTopic",
    "SubscribeToTopic",
    "PublishToIoTCore",
    "SubscribeToIoTCore",
    "SubscribeToIoTCoreConnectionStatus",
    "GetConfiguration",
    "UpdateConfiguration",
    "SubscribeToConfigurationUpdate",
    "UpdateState",
    "CreateLocalDeployment",
    "RestartComponent",
    "ValidateAuthorizationToken",
];

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
            let request = ScriptedRequest {
                component: ctx.component.to_owned(),
                operation: operation.to_owned(),
                body: request,
            };
            return Some(match script(&request) {
                Reply::Response { model_type, body } => Outcome::Response {
                    model_type: leak_model_type(&model_type),
                    payload: body.to_string().into_bytes().into(),
                },
                Reply::Error(e) => Outcome::Error(e),
                Reply::Stream { model_type, body } => {
                    let state = ctx.state.clone();
                    let operation = operation.to_owned();
                    Outcome::Subscribe {
                        model_type: leak_model_type(&model_type),
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
            });
        }
        if self.flavor == Flavor::Lite && !LITE_OPERATIONS.contains(&operation) {
            return Some(Outcome::Error(service_error(&format!(
                "aws.greengrass#{operation} is not supported by Greengrass nucleus lite"
            ))));
        }
        if self.control_topic && operation == "PublishToTopic" {
            if let Some(outcome) = deployment::control_publish(ctx, &request) {
                return Some(outcome);
            }
        }
        Some(match operation {
            "PublishToTopic" => pubsub::publish_to_topic(ctx, request),
            "SubscribeToTopic" => pubsub::subscribe_to_topic(ctx, request),
            "PublishToIoTCore" => iotcore::publish_to_iot_core(ctx, request),
            "SubscribeToIoTCore" => iotcore::subscribe_to_iot_core(ctx, request),
            "SubscribeToIoTCoreConnectionStatus" => iotcore::subscribe_to_connection_status(ctx),
            "GetConfiguration" => configuration::get_configuration(ctx, request),
            "UpdateConfiguration" => configuration::update_configuration(ctx, request),
            "SubscribeToConfigurationUpdate" => {
                configuration::subscribe_to_configuration_update(ctx, request)
            }
            "SubscribeToValidateConfigurationUpdates" => {
                configuration::subscribe_to_validate_configuration_updates(ctx)
            }
            "SendConfigurationValidityReport" => {
                configuration::send_configuration_validity_report(ctx, request)
            }
            "UpdateState" => lifecycle::update_state(ctx, request),
            "SubscribeToComponentUpdates" => lifecycle::subscribe_to_component_updates(ctx),
            "DeferComponentUpdate" => lifecycle::defer_component_update(ctx, request),
            "PauseComponent" | "ResumeComponent" => {
                lifecycle::pause_or_resume(ctx, operation, request)
            }
            "GetSecretValue" => secrets::get_secret_value(ctx, request),
            "GetThingShadow" => shadows::get_thing_shadow(ctx, request),
            "UpdateThingShadow" => shadows::update_thing_shadow(ctx, request),
            "DeleteThingShadow" => shadows::delete_thing_shadow(ctx, request),
            "ListNamedShadowsForThing" => shadows::list_named_shadows_for_thing(ctx, request),
            "CreateLocalDeployment" => cli::create_local_deployment(ctx, request),
            "CancelLocalDeployment" => cli::cancel_local_deployment(ctx, request),
            "GetLocalDeploymentStatus" => cli::get_local_deployment_status(ctx, request),
            "ListLocalDeployments" => cli::list_local_deployments(ctx),
            "ListComponents" => cli::list_components(ctx),
            "GetComponentDetails" => cli::get_component_details(ctx, request),
            "RestartComponent" | "StopComponent" => cli::restart_or_stop(ctx, operation, request),
            "CreateDebugPassword" => cli::create_debug_password(ctx),
            "VerifyClientDeviceIdentity" => {
                clientdevices::verify_client_device_identity(ctx, request)
            }
            "GetClientDeviceAuthToken" => clientdevices::get_client_device_auth_token(ctx, request),
            "AuthorizeClientDeviceAction" => {
                clientdevices::authorize_client_device_action(ctx, request)
            }
            "SubscribeToCertificateUpdates" => {
                clientdevices::subscribe_to_certificate_updates(ctx, request)
            }
            "PutComponentMetric" => metrics::put_component_metric(ctx, request),
            "ValidateAuthorizationToken" => tokens::validate_authorization_token(ctx, request),
            _ => return None,
        })
    }
}

/// Model types named by scripts are few and long-lived; intern them.
pub(crate) fn leak_model_type(model_type: &str) -> &'static str {
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut interned = INTERNED.lock();
    if let Some(s) = interned.iter().find(|s| **s == model_type) {
        return s;
    }
    let s: &'static str = Box::leak(model_type.to_owned().into_boxed_str());
    interned.push(s);
    s
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

/// A response with this model type and JSON body.
pub(crate) fn json_response(model_type: &'static str, body: &Value) -> Outcome {
    Outcome::Response {
        model_type,
        payload: body.to_string().into_bytes().into(),
    }
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
