//! The emulator's handlers: each service area's operations (the typed [`Unary`] and
//! [`Streaming`] implementations of the registry, and the rules of the nucleus they
//! follow, in each file's module doc), reading and changing `State` through the
//! call's `CallContext`. `table.rs` (generated) lists every operation's handler;
//! `deployment.rs` also runs simulated deployments.
//!
//! [`Unary`]: crate::emulator::registry::Unary
//! [`Streaming`]: crate::emulator::registry::Streaming

pub(crate) mod cli;
pub(crate) mod clientdevices;
pub(crate) mod configuration;
pub(crate) mod deployment;
pub(crate) mod iotcore;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub(crate) mod pubsub;
pub(crate) mod secrets;
pub(crate) mod shadows;
pub(crate) mod table;
pub(crate) mod tokens;
