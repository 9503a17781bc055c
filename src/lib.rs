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
//! use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest};
//! use ggipc::StreamItem;
//!
//! let emulator = ggipc::emulator::Emulator::start()?;
//! let client = emulator.connect()?; // on a device: ggipc::Client::connect()?
//!
//! let hello = client.pull(SubscribeToTopicRequest::new("hello"))?;
//! client.publish_to_topic(PublishToTopicRequest::json("hello", serde_json::json!({"n": 1})))?;
//! match hello.recv_timeout(Duration::from_secs(5))? {
//!     StreamItem::Event(message) => assert_eq!(message.json(), Some(&serde_json::json!({"n": 1}))),
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! A subscription is either pulled ([`Client::pull`] → [`PullSubscription`]: `recv`,
//! `recv_timeout`, `try_recv`, a `for` loop, `select!`; its last item says why it ended)
//! or pushed to a handler ([`StreamHandler`], or a closure, on the handler pool). A
//! component's `main` ends with [`Client::wait_for_shutdown`], which returns on SIGTERM
//! (how the nucleus stops a component) or when the connection is lost for good.
//!
//! # Testing your component
//!
//! The [`emulator`] module (feature `emulator`, e.g. as a dev-dependency:
//! `ggipc = { ..., features = ["emulator"] }`) runs a local nucleus in the test process,
//! on a real Unix socket. Give it your component's recipe (YAML or JSON text, or a file
//! with [`EmulatorBuilder::recipe_file`](emulator::EmulatorBuilder::recipe_file)): it
//! enforces the recipe's `accessControl` like the nucleus does, so a test shows both what
//! the component may do and what it is refused. What components publish to AWS IoT Core
//! lands in a cloud stand-in ([`Emulator::cloud`](emulator::Emulator::cloud)), and every
//! call is recorded ([`Emulator::records`](emulator::Emulator::records)).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::emulator::{Emulator, RecipeFormat};
//! use ggipc::model::{IpcError, PublishToIoTCoreRequest, PublishToTopicRequest, Qos};
//! use ggipc::serde_json::json;
//! use ggipc::Error;
//!
//! const RECIPE: &str = r#"
//! RecipeFormatVersion: "2020-01-25"
//! ComponentName: com.example.Sensor
//! ComponentVersion: "1.0.0"
//! ComponentConfiguration:
//!   DefaultConfiguration:
//!     accessControl:
//!       aws.greengrass.ipc.pubsub:
//!         com.example.Sensor:pubsub:1:
//!           operations: [aws.greengrass#PublishToTopic]
//!           resources: [sensors/status]
//!       aws.greengrass.ipc.mqttproxy:
//!         com.example.Sensor:mqttproxy:1:
//!           operations: [aws.greengrass#PublishToIoTCore]
//!           resources: [factory/line1/telemetry]
//! "#;
//!
//! let emu = Emulator::builder().recipe_str(RECIPE, RecipeFormat::Yaml).start()?;
//! let client = emu.connect_as("com.example.Sensor")?; // the component under test would
//!                                                     // use emu.client_builder()
//!
//! // Granted by the recipe:
//! client.publish_to_topic(PublishToTopicRequest::json("sensors/status", json!({"ok": true})))?;
//! client.publish_to_iot_core(PublishToIoTCoreRequest::binary(
//!     "factory/line1/telemetry",
//!     Qos::AtLeastOnce,
//!     b"21.5".to_vec(),
//! ))?;
//!
//! // Not granted: the call fails with the service's UnauthorizedError.
//! let denied = client.publish_to_topic(PublishToTopicRequest::json("sensors/other", json!(1)));
//! match denied {
//!     Err(Error::Service(e)) => assert!(matches!(*e, IpcError::Unauthorized(_))),
//!     other => panic!("expected UnauthorizedError, got {other:?}"),
//! }
//!
//! // What reached the cloud stand-in:
//! let published = emu.cloud().published();
//! assert_eq!(published.len(), 1);
//! assert_eq!(published[0].topic, "factory/line1/telemetry");
//! assert_eq!(published[0].payload, b"21.5");
//! assert_eq!(published[0].component, "com.example.Sensor");
//!
//! // And every call the emulator served, with its outcome:
//! let calls = emu.records().calls();
//! assert_eq!(calls.len(), 3);
//! assert!(calls[2].outcome.contains("UnauthorizedError"));
//! # Ok(()) }
//! ```
//!
//! To run a component binary (or a component in another language) against the
//! emulator, use the `ggipc-emulator` binary (README, "Testing your component without a
//! device"); [`Emulator::client_builder`](emulator::Emulator::client_builder) and
//! [`Emulator::auth_token`](emulator::Emulator::auth_token) give what a component in the
//! same process needs.
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
//! For comparison, the official clients: the V1 clients (Java, Python) and the C++ client
//! run handlers on the connection's I/O thread (a blocking handler stalls the connection;
//! one waiting for another IPC call deadlocks it); the Python and Java V2 clients run them
//! on an executor, so a handler may block, but one subscription's events run concurrently
//! and can finish out of order, and the executor's queue has no bound. The README gives
//! the figure measured with the official Python V2 client (`tests/tools/v2_reordering.sh`).
//!
//! ggipc logs through the [`log`](https://docs.rs/log) facade (a stream ended by a lost
//! connection, dropped events, a panicking handler are warnings): install a logger, such as
//! `env_logger`, or they vanish.
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
//! The common service errors have predicates ([`Error::is_unauthorized`],
//! [`Error::is_not_found`], [`Error::is_invalid_arguments`], [`Error::is_conflict`],
//! [`Error::is_failed_update_condition`], …). For `main`, return
//! `Result<(), ggipc::Report>`: a failure then prints the error's `Display`, not its
//! `Debug` tree ([`Report`]).
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
#![doc = include_str!("operations.md")]
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
mod follow;
mod link;
mod operations;
pub mod pending;
mod pull;
mod random;
mod shutdown;
mod spin;
mod subscription;

#[cfg(feature = "emulator")]
pub mod emulator;

pub use client::Client;
pub use codec::CodecError;
pub use config::{
    CallOptions, ClientBuilder, ReconnectPolicy, AUTH_TOKEN_ENV, DEFAULT_REPLY_SPIN,
    MAX_REPLY_SPIN, SOCKET_PATH_ENV,
};
/// The channel crate of [`PullSubscription::receiver`], for `crossbeam_channel::select!`
/// without a dependency of your own.
pub use crossbeam_channel;
pub use error::{CloseReason, Error, Report, Result, StreamEnd, TimeoutKind};
pub use pending::Pending;
pub use pull::{IntoIter, PullSubscription, StreamItem, StreamRequest};
pub use rpc::{MessageType, ProtocolError};
pub use shutdown::Shutdown;
pub use subscription::{
    HandlerReturn, StreamControl, StreamHandler, Subscription, SubscriptionStats,
};

/// The `serde_json` crate that ggipc's API takes and returns ([`serde_json::Value`] in
/// JSON messages, configuration, shadows), re-exported so that a component needs no
/// dependency of its own on it (and cannot end up with a second, mismatched version).
///
/// ```
/// let request = ggipc::model::PublishToTopicRequest::json(
///     "factory/line1/status",
///     ggipc::serde_json::json!({"ok": true}),
/// );
/// # let _ = request;
/// ```
pub use serde_json;

/// The README's Rust snippets, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
