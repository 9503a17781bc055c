//! Configuring and starting an [`Emulator`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use crate::emulator::common::auth;
use crate::emulator::common::errors::EmulatorError;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::common::recipe;
use crate::emulator::common::recipe::LoadError;
use crate::emulator::common::recipe::RecipeFormat;
use crate::emulator::conn::admission::ConnectionSettings;
use crate::emulator::handlers::tokens::new_svcuid;
use crate::emulator::listener::{accept_loop, bind, fresh_socket_path};
use crate::emulator::state::State;
use crate::emulator::stores::components::Component;
use crate::emulator::stores::secrets::Secret;
use crate::emulator::stores::{
    clientdevices, configuration, deployment, iotcore, lifecycle, pubsub, secrets, shadows,
};
use crate::emulator::Emulator;

#[derive(Debug)]
pub(crate) enum Declared {
    Token {
        name: String,
        token: String,
        permissive: bool,
    },
    Recipe(recipe::RecipeSource),
}

/// The longest [`EmulatorBuilder::busy_poll`] accepted: a poll is a reading thread's
/// CPU, spent after each burst of requests, per connection.
pub const MAX_BUSY_POLL: Duration = Duration::from_millis(10);

/// Configures an [`Emulator`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::emulator::{Emulator, Secret};
/// use ggipc::model::GetSecretValueRequest;
///
/// let dir = std::env::temp_dir().join(format!("ggipc-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let emulator = Emulator::builder()
///     .socket_path(dir.join("ipc.socket"))
///     // .flavor(Flavor::Lite) would behave like nucleus lite 2.6.0, which has no secrets
///     .permissive_component("com.example.App", "app-token")
///     .component("com.example.NoGrants", "other-token") // no policies
///     .secret(Secret::string("api-key", "s3cr3t"))
///     .start()?;
/// assert_eq!(emulator.socket_path(), dir.join("ipc.socket"));
/// assert_eq!(emulator.token_of("com.example.NoGrants"), Some("other-token"));
///
/// let client = emulator.connect_as("com.example.App")?;
/// let secret = client.get_secret_value(GetSecretValueRequest::new("api-key"))?;
/// assert_eq!(secret.secret_value.as_string(), Some("s3cr3t"));
/// # drop(client); emulator.stop(); std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct EmulatorBuilder {
    socket_path: Option<PathBuf>,
    flavor: Flavor,
    declared: Vec<Declared>,
    secrets_files: Vec<PathBuf>,
    secrets: Vec<Secret>,
    control_topic: bool,
    settings: ConnectionSettings,
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

    /// Whether publishing to [`DEPLOY_TOPIC`](crate::emulator::DEPLOY_TOPIC) triggers a simulated deployment (off by
    /// default). The message is a JSON [`SimulatedDeployment`](crate::emulator::SimulatedDeployment) description (see
    /// [`SimulatedDeployment::from_json`](crate::emulator::SimulatedDeployment::from_json)); the publish itself needs no policy. Meant for
    /// tests written in other languages against the `ggipc-emulator` binary.
    pub fn control_topic(mut self, enabled: bool) -> Self {
        self.control_topic = enabled;
        self
    }

    /// The most connections served at once, handshaking or not (default 256; at least
    /// 1). When the cap is reached, the oldest connection that has not sent its CONNECT
    /// yet is closed to admit the new one; when all are authenticated, the new one is
    /// refused. Both are logged at warn.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ggipc::emulator::Emulator;
    ///
    /// let emulator = Emulator::builder()
    ///     .max_connections(16)
    ///     .handshake_timeout(Duration::from_secs(2))
    ///     .write_timeout(Duration::from_secs(2))
    ///     .outbound_queue(256, 1024 * 1024)
    ///     .start()?;
    /// let client = emulator.connect()?;
    /// # drop(client);
    /// # Ok(()) }
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.settings.max_connections = max;
        self
    }

    /// How long a new connection may take to send a whole CONNECT (default 5 s; more
    /// than zero). A connection that has not is closed, logged at warn. Before the
    /// CONNECT is accepted, frames are limited to 16 KiB (the flavour's limit when
    /// smaller).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// How long the emulator may take to write one whole frame to a client (default 5 s;
    /// more than zero): one total deadline per frame, not restarted by partial writes. A
    /// client that does not read enough to take a frame within it is disconnected,
    /// logged at warn.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// Bounds each connection's outbound queue (default 1024 events, 4 MiB; at least 1
    /// event). An event pushed to a full queue is dropped, counted
    /// ([`Emulator::dropped_events`](crate::emulator::Emulator::dropped_events)) and logged;
    /// replies are never dropped (the connection stops reading requests while its queue
    /// holds `max_bytes` or more). An event always fits an empty queue.
    pub fn outbound_queue(mut self, max_events: usize, max_bytes: usize) -> Self {
        self.settings.queue_events = max_events;
        self.settings.queue_bytes = max_bytes;
        self
    }

    /// The most streams (subscriptions) open at once on one connection (default 65,536;
    /// at least 1). A streaming request beyond it is answered with a `ServiceError` and
    /// logged at warn; it bounds the memory of a connection's stream table.
    pub fn max_streams_per_connection(mut self, max: usize) -> Self {
        self.settings.max_streams = max;
        self
    }

    /// How long a connection's reading thread keeps polling its socket, once it has
    /// served what it read, before it sleeps in a blocking read (default zero: it sleeps
    /// at once, as a nucleus does; at most [`MAX_BUSY_POLL`]). The `ggipc-emulator`
    /// binary polls for 50 µs unless told otherwise (`--busy-poll`); an embedded
    /// emulator does not, as it shares its process's CPUs with the tests that drive it,
    /// often several emulators at once.
    ///
    /// A request that arrives within it is read at once, without waking a sleeping
    /// thread. That wake-up is much of a round trip where a CPU with nothing to run is
    /// halted and slow to wake, as on virtual machines: on a 2-vCPU one, 50 µs raised
    /// one thread's sequential publishes from 15–19k to 27–32k a second and 8 threads'
    /// from 89–93k to 116–132k (`BENCHMARKS.md`). For a load test of a client, it keeps
    /// the emulator's own wake-ups out of the figures. The price is CPU: after each
    /// burst of requests, up to this long on each connection, in non-blocking reads of
    /// the socket (the thread yields to any other that is ready to run between them).
    /// While it polls, the socket is non-blocking for the connection's writer thread too,
    /// which then retries a write that would block until the poll ends.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ggipc::emulator::Emulator;
    ///
    /// let emulator = Emulator::builder()
    ///     .busy_poll(Duration::from_micros(50))
    ///     .start()?;
    /// let client = emulator.connect()?;
    /// # drop(client);
    /// # Ok(()) }
    /// ```
    pub fn busy_poll(mut self, poll: Duration) -> Self {
        self.settings.busy_poll = poll;
        self
    }

    /// Binds the socket and starts serving.
    ///
    /// # Errors
    /// [`EmulatorError::Load`] when a recipe or secrets file is malformed,
    /// [`EmulatorError::Socket`] when the socket cannot be created,
    /// [`EmulatorError::InUse`] when a live server already listens on the path.
    pub fn start(self) -> Result<Emulator, EmulatorError> {
        let (components, table) = self.component_table()?;
        check_settings(&self.settings)?;
        let settings = self.settings;
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
        let state = Arc::new(Self::new_state(
            self.flavor,
            self.control_topic,
            tokens,
            table,
            secrets_list,
            settings,
        ));
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
        log::info!("listening on {}", path.display());
        Ok(Emulator {
            state,
            path,
            components,
            accept: Some(accept),
            workers,
        })
    }

    /// The declared components in order with their tokens, and their table entries.
    #[allow(clippy::type_complexity)]
    fn component_table(
        &self,
    ) -> Result<(Vec<(String, String)>, BTreeMap<String, Component>), EmulatorError> {
        let mut order: Vec<String> = Vec::new();
        let mut table: BTreeMap<String, Component> = BTreeMap::new();
        let mut tokens_by_name: HashMap<String, String> = HashMap::new();
        let mut recipe_names = std::collections::HashSet::new();
        if self.declared.is_empty() {
            order.push("com.example.Component".into());
            tokens_by_name.insert("com.example.Component".into(), new_svcuid(self.flavor));
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
        let components = tokens_in_order(&order, &tokens_by_name, self.flavor)?;
        Ok((components, table))
    }

    /// The shared state of a new emulator.
    #[allow(clippy::too_many_arguments)]
    fn new_state(
        flavor: Flavor,
        control_topic: bool,
        tokens: HashMap<String, String>,
        table: BTreeMap<String, Component>,
        secrets_list: Vec<Secret>,
        settings: ConnectionSettings,
    ) -> State {
        State {
            flavor,
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
            control_topic,
            faults: Arc::default(),
            settings,
            admission: Default::default(),
            next_connection_id: std::sync::atomic::AtomicU64::new(1),
            dropped_events: Arc::default(),
        }
    }
}

/// Refuses settings that would make the emulator useless.
fn check_settings(settings: &ConnectionSettings) -> Result<(), EmulatorError> {
    if settings.max_connections == 0 {
        return Err(EmulatorError::Invalid(
            "max_connections must be at least 1".into(),
        ));
    }
    if settings.handshake_timeout.is_zero() || settings.write_timeout.is_zero() {
        return Err(EmulatorError::Invalid(
            "the handshake and write timeouts must be more than zero".into(),
        ));
    }
    if settings.max_streams == 0 {
        return Err(EmulatorError::Invalid(
            "max_streams_per_connection must be at least 1".into(),
        ));
    }
    if settings.queue_events == 0 {
        return Err(EmulatorError::Invalid(
            "the outbound queue must hold at least one event".into(),
        ));
    }
    if settings.busy_poll > MAX_BUSY_POLL {
        return Err(EmulatorError::Invalid(format!(
            "busy_poll must be at most {MAX_BUSY_POLL:?}"
        )));
    }
    Ok(())
}

pub(crate) fn json_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Each component's name with its token (declared, else a fresh one), in declaration order;
/// two components may not share a token.
fn tokens_in_order(
    order: &[String],
    tokens_by_name: &HashMap<String, String>,
    flavor: Flavor,
) -> Result<Vec<(String, String)>, EmulatorError> {
    let components: Vec<(String, String)> = order
        .iter()
        .map(|name| {
            let token = tokens_by_name
                .get(name)
                .cloned()
                .unwrap_or_else(|| new_svcuid(flavor));
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
    Ok(components)
}
