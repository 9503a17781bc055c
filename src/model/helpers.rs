//! Hand-written conveniences on top of the generated shapes.

use serde_json::Value;

use super::*;

impl PublishMessage {
    /// A JSON message (`{"jsonMessage": {"message": value}}`).
    pub fn json(value: impl Into<Value>) -> Self {
        PublishMessage::JsonMessage(JsonMessage::new().with_message(value))
    }

    /// A binary message (`{"binaryMessage": {"message": "<base64>"}}`).
    pub fn binary(bytes: impl Into<Vec<u8>>) -> Self {
        PublishMessage::BinaryMessage(BinaryMessage::new().with_message(bytes))
    }

    /// The JSON document, if this is a JSON message with one.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            PublishMessage::JsonMessage(m) => m.message.as_ref(),
            _ => None,
        }
    }

    /// The bytes, if this is a binary message with a payload.
    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            PublishMessage::BinaryMessage(m) => m.message.as_deref(),
            _ => None,
        }
    }
}

impl From<JsonMessage> for PublishMessage {
    fn from(message: JsonMessage) -> Self {
        PublishMessage::JsonMessage(message)
    }
}

impl From<BinaryMessage> for PublishMessage {
    fn from(message: BinaryMessage) -> Self {
        PublishMessage::BinaryMessage(message)
    }
}

impl PublishToTopicRequest {
    /// Publishes a JSON document to a local topic.
    ///
    /// ```
    /// use ggipc::model::{PublishToTopicRequest, PublishMessage};
    /// let request = PublishToTopicRequest::json("factory/line1/status", ggipc::serde_json::json!({"ok": true}));
    /// assert_eq!(request.topic, "factory/line1/status");
    /// assert_eq!(request.publish_message, PublishMessage::json(ggipc::serde_json::json!({"ok": true})));
    /// ```
    pub fn json(topic: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(topic, PublishMessage::json(value))
    }

    /// Publishes bytes to a local topic.
    ///
    /// ```
    /// let request = ggipc::model::PublishToTopicRequest::binary("camera/frames", vec![0xff, 0xd8]);
    /// assert_eq!(request.publish_message.as_binary(), Some(&[0xff, 0xd8][..]));
    /// ```
    pub fn binary(topic: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(topic, PublishMessage::binary(bytes))
    }
}

impl SubscriptionResponseMessage {
    /// A JSON event as the server sends it, with `context.topic` set.
    pub fn new_json(topic: impl Into<String>, value: impl Into<Value>) -> Self {
        SubscriptionResponseMessage::JsonMessage(
            JsonMessage::new()
                .with_message(value)
                .with_context(MessageContext::new().with_topic(topic)),
        )
    }

    /// A binary event as the server sends it, with `context.topic` set.
    pub fn new_binary(topic: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        SubscriptionResponseMessage::BinaryMessage(
            BinaryMessage::new()
                .with_message(bytes)
                .with_context(MessageContext::new().with_topic(topic)),
        )
    }

    /// The concrete topic the message was published on (`context.topic`), if present.
    ///
    /// What a subscription handler receives; `new_json`/`new_binary` build one (for a
    /// handler's unit test):
    ///
    /// ```
    /// use ggipc::model::SubscriptionResponseMessage;
    /// use ggipc::serde_json::json;
    ///
    /// let event = SubscriptionResponseMessage::new_json("factory/line1/temperature", json!({"c": 21.5}));
    /// assert_eq!(event.topic(), Some("factory/line1/temperature"));
    /// assert!(event.is_json());
    /// assert_eq!(event.json(), Some(&json!({"c": 21.5})));
    /// assert_eq!(event.payload_bytes(), br#"{"c":21.5}"#);
    ///
    /// let raw = SubscriptionResponseMessage::new_binary("camera/frames", vec![1, 2, 3]);
    /// assert_eq!(raw.binary(), Some(&[1, 2, 3][..]));
    /// assert_eq!(raw.json(), None);
    /// ```
    pub fn topic(&self) -> Option<&str> {
        let context = match self {
            SubscriptionResponseMessage::JsonMessage(m) => m.context.as_ref(),
            SubscriptionResponseMessage::BinaryMessage(m) => m.context.as_ref(),
        };
        context.and_then(|c| c.topic.as_deref())
    }

    /// The JSON document, if this is a JSON message with one.
    pub fn json(&self) -> Option<&Value> {
        match self {
            SubscriptionResponseMessage::JsonMessage(m) => m.message.as_ref(),
            _ => None,
        }
    }

    /// The bytes, if this is a binary message with a payload.
    pub fn binary(&self) -> Option<&[u8]> {
        match self {
            SubscriptionResponseMessage::BinaryMessage(m) => m.message.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a JSON message.
    pub fn is_json(&self) -> bool {
        matches!(self, SubscriptionResponseMessage::JsonMessage(_))
    }

    /// The payload as bytes whatever the kind: a binary message's bytes, or a JSON
    /// message's document serialized as JSON text (empty if absent).
    pub fn payload_bytes(&self) -> Vec<u8> {
        match self {
            SubscriptionResponseMessage::JsonMessage(m) => m
                .message
                .as_ref()
                .and_then(|v| serde_json::to_vec(v).ok())
                .unwrap_or_default(),
            SubscriptionResponseMessage::BinaryMessage(m) => m.message.clone().unwrap_or_default(),
        }
    }
}

impl IoTCoreMessage {
    /// The MQTT message carried by this event.
    pub fn mqtt_message(&self) -> &MQTTMessage {
        match self {
            IoTCoreMessage::Message(m) => m,
        }
    }

    /// The topic the message was received on.
    pub fn topic(&self) -> &str {
        &self.mqtt_message().topic_name
    }

    /// The payload bytes (empty if absent).
    pub fn payload(&self) -> &[u8] {
        self.mqtt_message().payload.as_deref().unwrap_or_default()
    }
}

impl From<MQTTMessage> for IoTCoreMessage {
    fn from(message: MQTTMessage) -> Self {
        IoTCoreMessage::Message(message)
    }
}

impl PublishToIoTCoreRequest {
    /// Publishes `payload` to an AWS IoT Core topic with the given QoS.
    ///
    /// ```
    /// use ggipc::model::{PublishToIoTCoreRequest, QOS};
    /// let request = PublishToIoTCoreRequest::with_payload_bytes("telemetry/line1", QOS::AtLeastOnce, b"21.5".to_vec())
    ///     .with_retain(true);
    /// assert_eq!(request.payload.as_deref(), Some(&b"21.5"[..]));
    /// ```
    pub fn with_payload_bytes(
        topic_name: impl Into<String>,
        qos: QOS,
        payload: impl Into<Vec<u8>>,
    ) -> Self {
        Self::new(topic_name, qos).with_payload(payload)
    }
}

impl SecretValue {
    /// The secret as text, if it is a string secret.
    ///
    /// ```
    /// use ggipc::model::SecretValue;
    /// assert_eq!(SecretValue::SecretString("hunter2".into()).as_string(), Some("hunter2"));
    /// assert_eq!(SecretValue::SecretBinary(vec![1]).as_string(), None);
    /// ```
    pub fn as_string(&self) -> Option<&str> {
        match self {
            SecretValue::SecretString(s) => Some(s),
            _ => None,
        }
    }

    /// The secret as bytes, whatever its kind (a string secret's UTF-8 bytes).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SecretValue::SecretString(s) => s.as_bytes(),
            SecretValue::SecretBinary(b) => b,
        }
    }
}

impl GetThingShadowResponse {
    /// The shadow document parsed as JSON.
    pub fn document(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }
}

impl UpdateThingShadowRequest {
    /// An update request whose payload is the serialized JSON `document`.
    ///
    /// ```
    /// use ggipc::model::UpdateThingShadowRequest;
    /// let update = ggipc::serde_json::json!({"state": {"reported": {"door": "open"}}});
    /// let request = UpdateThingShadowRequest::json("gate", &update).with_shadow_name("status");
    /// assert_eq!(request.payload, br#"{"state":{"reported":{"door":"open"}}}"#);
    /// ```
    pub fn json(thing_name: impl Into<String>, document: &Value) -> Self {
        Self::new(thing_name, serde_json::to_vec(document).unwrap_or_default())
    }
}

impl UpdateConfigurationRequest {
    /// Merges `value` at `key_path` with the current time as the update timestamp.
    ///
    /// ```
    /// use ggipc::model::UpdateConfigurationRequest;
    /// let request = UpdateConfigurationRequest::merge(["limits"], ggipc::serde_json::json!({"max": 5}));
    /// assert_eq!(request.key_path, Some(vec!["limits".to_owned()]));
    /// assert_eq!(request.value_to_merge, ggipc::serde_json::json!({"max": 5}));
    /// ```
    pub fn merge<S: Into<String>>(
        key_path: impl IntoIterator<Item = S>,
        value: impl Into<Value>,
    ) -> Self {
        Self::new(Timestamp::now(), value).with_key_path(key_path)
    }
}

impl From<ConnectionStatusEvent> for IoTCoreConnectionStatusEvent {
    fn from(event: ConnectionStatusEvent) -> Self {
        IoTCoreConnectionStatusEvent::ConnectionStatusEvent(event)
    }
}

impl IoTCoreConnectionStatusEvent {
    /// The connection status carried by this event.
    pub fn status(&self) -> &ConnectionStatus {
        match self {
            IoTCoreConnectionStatusEvent::ConnectionStatusEvent(e) => &e.status,
        }
    }
}
