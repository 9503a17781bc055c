//! A local Greengrass nucleus for tests: a real IPC server on a Unix socket.
//!
//! Enabled by the `emulator` feature. It speaks the same eventstream RPC as the nucleus
//! (built on this crate's codec, so only the vectors and the official clients prove the
//! wire format), checks the auth token of each connection, and implements the service
//! areas listed on [`Emulator`]. It stops, joins its threads and removes its socket
//! when dropped.
//!
//! This module is a testing tool: its API may change in minor releases.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::emulator::Emulator;
//! use ggipc::model::PublishToTopicRequest;
//!
//! let emulator = Emulator::start()?;
//! let client = emulator.connect()?;
//! client.publish_to_topic(PublishToTopicRequest::json("greetings", serde_json::json!({"hi": 1})))?;
//! # Ok(()) }
//! ```

mod auth;
mod cli;
mod clientdevices;
mod configuration;
mod deployment;
mod fault;
mod iotcore;
mod lifecycle;
mod metrics;
mod pubsub;
mod recipe;
mod secrets;
mod server;
mod shadows;
mod tokens;
mod topic;

pub use auth::{authorize, Denied, Matching, Policies, Policy, PolicyProblem, Resource};
pub use clientdevices::ClientDeviceAnswers;
pub use deployment::{DeploymentHandle, SimulatedDeployment};
pub use iotcore::CloudMessage;
pub use lifecycle::Deferral;
pub use recipe::{LoadError, Recipe, RecipeFormat};
pub use secrets::Secret;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::codec::Limits;
use crate::model::{IpcError, LifecycleState, PublishMessage};
use crate::{Client, ClientBuilder};
pub use fault::Fault;
use server::{Outcome, ServerConn};

/// Which nucleus the emulator behaves like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavor {
    /// The Java Greengrass nucleus (the default).
    #[default]
    Nucleus,
    /// Greengrass nucleus lite: 10 000-byte frames, no TERMINATE on responses,
    /// `_message`/`_errorCode` error bodies, a refused connect closes without an ack, a
    /// PING closes the connection.
    Lite,
}

impl Flavor {
    /// The frame limits this flavour enforces.
    pub fn limits(self) -> Limits {
        match self {
            Flavor::Nucleus => Limits::default(),
            Flavor::Lite => Limits::with_max_frame_size(10_000),
        }
    }
}

/// Errors of the emulator itself (not of the calls it serves).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The socket could not be created.
    #[error("emulator socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another live server already listens on the path.
    #[error("another server is listening on {0}")]
    InUse(PathBuf),
    /// A configuration value is invalid.
    #[error("invalid emulator configuration: {0}")]
    Invalid(String),
    /// A recipe, policy or secrets document is malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
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

impl CallRecord {
    fn new(component: &str, operation: &str, outcome: &str) -> Self {
        CallRecord {
            component: component.into(),
            operation: operation.into(),
            outcome: outcome.into(),
        }
    }
}

/// What a scripted operation answers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Reply {
    /// A response with this JSON body and model type (`aws.greengrass#…Response`).
    Response {
        /// The response shape id.
        model_type: String,
        /// The JSON body.
        body: Value,
    },
    /// An error answer.
    Error(IpcError),
    /// The initial response of a streaming operation: the stream stays open and the test
    /// pushes events with [`Emulator::push_event`].
    Stream {
        /// The response shape id.
        model_type: String,
        /// The JSON body.
        body: Value,
    },
}

impl Reply {
    /// A response carrying `shape`.
    pub fn response<T: crate::model::Shape>(shape: &T) -> Reply {
        Reply::Response {
            model_type: T::MODEL_TYPE.to_owned(),
            body: to_value(shape),
        }
    }

    /// A streaming operation's initial response carrying `shape`; the stream stays open.
    pub fn stream<T: crate::model::Shape>(shape: &T) -> Reply {
        Reply::Stream {
            model_type: T::MODEL_TYPE.to_owned(),
            body: to_value(shape),
        }
    }

    /// An error answer.
    pub fn error(error: IpcError) -> Reply {
        Reply::Error(error)
    }
}

fn to_value<T: serde::Serialize>(shape: &T) -> Value {
    serde_json::to_value(shape).unwrap_or(Value::Null)
}

/// A request as a script sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScriptedRequest {
    /// The calling component.
    pub component: String,
    /// The short operation name.
    pub operation: String,
    /// The request JSON.
    pub body: Value,
}

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
    fn new(version: &str, config: Value, policies: auth::Policies) -> Component {
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
    flavor: Flavor,
    stopping: AtomicBool,
    tokens: Mutex<HashMap<String, String>>,
    connections: Mutex<HashMap<u64, Arc<ServerConn>>>,
    calls: Mutex<std::collections::VecDeque<CallRecord>>,
    scripts: Mutex<HashMap<String, Script>>,
    scripted_streams: Mutex<Vec<(String, server::StreamRef)>>,
    pubsub: pubsub::Broker,
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
    control_topic: bool,
    /// Fault injection (see fault.rs).
    faults: Arc<fault::Faults>,
}

/// The reserved local topic that triggers a simulated deployment when the emulator was
/// built with [`EmulatorBuilder::control_topic`].
pub const DEPLOY_TOPIC: &str = "$ggipc/emulator/deploy";

impl State {
    fn component_for_token(&self, token: &str) -> Option<String> {
        self.tokens.lock().get(token).cloned()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn is_valid_token(&self, token: &str) -> bool {
        self.tokens.lock().contains_key(token)
    }

    fn record(&self, record: CallRecord) {
        log::info!(
            "emulator: {} {} -> {}",
            record.component,
            record.operation,
            record.outcome
        );
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
        auth::authorize(ctx.component, &policies, operation, resources)
            .map_err(|d| modeled_error("UnauthorizedError", &d.message))
    }

    /// Whether the component exists (and was not removed by a deployment).
    pub(crate) fn has_component(&self, name: &str) -> bool {
        self.components.lock().get(name).is_some_and(|c| !c.removed)
    }

    /// Runs the operation; `None` = the operation is unknown.
    fn handle(
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
fn leak_model_type(model_type: &str) -> &'static str {
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut interned = INTERNED.lock();
    if let Some(s) = interned.iter().find(|s| **s == model_type) {
        return s;
    }
    let s: &'static str = Box::leak(model_type.to_owned().into_boxed_str());
    interned.push(s);
    s
}

const MAX_RECORDED_CALLS: usize = 10_000;

/// What a service sees of the call it serves.
pub(crate) struct CallContext<'a> {
    pub(crate) state: &'a Arc<State>,
    pub(crate) component: &'a str,
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

#[derive(Debug)]
enum Declared {
    Token {
        name: String,
        token: String,
        permissive: bool,
    },
    Recipe(recipe::RecipeSource),
}

/// Configures an [`Emulator`].
#[derive(Debug, Default)]
#[must_use]
pub struct EmulatorBuilder {
    socket_path: Option<PathBuf>,
    flavor: Flavor,
    declared: Vec<Declared>,
    secrets_files: Vec<PathBuf>,
    secrets: Vec<Secret>,
    control_topic: bool,
}

impl EmulatorBuilder {
    /// Where to listen. Default: a fresh path under the temp directory. A stale socket
    /// file left by a killed emulator is replaced.
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket_path = Some(path.into());
        self
    }

    /// Which nucleus to behave like. Default [`Flavor::Nucleus`].
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Adds a component that connects with `auth_token`, with an empty configuration and
    /// **no** policies (only operations that need no authorization succeed). When a recipe
    /// of the same name is also given, the recipe supplies configuration and policies and
    /// this call only fixes its token.
    ///
    /// Without any component or recipe, [`EmulatorBuilder::start`] creates one permissive
    /// component named `com.example.Component` with a random token.
    pub fn component(mut self, name: impl Into<String>, auth_token: impl Into<String>) -> Self {
        self.declared.push(Declared::Token {
            name: name.into(),
            token: auth_token.into(),
            permissive: false,
        });
        self
    }

    /// Adds a component whose policies allow every operation on every resource (the
    /// hard-coded caller rules of `ValidateAuthorizationToken`, `PutComponentMetric` and
    /// `CancelLocalDeployment` still apply).
    pub fn permissive_component(
        mut self,
        name: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Self {
        self.declared.push(Declared::Token {
            name: name.into(),
            token: auth_token.into(),
            permissive: true,
        });
        self
    }

    /// Loads a component from a recipe file (`.json` is JSON, anything else YAML) when
    /// the emulator starts. Its token is random unless [`EmulatorBuilder::component`]
    /// names it too.
    pub fn recipe_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.declared
            .push(Declared::Recipe(recipe::RecipeSource::File(path.into())));
        self
    }

    /// Loads a component from recipe text.
    pub fn recipe_str(mut self, text: impl Into<String>, format: RecipeFormat) -> Self {
        self.declared
            .push(Declared::Recipe(recipe::RecipeSource::Text(
                text.into(),
                format,
            )));
        self
    }

    /// Loads secrets for `GetSecretValue` from a JSON file: a list of objects with `arn`
    /// and/or `name`, `secretString` or `secretBinary` (base64), and optional
    /// `versionId`, `versionStages`.
    pub fn secrets_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secrets_files.push(path.into());
        self
    }

    /// Adds one secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Whether publishing to [`DEPLOY_TOPIC`] triggers a simulated deployment (off by
    /// default). The message is a JSON [`SimulatedDeployment`] description (see
    /// [`SimulatedDeployment::from_json`]); the publish itself needs no policy. Meant for
    /// tests written in other languages against the `ggipc-emulator` binary.
    pub fn control_topic(mut self, enabled: bool) -> Self {
        self.control_topic = enabled;
        self
    }

    /// Binds the socket and starts serving.
    ///
    /// # Errors
    /// [`EmulatorError::Load`] when a recipe or secrets file is malformed,
    /// [`EmulatorError::Socket`] when the socket cannot be created,
    /// [`EmulatorError::InUse`] when a live server already listens on the path.
    pub fn start(self) -> Result<Emulator, EmulatorError> {
        let mut order: Vec<String> = Vec::new();
        let mut table: BTreeMap<String, Component> = BTreeMap::new();
        let mut tokens_by_name: HashMap<String, String> = HashMap::new();
        let mut recipe_names = std::collections::HashSet::new();
        if self.declared.is_empty() {
            order.push("com.example.Component".into());
            tokens_by_name.insert("com.example.Component".into(), random_token());
            table.insert(
                "com.example.Component".into(),
                Component::new("1.0.0", json_object(), auth::Policies::permissive()),
            );
        }
        for declared in &self.declared {
            match declared {
                Declared::Token {
                    name,
                    token,
                    permissive,
                } => {
                    if !order.contains(name) {
                        order.push(name.clone());
                    }
                    tokens_by_name.insert(name.clone(), token.clone());
                    if recipe_names.contains(name) {
                        continue;
                    }
                    let policies = if *permissive {
                        auth::Policies::permissive()
                    } else {
                        auth::Policies::default()
                    };
                    table.insert(
                        name.clone(),
                        Component::new("1.0.0", json_object(), policies),
                    );
                }
                Declared::Recipe(source) => {
                    let recipe = source.load()?;
                    if !recipe_names.insert(recipe.name.clone()) {
                        return Err(EmulatorError::Load(LoadError::new(
                            &source.describe(),
                            "ComponentName",
                            format!("component {} is loaded twice", recipe.name),
                        )));
                    }
                    if !order.contains(&recipe.name) {
                        order.push(recipe.name.clone());
                    }
                    table.insert(
                        recipe.name.clone(),
                        Component::new(
                            &recipe.version,
                            recipe.default_configuration.clone(),
                            recipe.policies.clone(),
                        ),
                    );
                }
            }
        }
        let components: Vec<(String, String)> = order
            .iter()
            .map(|name| {
                let token = tokens_by_name
                    .get(name)
                    .cloned()
                    .unwrap_or_else(random_token);
                (name.clone(), token)
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (name, token) in &components {
            if !seen.insert(token.clone()) {
                return Err(EmulatorError::Invalid(format!(
                    "component {name} reuses another component's auth token"
                )));
            }
        }
        let mut secrets_list = Vec::new();
        for file in &self.secrets_files {
            secrets_list.extend(secrets::load_file(file)?);
        }
        secrets_list.extend(self.secrets);
        let path = self.socket_path.unwrap_or_else(fresh_socket_path);
        let listener = bind(&path)?;
        let tokens = components
            .iter()
            .map(|(name, token)| (token.clone(), name.clone()))
            .collect();
        let state = Arc::new(State {
            flavor: self.flavor,
            stopping: AtomicBool::new(false),
            tokens: Mutex::new(tokens),
            connections: Mutex::new(HashMap::new()),
            calls: Mutex::new(std::collections::VecDeque::new()),
            scripts: Mutex::new(HashMap::new()),
            scripted_streams: Mutex::new(Vec::new()),
            pubsub: pubsub::Broker::default(),
            components: Mutex::new(table),
            configuration: configuration::Area::default(),
            lifecycle: lifecycle::Area::default(),
            cloud: iotcore::Cloud::default(),
            secrets: Mutex::new(secrets_list),
            shadows: shadows::Store::default(),
            deployments: deployment::Deployments::default(),
            client_devices: Mutex::new(clientdevices::ClientDeviceAnswers::default()),
            metrics: Mutex::new(Vec::new()),
            lifecycle_requests: Mutex::new(Vec::new()),
            control_topic: self.control_topic,
            faults: Arc::default(),
        });
        let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept_state = state.clone();
        let accept_workers = workers.clone();
        let accept = thread::Builder::new()
            .name("ggipc-emu-accept".into())
            .spawn(move || accept_loop(listener, accept_state, accept_workers))
            .map_err(|source| EmulatorError::Socket {
                path: path.clone(),
                source,
            })?;
        log::info!("emulator listening on {}", path.display());
        Ok(Emulator {
            state,
            path,
            components,
            accept: Some(accept),
            workers,
        })
    }
}

fn json_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A running local nucleus. See the [module docs](self).
///
/// Areas: local pub/sub; IoT Core MQTT against an in-process cloud stand-in
/// ([`Emulator::inject_cloud_message`], [`Emulator::cloud_published`],
/// [`Emulator::set_cloud_connected`]); configuration (get, update, subscribe, validate);
/// lifecycle (state, component updates with deferral, pause/resume); secrets; local
/// shadows; local deployments and components (the CLI operations); client device auth,
/// component metrics, token validation and debug passwords with configurable answers.
/// Calls are authorized against each component's `accessControl` policies like the
/// nucleus does. Any operation can be scripted with [`Emulator::set_reply`].
pub struct Emulator {
    state: Arc<State>,
    path: PathBuf,
    components: Vec<(String, String)>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("path", &self.path)
            .field("flavor", &self.state.flavor)
            .field(
                "components",
                &self.components.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator with the defaults (fresh socket path, one permissive component).
    ///
    /// # Errors
    /// As [`EmulatorBuilder::start`].
    pub fn start() -> Result<Emulator, EmulatorError> {
        Emulator::builder().start()
    }

    /// A builder.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// The socket path clients connect to.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// Which nucleus this emulator behaves like.
    pub fn flavor(&self) -> Flavor {
        self.state.flavor
    }

    /// The auth token of the first component.
    pub fn auth_token(&self) -> &str {
        &self.components[0].1
    }

    /// The name of the first component.
    pub fn component_name(&self) -> &str {
        &self.components[0].0
    }

    /// The auth token of the named component.
    pub fn token_of(&self, component: &str) -> Option<&str> {
        self.components
            .iter()
            .find(|(n, _)| n == component)
            .map(|(_, t)| t.as_str())
    }

    /// Names and tokens of the components that can connect, in declaration order.
    pub fn components(&self) -> &[(String, String)] {
        &self.components
    }

    /// A client builder pointed at this emulator as its first component.
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder()
            .socket_path(&self.path)
            .auth_token(self.auth_token())
    }

    /// Connects a client as the first component.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub fn connect(&self) -> crate::Result<Client> {
        self.client_builder().connect()
    }

    /// Connects a client as the named component.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`]; an unknown component is refused by the handshake.
    pub fn connect_as(&self, component: &str) -> crate::Result<Client> {
        let token = self.token_of(component).unwrap_or("unknown-component");
        self.client_builder().auth_token(token).connect()
    }

    /// Publishes on a local topic as if a component named `publisher` had.
    /// Returns how many subscriptions received it.
    pub fn publish(&self, publisher: &str, topic: &str, message: &PublishMessage) -> usize {
        self.state.pubsub.publish(publisher, topic, message)
    }

    /// Number of live local pub/sub subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.state.pubsub.len()
    }

    /// Number of connected clients.
    pub fn connection_count(&self) -> usize {
        self.state.connections.lock().len()
    }

    /// Calls served so far (the latest 10 000).
    pub fn calls(&self) -> Vec<CallRecord> {
        self.state.calls.lock().iter().cloned().collect()
    }

    /// The last lifecycle state of a component (`STARTING` until it reports one with
    /// `UpdateState`; changed by restart/stop requests and deployments).
    pub fn component_state(&self, component: &str) -> Option<LifecycleState> {
        self.state
            .components
            .lock()
            .get(component)
            .map(|c| c.state.clone())
    }

    /// A component's current configuration.
    pub fn configuration(&self, component: &str) -> Option<Value> {
        self.state
            .components
            .lock()
            .get(component)
            .map(|c| c.config.clone())
    }

    /// Pause, resume, restart and stop requests received so far.
    pub fn lifecycle_requests(&self) -> Vec<LifecycleRequest> {
        self.state.lifecycle_requests.lock().clone()
    }

    /// Deferrals received so far (`DeferComponentUpdate`).
    pub fn deferrals(&self) -> Vec<Deferral> {
        self.state.lifecycle.deferrals()
    }

    /// Metrics received so far (`PutComponentMetric`), with the reporting component.
    pub fn metrics(&self) -> Vec<(String, crate::model::Metric)> {
        self.state.metrics.lock().clone()
    }

    /// Delivers a message from the cloud to every matching `SubscribeToIoTCore` stream.
    /// Returns how many streams received it.
    pub fn inject_cloud_message(&self, topic: &str, payload: impl Into<Vec<u8>>) -> usize {
        self.state.cloud.deliver(topic, payload.into())
    }

    /// Messages components published to IoT Core so far (while the cloud was connected,
    /// or spooled and then sent on reconnection), oldest first.
    pub fn cloud_published(&self) -> Vec<CloudMessage> {
        self.state.cloud.published()
    }

    /// Connects or disconnects the cloud stand-in; `SubscribeToIoTCoreConnectionStatus`
    /// streams are told. While disconnected, publishes are spooled.
    pub fn set_cloud_connected(&self, connected: bool) {
        self.state.cloud.set_connected(connected);
    }

    /// Adds a secret for `GetSecretValue`.
    pub fn add_secret(&self, secret: Secret) {
        self.state.secrets.lock().push(secret);
    }

    /// The current document of a local shadow (`shadow_name` `""` = classic).
    pub fn shadow(&self, thing_name: &str, shadow_name: &str) -> Option<Value> {
        self.state.shadows.document(thing_name, shadow_name)
    }

    /// Sets what the client device auth operations answer.
    pub fn set_client_device_answers(&self, answers: ClientDeviceAnswers) {
        *self.state.client_devices.lock() = answers;
    }

    /// Starts a simulated deployment on a background thread: configuration validation,
    /// pre-update notifications honouring deferrals, the configuration merge, and
    /// post-update notifications. See [`SimulatedDeployment`].
    pub fn simulate_deployment(&self, deployment: SimulatedDeployment) -> DeploymentHandle {
        deployment::start(&self.state, deployment)
    }

    /// Answers every call of `operation` (short name) with `script` instead of the
    /// emulator's own semantics.
    pub fn set_reply(
        &self,
        operation: &str,
        script: impl Fn(&ScriptedRequest) -> Reply + Send + Sync + 'static,
    ) {
        self.state
            .scripts
            .lock()
            .insert(operation.to_owned(), Arc::new(script));
    }

    /// Removes the script of `operation`: the emulator's own semantics apply again.
    pub fn clear_reply(&self, operation: &str) {
        self.state.scripts.lock().remove(operation);
    }

    /// Sends one event (`model_type`, JSON `body`) on every open stream of `operation`
    /// that a [`Reply::Stream`] script opened. Returns how many streams received it.
    pub fn push_event(&self, operation: &str, model_type: &str, body: &Value) -> usize {
        let streams: Vec<_> = self
            .state
            .scripted_streams
            .lock()
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, s)| s.clone())
            .collect();
        let payload = bytes::Bytes::from(body.to_string().into_bytes());
        streams
            .iter()
            .filter(|s| s.send_event(model_type, payload.clone()))
            .count()
    }

    /// Closes every client connection (the server keeps listening).
    pub fn disconnect_all(&self) {
        let conns: Vec<_> = self.state.connections.lock().values().cloned().collect();
        for conn in conns {
            conn.kill();
        }
    }

    /// Stops serving: closes every connection, joins the threads and removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.state.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.disconnect_all();
        self.state.lifecycle.wake_all();
        self.state.configuration.wake_all();
        let deadline = Instant::now() + Duration::from_secs(2);
        let workers = std::mem::take(&mut *self.workers.lock());
        for worker in workers {
            while !worker.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

// ===== Fault injection and restarts (see fault.rs) =====================================

impl Emulator {
    /// Makes the server misbehave: `fault` applies to every request (or connection, for
    /// the connect faults) until [`clear_faults`](Emulator::clear_faults).
    pub fn inject(&self, fault: Fault) {
        self.state.faults.add(None, fault);
    }

    /// As [`inject`](Emulator::inject), for requests of one operation (short name) only.
    pub fn inject_for(&self, operation: &str, fault: Fault) {
        self.state.faults.add(Some(operation), fault);
    }

    /// How many requests (and connects) an injected fault has acted on so far.
    pub fn fault_hits(&self) -> u64 {
        self.state.faults.hits.load(Ordering::Relaxed)
    }

    /// Removes every injected fault (a stalled reader resumes).
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Simulates the nucleus going away: stops listening (the socket file is removed, so
    /// connecting fails) and closes every connection. Scripts, subscriptions of other
    /// connections and faults are kept. Idempotent.
    pub fn go_down(&mut self) {
        if self.state.faults.listener_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.disconnect_all();
        let _ = std::fs::remove_file(&self.path);
        log::info!("emulator: down");
    }

    /// Listens again on the same path after [`go_down`](Emulator::go_down). With
    /// `new_token`, the first component's auth token changes (as a restarted nucleus
    /// issues a new SVCUID); the old one is refused from then on.
    ///
    /// # Errors
    /// As [`EmulatorBuilder::start`].
    pub fn come_back(&mut self, new_token: Option<&str>) -> Result<(), EmulatorError> {
        if let Some(token) = new_token {
            let (name, old) = self.components[0].clone();
            let mut tokens = self.state.tokens.lock();
            tokens.remove(&old);
            tokens.insert(token.to_owned(), name);
            self.components[0].1 = token.to_owned();
        }
        if !self.state.faults.listener_down.load(Ordering::Acquire) {
            return Ok(());
        }
        let listener = bind(&self.path)?;
        self.state
            .faults
            .listener_down
            .store(false, Ordering::Release);
        let state = self.state.clone();
        let workers = self.workers.clone();
        let accept = thread::Builder::new()
            .name("ggipc-emu-accept".into())
            .spawn(move || accept_loop(listener, state, workers))
            .map_err(|source| EmulatorError::Socket {
                path: self.path.clone(),
                source,
            })?;
        self.accept = Some(accept);
        log::info!("emulator: listening again on {}", self.path.display());
        Ok(())
    }

    /// [`go_down`](Emulator::go_down) then [`come_back`](Emulator::come_back).
    ///
    /// # Errors
    /// As [`EmulatorBuilder::start`].
    pub fn restart(&mut self, new_token: Option<&str>) -> Result<(), EmulatorError> {
        self.go_down();
        self.come_back(new_token)
    }
}

// ===== End of fault injection =========================================================

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: UnixListener,
    state: Arc<State>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let next_id = AtomicU64::new(1);
    for socket in listener.incoming() {
        if state.stopping.load(Ordering::Acquire)
            || state.faults.listener_down.load(Ordering::Acquire)
        {
            break;
        }
        let Ok(socket) = socket else { continue };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let conn_state = state.clone();
        match thread::Builder::new()
            .name(format!("ggipc-emu-conn-{id}"))
            .spawn(move || server::serve(conn_state, socket, id))
        {
            Ok(handle) => {
                let mut workers = workers.lock();
                workers.retain(|w| !w.is_finished());
                workers.push(handle);
            }
            Err(e) => log::warn!("emulator: cannot start a connection thread: {e}"),
        }
    }
}

fn bind(path: &Path) -> Result<UnixListener, EmulatorError> {
    match UnixListener::bind(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(EmulatorError::InUse(path.to_owned()));
            }
            // A stale socket file from a killed emulator.
            std::fs::remove_file(path).map_err(|source| EmulatorError::Socket {
                path: path.to_owned(),
                source,
            })?;
            UnixListener::bind(path).map_err(|source| EmulatorError::Socket {
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(EmulatorError::Socket {
            path: path.to_owned(),
            source,
        }),
    }
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

fn random_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

fn fresh_socket_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "ggipc-{}-{n}-{:08x}.sock",
        std::process::id(),
        random_u64() as u32
    ))
}
