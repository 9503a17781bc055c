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

use serde_json::{json, Value};

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::parse_request;
use crate::emulator::common::errors::service_error;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::conn::StreamRef;
use crate::emulator::registry::{Body, Stream, Streaming, Unary};
use crate::emulator::state::CallContext;
use crate::emulator::stores::iotcore::{base64_encode, status_event, CloudMessage, Subscriber};
use crate::model::{
    IoTCoreConnectionStatusEvent, IpcError, Operation, PublishToIoTCore, PublishToIoTCoreRequest,
    PublishToIoTCoreResponse, Qos, Shape, SubscribeToIoTCore, SubscribeToIoTCoreConnectionStatus,
    SubscribeToIoTCoreConnectionStatusRequest, SubscribeToIoTCoreConnectionStatusResponse,
    SubscribeToIoTCoreRequest, SubscribeToIoTCoreResponse,
};

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
fn check_topic_present(request: &Value) -> Result<(), IpcError> {
    if request.get("topicName").map_or(true, Value::is_null) {
        return Err(invalid_arguments("Topic is required"));
    }
    Ok(())
}

/// Authorizes `operation` on `topic`; the Java nucleus words a denial its MQTT proxy's way.
fn authorize_topic(ctx: &CallContext<'_>, operation: &str, topic: &str) -> Result<(), IpcError> {
    ctx.state
        .authorize(ctx, operation, &[topic.to_owned()])
        .map_err(|e| match ctx.state.flavor {
            Flavor::Nucleus => not_authorized(e),
            _ => e,
        })
}

/// The MQTT proxy's fixed denial text, then the authorizer's explanation.
fn not_authorized(e: IpcError) -> IpcError {
    let why = e.message().to_owned();
    crate::emulator::common::errors::modeled_error(
        "UnauthorizedError",
        &crate::emulator::common::texts::nucleus_text("Not Authorized", &why),
    )
}

/// The qos check of a decoded request (`MqttProxyIPCAgent`: `Invalid QoS value: <q>`).
fn check_qos(qos: &Qos) -> Result<(), IpcError> {
    if qos.is_known() {
        Ok(())
    } else {
        Err(invalid_arguments(&format!(
            "Invalid QoS value: {}",
            qos.as_str()
        )))
    }
}

/// Decodes a PublishToIoTCore or SubscribeToIoTCore request the way the MQTT proxy reads
/// it: in the nucleus flavour `topicName` must be present, and a request without `qos`
/// is authorized first, then refused (`Payload is required` for a publish without
/// payload, else `QoS is required`).
fn parse_mqtt_request<T: serde::de::DeserializeOwned>(
    ctx: &CallContext<'_>,
    request: Value,
    operation: &str,
    shape: &str,
) -> Result<T, IpcError> {
    let nucleus = ctx.state.flavor == Flavor::Nucleus;
    if nucleus {
        check_topic_present(&request)?;
    }
    let qos_missing = request.get("qos").map_or(true, Value::is_null);
    let payload_missing = request.get("payload").map_or(true, Value::is_null);
    let topic = request["topicName"].as_str().unwrap_or_default().to_owned();
    match parse_request(request, shape) {
        Ok(r) => Ok(r),
        Err(_) if nucleus && qos_missing => {
            // Authorization comes before the qos check; authorize on the raw topic.
            ctx.state
                .authorize(ctx, operation, &[topic])
                .map_err(not_authorized)?;
            if operation == PublishToIoTCore::NAME && payload_missing {
                return Err(invalid_arguments("Payload is required"));
            }
            Err(invalid_arguments("QoS is required"))
        }
        Err(e) => Err(e),
    }
}

impl Unary for PublishToIoTCore {
    fn parse(ctx: &CallContext<'_>, body: &Body<'_>) -> Result<PublishToIoTCoreRequest, IpcError> {
        let request = body.value();
        parse_mqtt_request(ctx, request, Self::NAME, "PublishToIoTCoreRequest")
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: PublishToIoTCoreRequest,
    ) -> Result<PublishToIoTCoreResponse, IpcError> {
        let nucleus = ctx.state.flavor == Flavor::Nucleus;
        authorize_topic(ctx, Self::NAME, &request.topic_name)?;
        if nucleus {
            check_nucleus_publish(ctx, &request)?;
        } else {
            if request.topic_name.is_empty() || request.topic_name.contains(['+', '#']) {
                return Err(invalid_arguments(
                    "topicName must be non-empty and hold no wildcard",
                ));
            }
            if !request.qos.is_known() {
                return Err(invalid_arguments("qos must be \"0\" or \"1\""));
            }
        }
        publish(ctx, &request);
        Ok(PublishToIoTCoreResponse::default())
    }
}

/// The nucleus' checks of an authorized publish (MqttProxyIPCAgent, IotCoreTopicValidator).
fn check_nucleus_publish(
    ctx: &CallContext<'_>,
    request: &PublishToIoTCoreRequest,
) -> Result<(), IpcError> {
    if request.payload.is_none() {
        return Err(invalid_arguments("Payload is required"));
    }
    check_qos(&request.qos)?;
    let failed = |why: &str| {
        Err(service_error(&format!(
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
    if !*ctx.state.cloud.connected.lock() && request.qos == Qos::AtMostOnce {
        return failed("Device is offline. Dropping QoS 0 message.");
    }
    Ok(())
}

/// Sends an accepted publish to the cloud (and echoes it to matching subscriptions), or
/// spools it while the cloud connection is down.
fn publish(ctx: &CallContext<'_>, request: &PublishToIoTCoreRequest) {
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
        let event = echo_event(request);
        cloud.deliver_message(&json!({ "message": event }), &request.topic_name);
    } else {
        // Spooled until the cloud connection is back, like the nucleus' spooler.
        cloud.spooled.lock().push(message);
    }
}

/// The `MqttMessage` that subscribers of the topic receive for a publish.
fn echo_event(request: &PublishToIoTCoreRequest) -> Value {
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
    event
}

impl Streaming for SubscribeToIoTCore {
    fn parse(
        ctx: &CallContext<'_>,
        body: &Body<'_>,
    ) -> Result<SubscribeToIoTCoreRequest, IpcError> {
        let request = body.value();
        parse_mqtt_request(ctx, request, Self::NAME, "SubscribeToIoTCoreRequest")
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: SubscribeToIoTCoreRequest,
    ) -> Result<Stream<SubscribeToIoTCoreResponse>, IpcError> {
        let nucleus = ctx.state.flavor == Flavor::Nucleus;
        authorize_topic(ctx, Self::NAME, &request.topic_name)?;
        if nucleus {
            check_qos(&request.qos)?;
            let why = validate_iot_topic(&request.topic_name, false)
                .err()
                .or_else(|| {
                    (!valid_filter(&request.topic_name)).then(|| {
                        format!("{:?} is not a valid MQTT topic filter", request.topic_name)
                    })
                });
            if let Some(why) = why {
                return Err(service_error(&format!(
                    "Subscribe to topic {} failed with error \
                     com.aws.greengrass.mqttclient.MqttRequestException: {why}",
                    request.topic_name
                )));
            }
        } else {
            if !valid_filter(&request.topic_name) {
                return Err(invalid_arguments(&format!(
                    "{:?} is not a valid MQTT topic filter",
                    request.topic_name
                )));
            }
            if !request.qos.is_known() {
                return Err(invalid_arguments("qos must be \"0\" or \"1\""));
            }
        }
        let state = ctx.state.clone();
        let filter = request.topic_name;
        Ok(Stream::new(
            SubscribeToIoTCoreResponse::default(),
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
        ))
    }
}

impl Streaming for SubscribeToIoTCoreConnectionStatus {
    fn parse(
        _ctx: &CallContext<'_>,
        _body: &Body<'_>,
    ) -> Result<SubscribeToIoTCoreConnectionStatusRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(SubscribeToIoTCoreConnectionStatusRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: SubscribeToIoTCoreConnectionStatusRequest,
    ) -> Result<Stream<SubscribeToIoTCoreConnectionStatusResponse>, IpcError> {
        let state = ctx.state.clone();
        let initial_state = ctx.state.clone();
        let stream = Stream::new(
            SubscribeToIoTCoreConnectionStatusResponse::default(),
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
        Ok(stream.with_initial(move || {
            let connected = *initial_state.cloud.connected.lock();
            vec![(
                IoTCoreConnectionStatusEvent::MODEL_TYPE,
                status_event(connected),
            )]
        }))
    }
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
