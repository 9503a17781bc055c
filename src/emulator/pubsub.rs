//! Local publish/subscribe: the broker behind PublishToTopic and SubscribeToTopic.
//!
//! # Rules
//!
//! `nucleus` flavour, from aws-greengrass/aws-greengrass-nucleus at a28341c; `PS` is
//! `src/main/java/com/aws/greengrass/builtin/services/pubsub/PubSubIPCEventStreamAgent.java`.
//! `IAE` = InvalidArgumentsError. Tests: `tests/emulator_fidelity.rs` (`pubsub_*`),
//! `tests/emulator_flavors.rs` (lite).
//!
//! | Rule | Source |
//! |---|---|
//! | Authorization first (an empty topic is always denied: `Resource cannot be empty`), then the topic checks. | `PS:234-251,282-296`, `AuthorizationModule.java:68-71` |
//! | A publish topic holding `+`, `#` or `*` → IAE `Publish topic must not contain a wildcard.` | `PS:137-140` |
//! | An empty subscribe topic → IAE `Subscribe topic must not be empty`. | `PS:304-308` |
//! | Topics and filters are split on `/` as Java's `String.split` does: trailing empty levels are dropped, so `a/b/` is `a/b`. | `SubscriptionTrie.java:37,146,177,205` |
//! | `+` is one level; `#` matches one level, except a final `#`, which takes one or more. | `SubscriptionTrie.java` (`get`) |
//! | No `receiveMode`: `RECEIVE_MESSAGES_FROM_OTHERS` for a wildcard filter, else `RECEIVE_ALL_MESSAGES`. | `PS:310-321` |
//!
//! `lite` flavour (nucleus lite 2.6.0; aws-greengrass/aws-greengrass-lite tag v2.6.0, `GI`
//! = `modules/ggipcd/src/services/pubsub/`):
//!
//! | Rule | Source |
//! |---|---|
//! | `receiveMode` is ignored: the SubscribeToTopic handler reads only `topic`, so a component receives its own messages whatever it asked for. | `GI/subscribe_to_topic.c:95-130` |
//! | `+` and `#` are accepted in a PublishToTopic topic (the handler checks only authorization). | `GI/publish_to_topic.c:33-52,105-115` |
//! | An empty PublishToTopic topic is accepted: no rule refuses an empty resource before the policy lookup, so a `*` policy grants it (seen on a running lite 2.6.0 with `tests/tools/lite_probe.py`). | `GI/publish_to_topic.c:33-52`, `ipc_authz.c` |

use parking_lot::Mutex;
use serde_json::Value;

use super::server::{Outcome, StreamRef};
use super::topic::{has_wildcard, is_local_wildcard, local_filter_matches};
use super::{invalid_arguments, CallContext};
use crate::model::{
    PublishMessage, PublishToTopicRequest, PublishToTopicResponse, ReceiveMode, Shape,
    SubscribeToTopicRequest, SubscribeToTopicResponse, SubscriptionResponseMessage,
};

struct Subscriber {
    filter: String,
    component: String,
    from_others_only: bool,
    stream: StreamRef,
}

/// Every live local subscription.
#[derive(Default)]
pub(crate) struct Broker {
    subscribers: Mutex<Vec<Subscriber>>,
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
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => bytes::Bytes::from(p),
            Err(_) => return 0,
        };
        let mut delivered = 0;
        for target in targets {
            let sent = match wait {
                Some(within) => target.send_event_waiting(
                    SubscriptionResponseMessage::MODEL_TYPE,
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

    fn remove(&self, stream: &StreamRef) {
        self.subscribers
            .lock()
            .retain(|s| !s.stream.same_stream(stream));
    }

    /// Number of live subscriptions (for tests and logs).
    pub(crate) fn len(&self) -> usize {
        self.subscribers.lock().len()
    }
}

pub(crate) fn publish_to_topic(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: PublishToTopicRequest = match serde_json::from_value(request) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Error(invalid_arguments(&format!(
                "invalid PublishToTopicRequest: {e}"
            )))
        }
    };
    // Authorization first, then the topic check (as the nucleus does).
    if let Err(e) = ctx
        .state
        .authorize(ctx, "PublishToTopic", std::slice::from_ref(&request.topic))
    {
        return Outcome::Error(e);
    }
    let lite = ctx.state.flavor == super::Flavor::Lite;
    // Not reached in the nucleus flavour (authorization refuses an empty resource first).
    if !lite && request.topic.is_empty() {
        return Outcome::Error(invalid_arguments("the publish topic must be non-empty"));
    }
    if !lite && (has_wildcard(&request.topic) || request.topic.contains('*')) {
        return Outcome::Error(invalid_arguments(&super::texts::nucleus_text(
            "Publish topic must not contain a wildcard.",
            &format!("{:?} holds '+', '#' or '*'", request.topic),
        )));
    }
    ctx.state
        .pubsub
        .publish(ctx.component, &request.topic, &request.publish_message);
    Outcome::response(&PublishToTopicResponse::default())
}

pub(crate) fn subscribe_to_topic(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: SubscribeToTopicRequest = match serde_json::from_value(request) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Error(invalid_arguments(&format!(
                "invalid SubscribeToTopicRequest: {e}"
            )))
        }
    };
    if let Err(e) = ctx.state.authorize(
        ctx,
        "SubscribeToTopic",
        std::slice::from_ref(&request.topic),
    ) {
        return Outcome::Error(e);
    }
    if request.topic.is_empty() {
        return Outcome::Error(invalid_arguments("Subscribe topic must not be empty"));
    }
    let from_others_only = match &request.receive_mode {
        // Nucleus lite ignores receiveMode (subscribe_to_topic.c reads only `topic`).
        _ if ctx.state.flavor == super::Flavor::Lite => false,
        Some(ReceiveMode::ReceiveMessagesFromOthers) => true,
        Some(ReceiveMode::ReceiveAllMessages) => false,
        // The nucleus default: wildcard filters skip the subscriber's own messages.
        None => is_local_wildcard(&request.topic),
        Some(_) => false,
    };
    let state = ctx.state.clone();
    let component = ctx.component.to_owned();
    let filter = request.topic.clone();
    // The nucleus answers with an empty response (topicName is deprecated and unset).
    let response = SubscribeToTopicResponse::new();
    Outcome::subscribe(&response, move |stream: StreamRef| {
        let on_close = {
            let state = state.clone();
            let stream = stream.clone();
            move || state.pubsub.remove(&stream)
        };
        state.pubsub.subscribers.lock().push(Subscriber {
            filter,
            component,
            from_others_only,
            stream,
        });
        Box::new(on_close)
    })
}
