//! The link: keeps the client connected: the connection slot (the current
//! connection and whether reconnecting gave up), the threads that serve it (the I/O
//! thread of each connection, the `ggipc-reconnect` supervisor), the registry of live
//! subscriptions, and closing all of it within a bound.
//!
//! It sits between [`connection`](crate::connection) (below: one socket, never
//! reconnects) and the public API (above: [`Client`](crate::Client),
//! [`Subscription`](crate::Subscription)), and imports nothing from the layer above.
//!
//! Locks of this layer: `slot`, `connecting`, `supervisor` and the registry's map are
//! each held only briefly and never while taking another one of them, with one
//! exception: `slot` may be held while taking a connection's `routes` lock (to read its
//! close reason). A connection never calls back into the link.

//! Files, from the bottom: `threads` (the background threads and the supervisor's
//! notices), `registry` (live subscriptions), `slot` ([`Link`]: the current connection,
//! closing), `reconnect` (the supervisor's loop); this file assembles them ([`start`]).

mod reconnect;
mod registry;
mod slot;
mod threads;

pub(crate) use registry::{Binding, Resubscribe, SubEntry};
pub(crate) use slot::Link;

use std::sync::Arc;

use crate::config::Config;
use crate::connection;
use crate::deadline::deadline_after;
use crate::dispatch::Dispatcher;
use crate::error::{CloseReason, Result};
use threads::{spawn_io, Background};

/// Connects, starts the handler pool, the I/O thread and (with reconnect) the
/// supervisor. Whatever was started is stopped again when a later step fails.
pub(crate) fn start(config: Config) -> Result<Arc<Link>> {
    let established = connection::connect(&config, &config.auth_token, &|_| {})?;
    let connection = established.connection().clone();
    let dispatcher = match Dispatcher::start(config.handler_threads, config.reply_spin) {
        Ok(d) => d,
        Err(e) => {
            connection.shutdown(CloseReason::ByUser);
            return Err(e.into());
        }
    };
    let (notices, notices_rx) = match config.reconnect {
        Some(_) => {
            let (tx, rx) = crossbeam_channel::unbounded();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let io = match spawn_io(established, notices.clone()) {
        Ok(io) => io,
        Err(e) => {
            connection.shutdown(CloseReason::ByUser);
            dispatcher.shutdown(deadline_after(config.shutdown_timeout));
            return Err(e.into());
        }
    };
    log::info!(
        "connected to the IPC socket {}",
        config.socket_path.display()
    );
    let link = Arc::new(Link::new(config, dispatcher, connection, io, notices));
    if let Some(rx) = notices_rx {
        let supervised = link.clone();
        match Background::spawn("ggipc-reconnect", move || reconnect::run(&supervised, &rx)) {
            Ok(supervisor) => link.set_supervisor(supervisor),
            Err(e) => {
                link.shutdown();
                return Err(e.into());
            }
        }
    }
    Ok(link)
}
