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
//! - **Outbound**: each connection has one bounded queue (default 1024 events, 4 MiB).
//!   Its reading thread writes the replies to what it has read before reading again;
//!   its writer thread writes the events queued meanwhile. An event that does not fit
//!   is dropped, counted ([`Emulator::dropped_events`]) and logged; an event always fits
//!   an empty queue.
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

mod builder;
mod common;
mod conn;
mod dispatch;
mod fault;
mod handlers;
mod handles;
mod listener;
mod registry;
mod server;
mod state;
mod stores;

pub use builder::{EmulatorBuilder, MAX_BUSY_POLL};
pub use common::auth::{authorize, Denied, Matching, Policies, Policy, PolicyProblem, Resource};
pub use common::errors::EmulatorError;
pub use common::flavor::Flavor;
pub use common::operations::LITE_OPERATIONS;
pub use common::recipe::{LoadError, Recipe, RecipeFormat};
pub use common::scripts::{Reply, ScriptedRequest};
pub use handlers::deployment::DeploymentHandle;
pub use handles::{CloudHandle, DeviceHandle, FaultsHandle, RecordsHandle, RepliesHandle};
use listener::{accept_loop, bind};
use state::State;
pub use state::{CallRecord, LifecycleRequest, DEPLOY_TOPIC};
pub use stores::clientdevices::ClientDeviceAnswers;
pub use stores::deployment::SimulatedDeployment;
pub use stores::faults::Fault;
pub use stores::iotcore::CloudMessage;
pub use stores::lifecycle::Deferral;
pub use stores::secrets::Secret;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::PublishMessage;
use crate::{Client, ClientBuilder};

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
