//! A blocking, runtime-free client for the AWS IoT Greengrass Core IPC service, and a
//! local nucleus emulator to test components without a device.
//!
//! Greengrass components talk to the nucleus over a Unix socket with eventstream RPC.
//! `ggipc` gives every operation of the service as a plain blocking method, callable
//! from any thread, with a deadline; subscription handlers run on a small worker pool,
//! never on the thread that reads the socket, so a handler may block or call the client.
//!
//! # Quick start
//!
//! On a device, [`Client::connect`] reads `AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`
//! and `SVCUID`. Here the embedded [`emulator`] stands in for the nucleus:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
//!
//! let emulator = ggipc::emulator::Emulator::start()?;
//! let client = emulator.connect()?; // on a device: ggipc::Client::connect()?
//!
//! let (tx, rx) = crossbeam_channel::unbounded();
//! let _sub = client.subscribe_to_topic(SubscribeToTopicRequest::new("hello"), move |e: SubscriptionResponseMessage| {
//!     tx.send(e.json().cloned()).unwrap();
//! })?;
//! client.publish_to_topic(PublishToTopicRequest::json("hello", serde_json::json!({"n": 1})))?;
//! assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, Some(serde_json::json!({"n": 1})));
//! # Ok(()) }
//! ```
//!
//! # Threading model
//!
//! * One **I/O thread** (`ggipc-io`) owns reading the socket: it decodes frames, answers
//!   PING, completes pending calls and queues subscription events. It never runs user
//!   code and never waits on a handler.
//! * **Writes** happen on the calling thread: the stream id is allocated and the whole
//!   frame written under one short lock, so ids reach the wire in order and a call costs
//!   no extra thread hop.
//! * **Handlers** run on a pool of `handler_threads` workers (default 2). Each
//!   subscription's events run in order and never concurrently; different subscriptions
//!   run in parallel. A handler may block and may call any client method.
//! * Each subscription has a **bounded queue** (default 1024 events / 4 MiB). When a
//!   handler falls behind, new events are dropped rather than stalling the I/O thread;
//!   drops are counted ([`Subscription::stats`]), logged at warn and reported to
//!   [`StreamHandler::on_events_dropped`].
//!
//! # Timeouts and errors
//!
//! Every call has one deadline covering the write and the response
//! ([`ClientBuilder::request_timeout`], or per call with the `_with` variant and
//! [`CallOptions`]). A timed-out call frees its slot; a late reply is discarded. Errors are
//! one [`Error`] enum: [`Error::Service`] carries the service's typed error
//! ([`model::IpcError`], e.g. `UnauthorizedError`), [`Error::Timeout`] says which phase,
//! [`Error::Closed`] says why the connection ended. When the connection dies, every
//! pending call fails at once and every subscription gets `on_stream_error` then
//! `on_stream_closed`.
//!
//! # Shutdown
//!
//! [`Client`] is a cheap handle. The connection closes when [`Client::close`] is called or
//! the last handle is dropped; both return within the shutdown timeout (default 1 s),
//! also from inside a handler. Dropping a [`Subscription`] closes it.
//!
//! # Reconnecting (opt-in)
//!
//! By default a lost connection stays lost: calls fail with [`Error::Closed`] and the
//! component decides what to do. With [`ClientBuilder::reconnect`] and a
//! [`ReconnectPolicy`] (jittered exponential backoff, optional attempt limit), a
//! `ggipc-reconnect` thread reconnects when the nucleus comes back, taking a fresh token
//! from [`ClientBuilder::auth_token_source`] or `$SVCUID`, and re-subscribes every live
//! subscription with its original request: each handler gets
//! [`StreamHandler::on_stream_interrupted`] then [`StreamHandler::on_stream_resumed`]
//! (events published in between are missed). Calls made while disconnected fail fast
//! with [`Error::Disconnected`], or wait for the reconnect up to their deadline with
//! [`CallOptions::wait_for_reconnect`].
//!
//! # Logging
//!
//! Through the `log` facade: `info` for connect and close, `warn` for dropped events and
//! lost connections, `error` for a handler panic, `debug` for each call's operation and
//! stream id. The auth token and payloads are never logged.
//!
//! # Operations and the authorization they need
//!
//! Every operation of the service (35) is a method on [`Client`]; each has a `_with`
//! variant taking [`CallOptions`]. A component's recipe must grant the listed IPC service
//! in its `accessControl` (see `README.md` for a recipe); "none" means the nucleus does
//! not check a policy.
//!
//! | Area | Method | Kind | Authorization (`accessControl` service on resource) |
//! |---|---|---|---|
//! | pubsub | [`publish_to_topic`](Client::publish_to_topic) | call | `aws.greengrass.ipc.pubsub` on `{topic}` |
//! | pubsub | [`subscribe_to_topic`](Client::subscribe_to_topic) | stream | `aws.greengrass.ipc.pubsub` on `{topic}` |
//! | iotcore | [`publish_to_iot_core`](Client::publish_to_iot_core) | call | `aws.greengrass.ipc.mqttproxy` on `{topicName}` |
//! | iotcore | [`subscribe_to_iot_core`](Client::subscribe_to_iot_core) | stream | `aws.greengrass.ipc.mqttproxy` on `{topicName}` |
//! | iotcore | [`subscribe_to_iot_core_connection_status`](Client::subscribe_to_iot_core_connection_status) | stream | none |
//! | lifecycle | [`update_state`](Client::update_state) | call | none |
//! | lifecycle | [`subscribe_to_component_updates`](Client::subscribe_to_component_updates) | stream | none |
//! | lifecycle | [`defer_component_update`](Client::defer_component_update) | call | none |
//! | lifecycle | [`pause_component`](Client::pause_component) | call | `aws.greengrass.ipc.lifecycle` on `{componentName}` |
//! | lifecycle | [`resume_component`](Client::resume_component) | call | `aws.greengrass.ipc.lifecycle` on `{componentName}` |
//! | configuration | [`get_configuration`](Client::get_configuration) | call | none |
//! | configuration | [`update_configuration`](Client::update_configuration) | call | none |
//! | configuration | [`subscribe_to_configuration_update`](Client::subscribe_to_configuration_update) | stream | none |
//! | configuration | [`subscribe_to_validate_configuration_updates`](Client::subscribe_to_validate_configuration_updates) | stream | none |
//! | configuration | [`send_configuration_validity_report`](Client::send_configuration_validity_report) | call | none |
//! | secrets | [`get_secret_value`](Client::get_secret_value) | call | `aws.greengrass.SecretManager` on `{arn of secretId}` |
//! | shadows | [`get_thing_shadow`](Client::get_thing_shadow) | call | `aws.greengrass.ShadowManager` on `$aws/things/{thingName}/shadow` |
//! | shadows | [`update_thing_shadow`](Client::update_thing_shadow) | call | `aws.greengrass.ShadowManager` on `$aws/things/{thingName}/shadow` |
//! | shadows | [`delete_thing_shadow`](Client::delete_thing_shadow) | call | `aws.greengrass.ShadowManager` on `$aws/things/{thingName}/shadow` |
//! | shadows | [`list_named_shadows_for_thing`](Client::list_named_shadows_for_thing) | call | `aws.greengrass.ShadowManager` on `{thingName}` |
//! | cli | [`create_local_deployment`](Client::create_local_deployment) | call | `aws.greengrass.Cli` on `*` |
//! | cli | [`cancel_local_deployment`](Client::cancel_local_deployment) | call | `aws.greengrass.Cli` on `*` |
//! | cli | [`get_local_deployment_status`](Client::get_local_deployment_status) | call | `aws.greengrass.Cli` on `{deploymentId}` |
//! | cli | [`list_local_deployments`](Client::list_local_deployments) | call | `aws.greengrass.Cli` on `*` |
//! | cli | [`list_components`](Client::list_components) | call | `aws.greengrass.Cli` on `*` |
//! | cli | [`get_component_details`](Client::get_component_details) | call | `aws.greengrass.Cli` on `{componentName}` |
//! | cli | [`restart_component`](Client::restart_component) | call | `aws.greengrass.Cli` on `{componentName}` |
//! | cli | [`stop_component`](Client::stop_component) | call | `aws.greengrass.Cli` on `{componentName}` |
//! | cli | [`create_debug_password`](Client::create_debug_password) | call | `aws.greengrass.Cli` on `*` |
//! | clientdevices | [`verify_client_device_identity`](Client::verify_client_device_identity) | call | `aws.greengrass.clientdevices.Auth` on `*` |
//! | clientdevices | [`get_client_device_auth_token`](Client::get_client_device_auth_token) | call | `aws.greengrass.clientdevices.Auth` on `*` |
//! | clientdevices | [`authorize_client_device_action`](Client::authorize_client_device_action) | call | `aws.greengrass.clientdevices.Auth` on `*` |
//! | clientdevices | [`subscribe_to_certificate_updates`](Client::subscribe_to_certificate_updates) | stream | `aws.greengrass.clientdevices.Auth` on `*` |
//! | metrics | [`put_component_metric`](Client::put_component_metric) | call | `aws.greengrass.ipc.componentmetric` on `{metrics[i].name}` (caller name must start with `aws.`) |
//! | tokens | [`validate_authorization_token`](Client::validate_authorization_token) | call | only `aws.greengrass.StreamManager` |
//!
//! Servers newer than this crate: [`Client::call_json`] calls any request/response
//! operation by name with JSON in and out.
//!
//! # Cargo features
//!
//! * `emulator`: the [`emulator`] module and the `ggipc-emulator` binary. Not needed on a
//!   device; its API is outside the semver guarantees of the client. Implies `internals`.
//! * `internals`: makes the wire layers `ggipc::codec` (frames) and `ggipc::rpc`
//!   (eventstream-RPC messages) public, for the emulator, this crate's tests, benches and
//!   fuzzers. Hidden from the docs and **outside the semver guarantees**: do not depend
//!   on it. The errors they produce are public without it ([`CodecError`],
//!   [`ProtocolError`], [`MessageType`]).
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

// The wire layers are public only with the `internals` feature (for the emulator, the
// tests, the benches and the fuzzers), outside the semver guarantees; without it they
// are crate-private, and their `pub` items are public only in that sense.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod codec;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub, dead_code, unused_imports)]
mod codec;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod rpc;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub, dead_code, unused_imports)]
mod rpc;

pub mod model;

mod client;
mod config;
mod connection;
mod deadline;
mod dispatch;
mod error;
mod link;
mod operations;
pub mod pending;
mod random;
mod subscription;

#[cfg(feature = "emulator")]
pub mod emulator;

pub use client::Client;
pub use codec::CodecError;
pub use config::{CallOptions, ClientBuilder, ReconnectPolicy, AUTH_TOKEN_ENV, SOCKET_PATH_ENV};
pub use error::{CloseReason, Error, Result, TimeoutKind};
pub use pending::Pending;
pub use rpc::{MessageType, ProtocolError};
pub use subscription::{StreamControl, StreamHandler, Subscription, SubscriptionStats};

/// The README's Rust snippets, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
