//! Configuring and starting an [`Emulator`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use parking_lot::Mutex;
use serde_json::Value;

use super::listener::{accept_loop, bind, fresh_socket_path};
use super::state::{Component, State};
use super::tokens::new_svcuid;
use super::{
    auth, clientdevices, configuration, deployment, iotcore, lifecycle, pubsub, recipe, secrets,
    shadows, Emulator, EmulatorError, Flavor, LoadError, RecipeFormat, Secret,
};

#[derive(Debug)]
pub(crate) enum Declared {
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

    /// Whether publishing to [`DEPLOY_TOPIC`](super::DEPLOY_TOPIC) triggers a simulated deployment (off by
    /// default). The message is a JSON [`SimulatedDeployment`](super::SimulatedDeployment) description (see
    /// [`SimulatedDeployment::from_json`](super::SimulatedDeployment::from_json)); the publish itself needs no policy. Meant for
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
        let components: Vec<(String, String)> = order
            .iter()
            .map(|name| {
                let token = tokens_by_name
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| new_svcuid(self.flavor));
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

pub(crate) fn json_object() -> Value {
    Value::Object(serde_json::Map::new())
}
