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
//! # Hostile and buggy components
//! The emulator stays up and keeps serving well-behaved components whatever the others do
//! (each limit is an [`EmulatorBuilder`] setting and a `ggipc-emulator` flag):
//! - **Handshake**: a connection must send its whole CONNECT within the handshake
//!   deadline (default 5 s); before it, a frame may be at most 16 KiB (or the flavour's
//!   limit if smaller). Refusals are logged at warn, naming the connection and the reason.
//! - **Connections**: at most `max_connections` (default 256) at once; at the cap the
//!   oldest connection still without a CONNECT is closed to admit the new one, otherwise
//!   the new one is refused (logged). `accept` errors back off and are logged once.
//! - **Outbound**: each connection has one bounded queue (default 1024 events, 4 MiB)
//!   drained by its writer thread. An event that does not fit is dropped, counted
//!   ([`Emulator::dropped_events`]) and logged; an event always fits an empty queue.
//!   Replies are never dropped: the connection stops reading requests while its queue is
//!   full. A component's publish therefore never waits on a subscriber.
//! - **Writes**: each frame has one total write deadline (default 5 s), not restarted by
//!   partial writes; a client that does not take a frame within it is disconnected.
//! - **Memory per connection** is bounded by: the inbound buffer (at most the flavour's
//!   frame limit, 16 MiB for the nucleus and 10,012 bytes for lite; 16 KiB before the
//!   CONNECT), the outbound queue's byte bound plus one frame, the frame being written,
//!   its streams (at most `max_streams_per_connection`, default 65,536, a few hundred
//!   bytes each) and two thread stacks (reader and writer); one descriptor.
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
mod builder;
mod cli;
mod clientdevices;
mod configuration;
mod deployment;
mod fault;
mod handles;
mod iotcore;
mod lifecycle;
mod listener;
mod metrics;
mod operations;
mod outbound;
mod pubsub;
mod recipe;
mod registry;
mod secrets;
mod server;
mod shadows;
mod state;
mod texts;
mod tokens;
mod topic;
mod wire;

pub use auth::{authorize, Denied, Matching, Policies, Policy, PolicyProblem, Resource};
pub use builder::EmulatorBuilder;
pub use clientdevices::ClientDeviceAnswers;
pub use deployment::{DeploymentHandle, SimulatedDeployment};
pub use iotcore::CloudMessage;
pub use lifecycle::Deferral;
use listener::{accept_loop, bind};
pub(crate) use listener::{random_token, random_u64};
pub use operations::LITE_OPERATIONS;
pub use recipe::{LoadError, Recipe, RecipeFormat};
pub use secrets::Secret;
pub(crate) use state::*;
pub use state::{LifecycleRequest, DEPLOY_TOPIC};

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::codec::Limits;
use crate::model::{IpcError, PublishMessage};
use crate::{Client, ClientBuilder};
pub use fault::Fault;
pub use handles::{CloudHandle, DeviceHandle, FaultsHandle, RecordsHandle, RepliesHandle};

/// Which nucleus the emulator behaves like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavor {
    /// The Java Greengrass nucleus (the default).
    #[default]
    Nucleus,
    /// Greengrass nucleus lite 2.6.0: frames of at most 10,012 bytes in (10,000 after the
    /// prelude) and 10,000 out, no TERMINATE on responses, `_message`/`_errorCode` error
    /// bodies, a refused connect closes without an ack, a PING closes the connection,
    /// `receiveMode` ignored, `+`/`#` accepted in a PublishToTopic topic, a stale
    /// UpdateConfiguration timestamp answered with success (the value kept), 16-character
    /// base64 SVCUIDs, and only the operations in [`LITE_OPERATIONS`].
    Lite,
}

impl Flavor {
    /// The frame limits this flavour enforces on the frames it sends.
    pub fn limits(self) -> Limits {
        match self {
            Flavor::Nucleus => Limits::default(),
            Flavor::Lite => Limits::with_max_frame_size(10_000),
        }
    }

    /// The frame limits this flavour enforces on the frames it receives. Nucleus lite reads
    /// the 12-byte prelude, then the rest of the frame into its 10,000-byte IPC buffer, so
    /// it accepts a whole frame of up to 10,012 bytes (`ipc_server.c:461-481` and
    /// `GGL_IPC_MAX_MSG_LEN` in `ipc_server.h:13-15`, aws-greengrass-lite tag v2.6.0),
    /// while its responses fit in a 10,000-byte buffer (`ipc_server.c:47`).
    pub fn inbound_limits(self) -> Limits {
        match self {
            Flavor::Nucleus => Limits::default(),
            Flavor::Lite => Limits::with_max_frame_size(10_000 + 12),
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
    /// pushes events with [`RepliesHandle::push_event`].
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

/// A running local nucleus. See the [module docs](self).
///
/// Areas: local pub/sub; IoT Core MQTT against an in-process cloud stand-in
/// ([`CloudHandle::inject_message`], [`CloudHandle::published`],
/// [`CloudHandle::set_connected`]); configuration (get, update, subscribe, validate);
/// lifecycle (state, component updates with deferral, pause/resume); secrets; local
/// shadows; local deployments and components (the CLI operations); client device auth,
/// component metrics, token validation and debug passwords with configurable answers.
/// Calls are authorized against each component's `accessControl` policies like the
/// nucleus does. Any operation can be scripted with [`RepliesHandle::set`].
///
/// A test drives the component through the emulator and checks what it did:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::emulator::Emulator;
/// use ggipc::model::{PublishMessage, ReportedLifecycleState, LifecycleState};
/// use ggipc::model::{SubscribeToTopicRequest, SubscriptionResponseMessage, UpdateStateRequest};
/// use ggipc::serde_json::json;
///
/// let emulator = Emulator::builder()
///     .permissive_component("com.example.App", "app-token")
///     .start()?;
/// let client = emulator.connect_as("com.example.App")?;
///
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let _sub = client.subscribe_to_topic(
///     SubscribeToTopicRequest::new("commands"),
///     move |e: SubscriptionResponseMessage| { let _ = tx.send(e.json().cloned()); },
/// )?;
/// // The test publishes as another component would:
/// assert_eq!(emulator.publish("com.example.Controller", "commands", &PublishMessage::json(json!("start"))), 1);
/// assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, Some(json!("start")));
///
/// client.update_state(UpdateStateRequest::new(ReportedLifecycleState::Running))?;
/// assert_eq!(emulator.device().component_state("com.example.App"), Some(LifecycleState::Running));
///
/// let operations: Vec<_> = emulator.records().calls().into_iter().map(|c| c.operation).collect();
/// assert_eq!(operations, ["SubscribeToTopic", "UpdateState"]);
/// assert_eq!(emulator.connection_count(), 1);
/// # Ok(()) }
/// ```
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
    ///
    /// Unlike a component's `PublishToTopic`, which never waits, this waits for room in a
    /// subscriber's full outbound queue (up to the write deadline per subscription, see
    /// [`EmulatorBuilder::write_timeout`]) before dropping the event, so that a test can
    /// flood a client without the emulator dropping events.
    pub fn publish(&self, publisher: &str, topic: &str, message: &PublishMessage) -> usize {
        let wait = self.state.settings.write_timeout;
        self.state
            .pubsub
            .deliver(publisher, topic, message, Some(wait))
    }

    /// Number of live local pub/sub subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.state.pubsub.len()
    }

    /// Events dropped so far because a connection's outbound queue was full (see
    /// [`EmulatorBuilder::outbound_queue`]); each run of drops is also logged at warn.
    pub fn dropped_events(&self) -> u64 {
        self.state.dropped_events.load(Ordering::Relaxed)
    }

    /// Number of connected clients.
    pub fn connection_count(&self) -> usize {
        self.state.connections.lock().len()
    }

    /// The device's state: component states and configurations, secrets, shadows,
    /// client device answers, simulated deployments.
    pub fn device(&self) -> DeviceHandle<'_> {
        DeviceHandle(self)
    }

    /// The AWS IoT Core stand-in.
    pub fn cloud(&self) -> CloudHandle<'_> {
        CloudHandle(self)
    }

    /// What components asked for: calls, lifecycle requests, deferrals, metrics.
    pub fn records(&self) -> RecordsHandle<'_> {
        RecordsHandle(self)
    }

    /// Scripted replies that replace the emulator's own semantics.
    pub fn replies(&self) -> RepliesHandle<'_> {
        RepliesHandle(self)
    }

    /// Fault injection.
    pub fn faults(&self) -> FaultsHandle<'_> {
        FaultsHandle(self)
    }

    /// Closes every client connection, including those still in their handshake (the
    /// server keeps listening).
    pub fn disconnect_all(&self) {
        self.state.admission.close_pending();
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

// ===== Restarts (see fault.rs) ========================================================

impl Emulator {
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
        log::info!("stopped: connections closed, socket removed");
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
        log::info!("listening again on {}", self.path.display());
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

// ===== End of restarts ================================================================

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether a socket read or write that failed this way may simply be tried again: a
/// timeout that only bounds one wait, or an interrupted call.
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
