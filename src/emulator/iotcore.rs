//! IoT Core MQTT: PublishToIoTCore, SubscribeToIoTCore and
//! SubscribeToIoTCoreConnectionStatus, against an in-process cloud stand-in.
//!
//! # Rules (`nucleus` flavour)
//!
//! From aws-greengrass/aws-greengrass-nucleus at a28341c; `N/` is
//! `src/main/java/com/aws/greengrass/`. `IAE` = InvalidArgumentsError. Tests:
//! `tests/emulator_fidelity.rs` (`iot_core_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | No `topicName` → IAE `Topic is required` (before authorization). | `N/builtin/services/mqttproxy/MqttProxyIPCAgent.java:58,99,278-284` |
//! | Denied → `UnauthorizedError` with the fixed text `Not Authorized`. | `MqttProxyIPCAgent.java:56,101-106,194-199` |
//! | Publish without `payload` → IAE `Payload is required`. | `MqttProxyIPCAgent.java:57,108,286-292` |
//! | No `qos` → IAE `QoS is required`; another value than `"0"`/`"1"` → IAE `Invalid QoS value: <qos>`. | `MqttProxyIPCAgent.java:59-60,294-308` |
//! | Publish payload over 128 KiB (131,072 bytes) → **ServiceError** `Publish to topic <t> failed: The publishing message size <n> bytes exceeds the configured limit of 131072 bytes`. | `N/mqttclient/MqttClient.java:124,736-742`, `MqttProxyIPCAgent.java:127-135` |
//! | Topic checks, a **ServiceError** `Publish to topic <t> failed: <why>` (publish) or `Subscribe to topic <t> failed with error com.aws.greengrass.mqttclient.MqttRequestException: <why>` (subscribe): empty (`Topic must not be empty`); `+`/`#` in a publish topic (`Publish topics must not contain wildcard characters of '#' or '+'`); more than 7 `/` (`The request topic must have no more than 7 forward slashes (/)`); over 256 characters (`The topic size of request must be no larger than 256 bytes …`). `$aws/rules/<rule>/` (and, for subscribe, `$share/<group>/`) prefixes are not counted; another `$` topic only has a 512-character limit (MQTT 5, the default). | `N/mqttclient/IotCoreTopicValidator.java:24-157`, `MqttClient.java:129,443-455,743-744` |
//! | Subscribe to a malformed filter (`a/#/b`, `a+`) → ServiceError: the MQTT client refuses it and the agent turns the failure into `Subscribe to topic <t> failed with error …`. | `MqttProxyIPCAgent.java:210-235` |
//! | While offline, a QoS 0 publish is dropped with a ServiceError (`… failed: Device is offline. Dropping QoS 0 message.`); QoS 1 is spooled and sent on reconnection. | `N/mqttclient/MqttClient.java:697-703` |
//!
//! Deliberate differences: the cloud side is a stand-in — there is no broker, no IoT Core
//! policy, no QoS 1 acknowledgement, no retained messages and no persistent spool; a
//! component's publish is echoed to matching `SubscribeToIoTCore` streams (as IoT Core would
//! send it back); the spool is unbounded. The `lite` flavour keeps the emulator's earlier
//! checks (IAE for an empty or wildcard publish topic and a malformed filter): nucleus lite's
//! MQTT rules were not reviewed.

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::server::{Outcome, StreamRef};
use super::topic::filter_matches;
use super::{invalid_arguments, parse_request, service_error, CallContext};
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

/// `DEFAULT_MQTT_MAX_OF_MESSAGE_SIZE_IN_BYTES` (MqttClient.java:124).
pub(crate) const MAX_PUBLISH_PAYLOAD: usize = 128 * 1024;
/// `TOPIC_MAX_NUMBER_OF_FORWARD_SLASHES` (IotCoreTopicValidator.java:24).
const MAX_SLASHES: usize = 7;
/// `MAX_LENGTH_OF_TOPIC` (IotCoreTopicValidator.java:25).
const MAX_TOPIC_LENGTH: usize = 256;
/// `MAX_LENGTH_FOR_UNKNOWN_RESERVED_TOPIC` (IotCoreTopicValidator.java:26).
const MAX_RESERVED_TOPIC_LENGTH: usize = 512;

/// The part after `prefix` and one more non-empty level (`$share/<group>/`,
/// `$aws/rules/<rule>/`), when the topic has that shape (IotCoreTopicValidator's
/// templates); `None` when it has not.
fn after_reserved_prefix<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = topic.strip_prefix(prefix)?;
    if rest.chars().any(char::is_whitespace) {
        return None;
    }
    let slash = rest.char_indices().skip(1).find(|(_, c)| *c == '/')?.0;
    let effective = &rest[slash + 1..];
    (!effective.is_empty()).then_some(effective)
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn validate_effective(topic: &str, publish: bool) -> Result<(), String> {
    if topic.matches('/').count() > MAX_SLASHES {
        return Err(format!(
            "The request topic must have no more than {MAX_SLASHES} forward slashes (/)"
        ));
    }
    if utf16_len(topic) > MAX_TOPIC_LENGTH {
        let publish_text = format!(
            "The topic size of request must be no larger than {MAX_TOPIC_LENGTH} bytes of UTF-8 \
             encoded characters. This excludes the first 3 mandatory segments for Basic Ingest \
             topics ($AWS/rules/rule-name/)"
        );
        return Err(if publish {
            publish_text
        } else {
            format!(
                "{publish_text} or first 2 mandatory segments for MQTT Shared Subscriptions \
                 ($share/share-name/)"
            )
        });
    }
    Ok(())
}

/// IotCoreTopicValidator.validateTopic with MQTT 5 (the nucleus's default).
pub(crate) fn validate_iot_topic(topic: &str, publish: bool) -> Result<(), String> {
    if topic.is_empty() {
        return Err("Topic must not be empty".into());
    }
    if publish && topic.contains(['#', '+']) {
        return Err("Publish topics must not contain wildcard characters of '#' or '+'".into());
    }
    if !topic.starts_with('$') {
        return validate_effective(topic, publish);
    }
    if let Some(effective) = after_reserved_prefix(topic, "$share/") {
        return validate_effective(if publish { topic } else { effective }, publish);
    }
    if let Some(effective) = after_reserved_prefix(topic, "$aws/rules/") {
        return validate_effective(effective, publish);
    }
    if utf16_len(topic) > MAX_RESERVED_TOPIC_LENGTH {
        return Err(format!(
            "Reserved topic total length is greater than {MAX_RESERVED_TOPIC_LENGTH} bytes of \
             UTF-8 encoded characters and is most likely over the IoT Core limit of \
             {MAX_TOPIC_LENGTH} bytes (excluding prefixes)."
        ));
    }
    Ok(())
}

/// The MQTT proxy's checks of `topicName` and `qos` presence (MqttProxyIPCAgent.java:278-308),
/// on the raw request.
fn check_topic_present(request: &Value) -> Result<(), crate::model::IpcError> {
    if request.get("topicName").map_or(true, Value::is_null) {
        return Err(invalid_arguments("Topic is required"));
    }
    Ok(())
}

fn check_qos(request: &Value) -> Result<(), crate::model::IpcError> {
    match request.get("qos") {
        None | Some(Value::Null) => Err(invalid_arguments("QoS is required")),
        Some(Value::String(q)) if q == "0" || q == "1" => Ok(()),
        Some(Value::String(q)) => Err(invalid_arguments(&format!("Invalid QoS value: {q}"))),
        Some(other) => Err(invalid_arguments(&format!("Invalid QoS value: {other}"))),
    }
}

/// The MQTT proxy's fixed denial text, then the authorizer's explanation.
fn not_authorized(e: crate::model::IpcError) -> crate::model::IpcError {
    let why = e.message().to_owned();
    super::modeled_error(
        "UnauthorizedError",
        &super::texts::nucleus_text("Not Authorized", &why),
    )
}

pub(crate) fn publish_to_iot_core(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let nucleus = ctx.state.flavor == super::Flavor::Nucleus;
    if nucleus {
        if let Err(e) = check_topic_present(&request) {
            return Outcome::Error(e);
        }
    }
    let raw = request.clone();
    let request: PublishToIoTCoreRequest = match parse_request(request, "PublishToIoTCoreRequest") {
        Ok(r) => r,
        Err(_) if nucleus && raw.get("qos").map_or(true, Value::is_null) => {
            // Authorization comes before the qos check; parse without it to authorize.
            if let Err(e) = ctx.state.authorize(
                ctx,
                "PublishToIoTCore",
                &[raw["topicName"].as_str().unwrap_or_default().to_owned()],
            ) {
                return Outcome::Error(not_authorized(e));
            }
            if raw.get("payload").map_or(true, Value::is_null) {
                return Outcome::Error(invalid_arguments("Payload is required"));
            }
            return Outcome::Error(invalid_arguments("QoS is required"));
        }
        Err(e) => return Outcome::Error(e),
    };
    if let Err(e) = ctx.state.authorize(
        ctx,
        "PublishToIoTCore",
        std::slice::from_ref(&request.topic_name),
    ) {
        return Outcome::Error(if nucleus { not_authorized(e) } else { e });
    }
    if nucleus {
        if request.payload.is_none() {
            return Outcome::Error(invalid_arguments("Payload is required"));
        }
        if let Err(e) = check_qos(&raw) {
            return Outcome::Error(e);
        }
        let failed = |why: &str| {
            Outcome::Error(service_error(&format!(
                "Publish to topic {} failed: {why}",
                request.topic_name
            )))
        };
        let size = request.payload.as_ref().map_or(0, Vec::len);
        if size > MAX_PUBLISH_PAYLOAD {
            return failed(&format!(
                "The publishing message size {size} bytes exceeds the configured limit of \
                 {MAX_PUBLISH_PAYLOAD} bytes"
            ));
        }
        if let Err(why) = validate_iot_topic(&request.topic_name, true) {
            return failed(&why);
        }
        if !*ctx.state.cloud.connected.lock() && request.qos == QOS::AtMostOnce {
            return failed("Device is offline. Dropping QoS 0 message.");
        }
    } else {
        if request.topic_name.is_empty() || request.topic_name.contains(['+', '#']) {
            return Outcome::Error(invalid_arguments(
                "topicName must be non-empty and hold no wildcard",
            ));
        }
        if !request.qos.is_known() {
            return Outcome::Error(invalid_arguments("qos must be \"0\" or \"1\""));
        }
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
    let nucleus = ctx.state.flavor == super::Flavor::Nucleus;
    if nucleus {
        if let Err(e) = check_topic_present(&request) {
            return Outcome::Error(e);
        }
    }
    let raw = request.clone();
    let request: SubscribeToIoTCoreRequest =
        match parse_request(request, "SubscribeToIoTCoreRequest") {
            Ok(r) => r,
            Err(_) if nucleus && raw.get("qos").map_or(true, Value::is_null) => {
                if let Err(e) = ctx.state.authorize(
                    ctx,
                    "SubscribeToIoTCore",
                    &[raw["topicName"].as_str().unwrap_or_default().to_owned()],
                ) {
                    return Outcome::Error(not_authorized(e));
                }
                return Outcome::Error(invalid_arguments("QoS is required"));
            }
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = ctx.state.authorize(
        ctx,
        "SubscribeToIoTCore",
        std::slice::from_ref(&request.topic_name),
    ) {
        return Outcome::Error(if nucleus { not_authorized(e) } else { e });
    }
    if nucleus {
        if let Err(e) = check_qos(&raw) {
            return Outcome::Error(e);
        }
        let why = validate_iot_topic(&request.topic_name, false)
            .err()
            .or_else(|| {
                (!valid_filter(&request.topic_name))
                    .then(|| format!("{:?} is not a valid MQTT topic filter", request.topic_name))
            });
        if let Some(why) = why {
            return Outcome::Error(service_error(&format!(
                "Subscribe to topic {} failed with error \
                 com.aws.greengrass.mqttclient.MqttRequestException: {why}",
                request.topic_name
            )));
        }
    } else {
        if !valid_filter(&request.topic_name) {
            return Outcome::Error(invalid_arguments(&format!(
                "{:?} is not a valid MQTT topic filter",
                request.topic_name
            )));
        }
        if !request.qos.is_known() {
            return Outcome::Error(invalid_arguments("qos must be \"0\" or \"1\""));
        }
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
