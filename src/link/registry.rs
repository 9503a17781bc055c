//! The live subscriptions of a client: what the reconnect supervisor resumes and what
//! closing ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::connection::Connection;
use crate::dispatch::StreamQueue;

/// What re-subscribing needs: the original request, as sent.
#[derive(Debug)]
pub(crate) struct Resubscribe {
    pub operation: &'static str,
    pub model_type: &'static str,
    pub payload: Bytes,
}

/// Where a subscription currently lives.
#[derive(Debug)]
pub(crate) struct Binding {
    pub connection: Arc<Connection>,
    pub stream_id: i32,
}

/// The shared part of a subscription: its handle, the registry and the reconnect
/// supervisor all see it.
#[derive(Debug)]
pub(crate) struct SubEntry {
    pub request: Resubscribe,
    pub queue: Arc<StreamQueue>,
    pub binding: Mutex<Binding>,
    /// Set (under `binding`) once the user closed it: it is never resumed again.
    pub closed: AtomicBool,
}

impl SubEntry {
    /// Whether it must be re-subscribed on `current`: open, delivering, and bound to
    /// another (dead) connection.
    pub(crate) fn needs_resume(&self, current: &Arc<Connection>) -> bool {
        !self.closed.load(Ordering::Acquire)
            && self.queue.is_accepting()
            && !Arc::ptr_eq(&self.binding.lock().connection, current)
    }
}

/// The live subscriptions, by key.
#[derive(Debug, Default)]
pub(super) struct Registry {
    entries: Mutex<HashMap<u64, Arc<SubEntry>>>,
    next: AtomicU64,
}

impl Registry {
    /// Adds `entry`; returns its key.
    pub(super) fn insert(&self, entry: Arc<SubEntry>) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().insert(key, entry);
        key
    }

    pub(super) fn remove(&self, key: u64) {
        self.entries.lock().remove(&key);
    }

    /// The live subscriptions, in no particular order.
    pub(super) fn all(&self) -> Vec<Arc<SubEntry>> {
        self.entries.lock().values().cloned().collect()
    }

    /// Removes and returns every subscription.
    pub(super) fn take_all(&self) -> Vec<Arc<SubEntry>> {
        std::mem::take(&mut *self.entries.lock())
            .into_values()
            .collect()
    }
}
