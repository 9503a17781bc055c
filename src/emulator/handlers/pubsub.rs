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

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::common::topic::{has_wildcard, is_local_wildcard};
use crate::emulator::conn::StreamRef;
use crate::emulator::registry::{Stream, Streaming, Unary};
use crate::emulator::state::CallContext;
use crate::emulator::stores::pubsub::Subscriber;
use crate::model::{
    IpcError, Operation, PublishToTopic, PublishToTopicRequest, PublishToTopicResponse,
    ReceiveMode, SubscribeToTopic, SubscribeToTopicRequest, SubscribeToTopicResponse,
};

impl Unary for PublishToTopic {
    fn serve(
        ctx: &CallContext<'_>,
        request: PublishToTopicRequest,
    ) -> Result<PublishToTopicResponse, IpcError> {
        // Authorization first, then the topic check (as the nucleus does).
        ctx.state
            .authorize(ctx, Self::NAME, std::slice::from_ref(&request.topic))?;
        let lite = ctx.state.flavor == Flavor::Lite;
        // Not reached in the nucleus flavour (authorization refuses an empty resource first).
        if !lite && request.topic.is_empty() {
            return Err(invalid_arguments("the publish topic must be non-empty"));
        }
        if !lite && (has_wildcard(&request.topic) || request.topic.contains('*')) {
            return Err(invalid_arguments(
                &crate::emulator::common::texts::nucleus_text(
                    "Publish topic must not contain a wildcard.",
                    &format!("{:?} holds '+', '#' or '*'", request.topic),
                ),
            ));
        }
        ctx.state
            .pubsub
            .publish(ctx.component, &request.topic, &request.publish_message);
        Ok(PublishToTopicResponse::default())
    }
}

impl Streaming for SubscribeToTopic {
    fn serve(
        ctx: &CallContext<'_>,
        request: SubscribeToTopicRequest,
    ) -> Result<Stream<SubscribeToTopicResponse>, IpcError> {
        subscribe_to_topic(ctx, request)
    }
}

fn subscribe_to_topic(
    ctx: &CallContext<'_>,
    request: SubscribeToTopicRequest,
) -> Result<Stream<SubscribeToTopicResponse>, IpcError> {
    ctx.state.authorize(
        ctx,
        SubscribeToTopic::NAME,
        std::slice::from_ref(&request.topic),
    )?;
    if request.topic.is_empty() {
        return Err(invalid_arguments("Subscribe topic must not be empty"));
    }
    let from_others_only = match &request.receive_mode {
        // Nucleus lite ignores receiveMode (subscribe_to_topic.c reads only `topic`).
        _ if ctx.state.flavor == Flavor::Lite => false,
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
    Ok(Stream::new(response, move |stream: StreamRef| {
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
    }))
}
