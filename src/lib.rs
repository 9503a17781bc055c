//! ggipc: a blocking, runtime-free client for the AWS IoT Greengrass Core IPC service.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod model;
pub mod rpc;

mod client;
mod config;
mod connection;
mod dispatch;
mod error;
mod operations;
mod subscription;

#[cfg(feature = "emulator")]
pub mod emulator;

pub use client::Client;
pub use config::{CallOptions, ClientBuilder, ReconnectPolicy, AUTH_TOKEN_ENV, SOCKET_PATH_ENV};
pub use error::{CloseReason, Error, Result, TimeoutKind};
pub use subscription::{StreamHandler, Subscription, SubscriptionStats};
