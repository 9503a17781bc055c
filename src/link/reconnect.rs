//! The reconnect supervisor (opt-in, [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect)).
//!
//! One thread (`ggipc-reconnect`) per client. It sleeps until an I/O thread reports that
//! its connection ended; then, unless the client was closed, it reconnects with jittered
//! exponential backoff (a fresh token each attempt), installs the new connection, and
//! re-subscribes every live subscription with its original request on it. Subscriptions
//! learn of the loss from the I/O thread (`on_stream_interrupted`, queued when the
//! connection failed) and of the recovery from here (`on_stream_resumed`). It never runs
//! user code other than the token source (whose panics are caught), and every wait of it
//! ends on `close()`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::registry::{Binding, SubEntry};
use super::slot::Link;
use super::threads::{spawn_io, Notice};
use crate::connection::{connect, Connection, CONTROL_WRITE_BUDGET};
use crate::deadline::deadline_after;
use crate::error::{stream_error, CloseReason, Error};
use crate::random::SplitMix64;
use crate::rpc::MessageType;

/// The supervisor's loop; returns when the client closes or reconnecting gives up.
pub(super) fn run(link: &Arc<Link>, notices: &Receiver<Notice>) {
    let Some(policy) = link.config.reconnect else {
        return;
    };
    let mut rng = Jitter::new();
    loop {
        match notices.recv() {
            Err(_) | Ok(Notice::Stop) => return,
            Ok(Notice::Resync) => resubscribe_on(link, &link.slot_connection()),
            Ok(Notice::Lost) => {}
        }
        if link.is_closed() {
            return;
        }
        let Some(reason) = link.slot_connection().close_reason() else {
            continue; // a stale notice: the current connection is fine
        };
        log::warn!("IPC connection lost ({reason}); reconnecting");
        let mut attempt = 0u32;
        loop {
            if policy.attempts().is_some_and(|max| attempt >= max) {
                log::error!("IPC reconnect gave up after {attempt} attempt(s)");
                link.give_up(&reason);
                return;
            }
            let delay = rng.jitter(policy.base_delay(attempt));
            attempt = attempt.saturating_add(1);
            if !sleep(notices, delay) || link.is_closed() {
                return;
            }
            match try_connect(link) {
                Ok(true) => {
                    log::info!("IPC connection re-established (attempt {attempt})");
                    break;
                }
                Ok(false) => return, // closed meanwhile
                Err(e) => log::info!("IPC reconnect attempt {attempt} failed: {e}"),
            }
        }
    }
}

/// Waits `delay`, ignoring notices other than `Stop`; false = stop.
fn sleep(notices: &Receiver<Notice>, delay: Duration) -> bool {
    let deadline = deadline_after(delay);
    loop {
        match notices.recv_deadline(deadline) {
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) | Ok(Notice::Stop) => return false,
            Ok(_) => {}
        }
    }
}

/// One attempt: connect, handshake, start the I/O thread, install, re-subscribe. Until
/// it is installed, `close()` reaches the attempt through `link.connecting`. Calls wait
/// from the install until the subscriptions are back (`Link::resumed`), so that a call
/// that waited for the reconnect is not answered before they are, and a handler told
/// `on_stream_resumed` can call at once. `Ok(false)` when the client was closed
/// meanwhile.
fn try_connect(link: &Arc<Link>) -> crate::Result<bool> {
    let token = link.config.current_token();
    let established = connect(&link.config, &token, &|attempt| {
        // Stored before the check: a `close()` either sees it or is seen here.
        let mut connecting = link.connecting.lock();
        let attempt = connecting.insert(attempt);
        if link.is_closed() {
            attempt.abort();
        }
    });
    let established = match established {
        Ok(e) => e,
        Err(e) => {
            link.connecting.lock().take();
            return Err(e);
        }
    };
    let connection = established.connection().clone();
    let io = match spawn_io(established, link.notices.clone()) {
        Ok(io) => io,
        Err(e) => {
            link.connecting.lock().take();
            connection.shutdown(CloseReason::ByUser);
            return Err(e.into());
        }
    };
    let installed = link.install(connection.clone(), io);
    link.connecting.lock().take();
    if installed {
        resubscribe_on(link, &connection);
        link.resumed();
    }
    Ok(installed)
}

/// Re-subscribes every live subscription that is not on `connection` (after a
/// reconnect, or for a subscription registered on a connection lost meanwhile).
fn resubscribe_on(link: &Link, connection: &Arc<Connection>) {
    if connection.close_reason().is_some() {
        return;
    }
    for entry in link.registry.all() {
        if link.is_closed() || connection.close_reason().is_some() {
            return;
        }
        if entry.needs_resume(connection) {
            resubscribe(link, connection, &entry);
        }
    }
}

fn resubscribe(link: &Link, connection: &Arc<Connection>, entry: &SubEntry) {
    let request = &entry.request;
    let result = connection.call(
        request.operation.into(),
        request.model_type.into(),
        request.payload.clone(),
        deadline_after(link.config.request_timeout),
        Some(entry.queue.clone()),
    );
    match result {
        Ok((id, reply)) if reply.message_type == MessageType::ApplicationError => {
            log::warn!("re-subscribing {} was refused", request.operation);
            // Ends the stream unless the server's error already did.
            let _ = connection.end_stream(id, deadline_after(CONTROL_WRITE_BUDGET));
            entry.queue.finish(Some(stream_error(&reply)));
        }
        Ok((_, reply)) if reply.is_terminate() => {
            // Accepted, then ended at once: the handler sees the close.
            entry.queue.finish(None);
        }
        Ok((id, _)) => {
            let mut binding = entry.binding.lock();
            if entry.closed.load(Ordering::Acquire) || !entry.queue.is_accepting() {
                // Closed by the user or the handler while we re-subscribed: end the new
                // stream.
                drop(binding);
                let _ = connection.end_stream(id, deadline_after(CONTROL_WRITE_BUDGET));
                return;
            }
            *binding = Binding {
                connection: connection.clone(),
                stream_id: id,
            };
            drop(binding);
            log::info!("re-subscribed {} on stream {id}", request.operation);
            entry.queue.resumed();
        }
        // Lost again: the next reconnect retries.
        Err(Error::Closed(_)) | Err(Error::Disconnected(_)) => {}
        Err(e) => {
            log::warn!("re-subscribing {} failed: {e}", request.operation);
            entry.queue.finish(Some(e));
        }
    }
}

/// Spreads reconnect delays over [d/2, d].
struct Jitter(SplitMix64);

impl Jitter {
    fn new() -> Self {
        Jitter(SplitMix64::from_entropy())
    }

    fn jitter(&mut self, delay: Duration) -> Duration {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        Duration::from_nanos(half + self.0.next_u64() % (nanos - half + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let d = j.jitter(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
        }
        assert_eq!(j.jitter(Duration::ZERO), Duration::ZERO);
    }
}
