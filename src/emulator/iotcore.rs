//! IoT Core MQTT: PublishToIoTCore, SubscribeToIoTCore and
//! SubscribeToIoTCoreConnectionStatus, against an in-process cloud stand-in.

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::server::{Outcome, StreamRef};
use super::topic::filter_matches;
use super::{invalid_arguments, parse_request, CallContext};
use crate::model::{
    IoTCoreConnectionStatusEvent, IoTCoreMessage, PayloadFormat, PublishToIoTCoreRequest,
    PublishToIoTCoreResponse, Shape, SubscribeToIoTCoreConnectionStatusResponse,
    SubscribeToIoTCoreRequest, SubscribeToIoTCoreResponse, UserProperty, QOS,
};

/// A message a component published to IoT Core.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CloudMessage {
    /// The publishing component.
    pub component: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The QoS requested.
    pub qos: QOS,
    /// The retain flag.
    pub retain: bool,
    /// MQTT 5 user properties.
    pub user_properties: Vec<UserProperty>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 payload format indicator.
    pub payload_format: Option<PayloadFormat>,
    /// MQTT 5 response topic.
    pub response_topic: Option<String>,
    /// MQTT 5 correlation data.
    pub correlation_data: Option<Vec<u8>>,
    /// MQTT 5 message expiry.
    pub message_expiry_interval_seconds: Option<i64>,
}

struct Subscriber {
    filter: String,
    stream: StreamRef,
}

/// The cloud stand-in.
pub(crate) struct Cloud {
    connected: Mutex<bool>,
    published: Mutex<Vec<CloudMessage>>,
    spooled: Mutex<Vec<CloudMessage>>,
    subscribers: Mutex<Vec<Subscriber>>,
    status_subscribers: Mutex<Vec<StreamRef>>,
}

impl Default for Cloud {
    fn default() -> Self {
        Cloud {
            connected: Mutex::new(true),
            published: Mutex::new(Vec::new()),
            spooled: Mutex::new(Vec::new()),
            subscribers: Mutex::new(Vec::new()),
            status_subscribers: Mutex::new(Vec::new()),
        }
    }
}

const MAX_PUBLISHED: usize = 10_000;

fn status_event(connected: bool) -> bytes::Bytes {
    let status = if connected {
        "CONNECTED"
    } else {
        "DISCONNECTED"
    };
    json!({"connectionStatusEvent": {"status": status}})
        .to_string()
        .into_bytes()
        .into()
}

impl Cloud {
    pub(crate) fn published(&self) -> Vec<CloudMessage> {
        self.published.lock().clone()
    }

    fn send_to_cloud(&self, message: CloudMessage) {
        log::info!(
            "{} published to the cloud (IoT Core stand-in): topic {:?}, {} bytes",
            message.component,
            message.topic,
            message.payload.len()
        );
        let mut published = self.published.lock();
        if published.len() >= MAX_PUBLISHED {
            published.remove(0);
        }
        published.push(message);
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        {
            let mut c = self.connected.lock();
            if *c == connected {
                return;
            }
            *c = connected;
        }
        if connected {
            let spooled = std::mem::take(&mut *self.spooled.lock());
            for m in spooled {
                self.send_to_cloud(m);
            }
        }
        let targets: Vec<StreamRef> = self.status_subscribers.lock().clone();
        for t in targets {
            t.send_event(
                IoTCoreConnectionStatusEvent::MODEL_TYPE,
                status_event(connected),
            );
        }
    }

    /// Delivers a cloud message to the matching subscriptions.
    pub(crate) fn deliver(&self, topic: &str, payload: Vec<u8>) -> usize {
        self.deliver_message(
            &json!({"message": {
                "topicName": topic,
                "payload": base64_encode(&payload),
            }}),
            topic,
        )
    }

    fn deliver_message(&self, event: &Value, topic: &str) -> usize {
        let targets: Vec<StreamRef> = self
            .subscribers
            .lock()
            .iter()
            .filter(|s| filter_matches(&s.filter, topic))
            .map(|s| s.stream.clone())
            .collect();
        let payload = bytes::Bytes::from(event.to_string().into_bytes());
        targets
            .iter()
            .filter(|t| t.send_event(IoTCoreMessage::MODEL_TYPE, payload.clone()))
            .count()
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `filter` is a valid MQTT topic filter (`+` whole levels, `#` last and whole).
pub(crate) fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| {
        if level.contains('#') {
            *level == "#" && i == levels.len() - 1
        } else {
            !level.contains('+') || *level == "+"
        }
    })
}

pub(crate) fn publish_to_iot_core(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: PublishToIoTCoreRequest = match parse_request(request, "PublishToIoTCoreRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    if let Err(e) = ctx.state.authorize(
        ctx,
        "PublishToIoTCore",
        std::slice::from_ref(&request.topic_name),
    ) {
        return Outcome::Error(e);
    }
    if request.topic_name.is_empty() || request.topic_name.contains(['+', '#']) {
        return Outcome::Error(invalid_arguments(
            "topicName must be non-empty and hold no wildcard",
        ));
    }
    if !request.qos.is_known() {
        return Outcome::Error(invalid_arguments("qos must be \"0\" or \"1\""));
    }
    let message = CloudMessage {
        component: ctx.component.to_owned(),
        topic: request.topic_name.clone(),
        payload: request.payload.clone().unwrap_or_default(),
        qos: request.qos.clone(),
        retain: request.retain.unwrap_or(false),
        user_properties: request.user_properties.clone().unwrap_or_default(),
        content_type: request.content_type.clone(),
        payload_format: request.payload_format.clone(),
        response_topic: request.response_topic.clone(),
        correlation_data: request.correlation_data.clone(),
        message_expiry_interval_seconds: request.message_expiry_interval_seconds,
    };
    let cloud = &ctx.state.cloud;
    if *cloud.connected.lock() {
        cloud.send_to_cloud(message);
        // The broker echoes to matching subscriptions, including the publisher's own.
        let mut event = json!({"topicName": request.topic_name});
        if let Some(p) = &request.payload {
            event["payload"] = Value::String(base64_encode(p));
        }
        if let Some(r) = request.retain {
            event["retain"] = Value::Bool(r);
        }
        if let Some(u) = &request.user_properties {
            event["userProperties"] = serde_json::to_value(u).unwrap_or(Value::Null);
        }
        if let Some(ct) = &request.content_type {
            event["contentType"] = Value::String(ct.clone());
        }
        if let Some(pf) = &request.payload_format {
            event["payloadFormat"] = Value::String(pf.as_str().to_owned());
        }
        if let Some(rt) = &request.response_topic {
            event["responseTopic"] = Value::String(rt.clone());
        }
        if let Some(cd) = &request.correlation_data {
            event["correlationData"] = Value::String(base64_encode(cd));
        }
        if let Some(e) = request.message_expiry_interval_seconds {
            event["messageExpiryIntervalSeconds"] = Value::from(e);
        }
        cloud.deliver_message(&json!({ "message": event }), &request.topic_name);
    } else {
        // Spooled until the cloud connection is back, like the nucleus' spooler.
        cloud.spooled.lock().push(message);
    }
    Outcome::response(&PublishToIoTCoreResponse::default())
}

pub(crate) fn subscribe_to_iot_core(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: SubscribeToIoTCoreRequest =
        match parse_request(request, "SubscribeToIoTCoreRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = ctx.state.authorize(
        ctx,
        "SubscribeToIoTCore",
        std::slice::from_ref(&request.topic_name),
    ) {
        return Outcome::Error(e);
    }
    if !valid_filter(&request.topic_name) {
        return Outcome::Error(invalid_arguments(&format!(
            "{:?} is not a valid MQTT topic filter",
            request.topic_name
        )));
    }
    if !request.qos.is_known() {
        return Outcome::Error(invalid_arguments("qos must be \"0\" or \"1\""));
    }
    let state = ctx.state.clone();
    let filter = request.topic_name;
    Outcome::subscribe(
        &SubscribeToIoTCoreResponse::default(),
        move |stream: StreamRef| {
            state.cloud.subscribers.lock().push(Subscriber {
                filter,
                stream: stream.clone(),
            });
            Box::new(move || {
                state
                    .cloud
                    .subscribers
                    .lock()
                    .retain(|s| !s.stream.same_stream(&stream))
            })
        },
    )
}

pub(crate) fn subscribe_to_connection_status(ctx: &CallContext<'_>) -> Outcome {
    let state = ctx.state.clone();
    let initial_state = ctx.state.clone();
    let outcome = Outcome::subscribe(
        &SubscribeToIoTCoreConnectionStatusResponse::default(),
        move |stream: StreamRef| {
            state.cloud.status_subscribers.lock().push(stream.clone());
            Box::new(move || {
                state
                    .cloud
                    .status_subscribers
                    .lock()
                    .retain(|s| !s.same_stream(&stream))
            })
        },
    );
    // The current state is the first event, written right after the response.
    outcome.with_initial(move || {
        let connected = *initial_state.cloud.connected.lock();
        vec![(
            IoTCoreConnectionStatusEvent::MODEL_TYPE,
            status_event(connected),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::valid_filter;

    #[test]
    fn filters() {
        for ok in ["a", "a/b", "a/+", "+/b", "#", "a/#", "+/+/#"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "a/b+"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }
}
