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

mod fault;
mod pubsub;
mod server;
mod topic;

use std::collections::HashMap;
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
use crate::model::{IpcError, PublishMessage};
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

/// The shared state of a running emulator.
pub(crate) struct State {
    flavor: Flavor,
    stopping: AtomicBool,
    tokens: Mutex<HashMap<String, String>>,
    connections: Mutex<HashMap<u64, Arc<ServerConn>>>,
    calls: Mutex<Vec<CallRecord>>,
    scripts: Mutex<HashMap<String, Script>>,
    scripted_streams: Mutex<Vec<(String, server::StreamRef)>>,
    pubsub: pubsub::Broker,
    /// Fault injection (see fault.rs).
    faults: Arc<fault::Faults>,
}

impl State {
    fn component_for_token(&self, token: &str) -> Option<String> {
        self.tokens.lock().get(token).cloned()
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
            calls.remove(0);
        }
        calls.push(record);
    }

    /// Runs the operation; `None` = the operation is unknown.
    fn handle(&self, ctx: &CallContext<'_>, operation: &str, request: Value) -> Option<Outcome> {
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
                    }
                }
            });
        }
        Some(match operation {
            "PublishToTopic" => pubsub::publish_to_topic(ctx, request),
            "SubscribeToTopic" => pubsub::subscribe_to_topic(ctx, request),
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

fn modeled_error(shape: &str, message: &str) -> IpcError {
    let body = serde_json::json!({ "message": message }).to_string();
    IpcError::from_application_error(
        Some(&format!("aws.greengrass#{shape}")),
        Some(crate::rpc::CONTENT_TYPE_JSON),
        body.as_bytes(),
    )
}

/// Configures an [`Emulator`].
#[derive(Debug, Default)]
#[must_use]
pub struct EmulatorBuilder {
    socket_path: Option<PathBuf>,
    flavor: Flavor,
    components: Vec<(String, String)>,
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

    /// Adds a component that connects with `auth_token`. Without any, one component
    /// named `com.example.Component` with a random token is created.
    pub fn component(mut self, name: impl Into<String>, auth_token: impl Into<String>) -> Self {
        self.components.push((name.into(), auth_token.into()));
        self
    }

    /// Binds the socket and starts serving.
    ///
    /// # Errors
    /// [`EmulatorError::Socket`] when the socket cannot be created,
    /// [`EmulatorError::InUse`] when a live server already listens on the path.
    pub fn start(self) -> Result<Emulator, EmulatorError> {
        let path = self.socket_path.unwrap_or_else(fresh_socket_path);
        let listener = bind(&path)?;
        let mut components = self.components;
        if components.is_empty() {
            components.push(("com.example.Component".into(), random_token()));
        }
        let tokens = components
            .iter()
            .map(|(name, token)| (token.clone(), name.clone()))
            .collect();
        let state = Arc::new(State {
            flavor: self.flavor,
            stopping: AtomicBool::new(false),
            tokens: Mutex::new(tokens),
            connections: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            scripts: Mutex::new(HashMap::new()),
            scripted_streams: Mutex::new(Vec::new()),
            pubsub: pubsub::Broker::default(),
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

/// A running local nucleus. See the [module docs](self).
///
/// Areas implemented so far: local pub/sub (PublishToTopic, SubscribeToTopic with `+`/`#`
/// filters and receive modes, JSON and binary). Any operation can be scripted with
/// [`Emulator::set_reply`]; other operations answer like a nucleus that does not know
/// them ("Unsupported Operation").
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
    /// Starts an emulator with the defaults (fresh socket path, one component).
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

    /// The auth token of the first component.
    pub fn auth_token(&self) -> &str {
        &self.components[0].1
    }

    /// The auth token of the named component.
    pub fn token_of(&self, component: &str) -> Option<&str> {
        self.components
            .iter()
            .find(|(n, _)| n == component)
            .map(|(_, t)| t.as_str())
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
        self.state.calls.lock().clone()
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
