//! Local pub/sub's store: the live subscriptions and delivery to them (the broker).

use parking_lot::Mutex;

use crate::emulator::common::topic::local_filter_matches;
use crate::emulator::conn::StreamRef;
use crate::model::{PublishMessage, Shape, SubscriptionResponseMessage};

pub(crate) struct Subscriber {
    pub(crate) filter: String,
    pub(crate) component: String,
    pub(crate) from_others_only: bool,
    pub(crate) stream: StreamRef,
}

/// Every live local subscription.
#[derive(Default)]
pub(crate) struct Broker {
    pub(crate) subscribers: Mutex<Vec<Subscriber>>,
}

impl Broker {
    /// Delivers `message` published by `publisher` on `topic`; returns how many
    /// subscriptions received it.
    pub(crate) fn publish(&self, publisher: &str, topic: &str, message: &PublishMessage) -> usize {
        self.deliver(publisher, topic, message, None)
    }

    /// As [`Broker::publish`]; with `wait`, waits that long per subscription for room in
    /// its connection's outbound queue (for `Emulator::publish`, not for components).
    pub(crate) fn deliver(
        &self,
        publisher: &str,
        topic: &str,
        message: &PublishMessage,
        wait: Option<std::time::Duration>,
    ) -> usize {
        let targets: Vec<StreamRef> = self
            .subscribers
            .lock()
            .iter()
            .filter(|s| local_filter_matches(&s.filter, topic))
            .filter(|s| !(s.from_others_only && s.component == publisher))
            .map(|s| s.stream.clone())
            .collect();
        if targets.is_empty() {
            return 0;
        }
        let event: SubscriptionResponseMessage = message.clone().into_event(topic);
        let payload = match crate::model::to_json(&event) {
            Ok(p) => bytes::Bytes::from(p),
            Err(_) => return 0,
        };
        let mut delivered = 0;
        for target in targets {
            let sent = match wait {
                Some(within) => target.send_event_waiting(
                    SubscriptionResponseMessage::MODEL_TYPE.into(),
                    payload.clone(),
                    within,
                ),
                None => target.send_event(SubscriptionResponseMessage::MODEL_TYPE, payload.clone()),
            };
            if sent {
                delivered += 1;
            }
        }
        delivered
    }

    pub(crate) fn remove(&self, stream: &StreamRef) {
        self.subscribers
            .lock()
            .retain(|s| !s.stream.same_stream(stream));
    }

    /// Number of live subscriptions (for tests and logs).
    pub(crate) fn len(&self) -> usize {
        self.subscribers.lock().len()
    }
}
