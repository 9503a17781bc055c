//! Hand-written conveniences on top of the generated shapes.
//!
//! Serde in and out: `json_as::<T>()` reads a pub/sub or IoT Core payload into any
//! `T: DeserializeOwned`, `value_as::<T>()` a configuration value; `json_from(.., &value)`
//! publishes any `T: Serialize`. Failures are [`Error::Json`] naming `T`, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::*;
use crate::error::Error;

/// Reads `value` into a `T`, or says why not ([`Error::Json`] naming `T`).
fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|e| Error::json(std::any::type_name::<T>(), e))
}

/// Reads JSON text into a `T`, or says why not ([`Error::Json`] naming `T`).
fn from_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::json(std::any::type_name::<T>(), e))
}

/// `value` as a JSON document, or why not ([`Error::Json`] naming `T`).
fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::json(std::any::type_name::<T>(), e))
}

/// `value` as JSON text, or why not ([`Error::Json`] naming `T`).
fn to_json_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::json(std::any::type_name::<T>(), e))
}

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

/// Republishes a received message as it is (its `context` is dropped: servers ignore it
/// on publish).
///
/// ```
/// use ggipc::model::{PublishMessage, PublishToTopicRequest, SubscriptionResponseMessage};
/// let received = SubscriptionResponseMessage::new_json("in/t1", ggipc::serde_json::json!({"c": 1}));
/// let request = PublishToTopicRequest::new("out/t1", received);
/// assert_eq!(request.publish_message, PublishMessage::json(ggipc::serde_json::json!({"c": 1})));
/// ```
impl From<SubscriptionResponseMessage> for PublishMessage {
    fn from(message: SubscriptionResponseMessage) -> Self {
        match message {
            SubscriptionResponseMessage::JsonMessage(m) => {
                PublishMessage::JsonMessage(JsonMessage { context: None, ..m })
            }
            SubscriptionResponseMessage::BinaryMessage(m) => {
                PublishMessage::BinaryMessage(BinaryMessage { context: None, ..m })
            }
        }
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

    /// Publishes any serializable value to a local topic, as a JSON message.
    ///
    /// ```
    /// # fn main() -> Result<(), ggipc::Error> {
    /// use ggipc::model::PublishToTopicRequest;
    /// #[derive(serde::Serialize)]
    /// struct Reading { celsius: f64 }
    ///
    /// let request = PublishToTopicRequest::json_from("sensors/t1", &Reading { celsius: 21.5 })?;
    /// assert_eq!(request.publish_message.as_json(), Some(&ggipc::serde_json::json!({"celsius": 21.5})));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] when `value` cannot be serialized (e.g. a map with non-string keys).
    pub fn json_from<T: Serialize + ?Sized>(
        topic: impl Into<String>,
        value: &T,
    ) -> Result<Self, Error> {
        Ok(Self::json(topic, to_value(value)?))
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

    /// The concrete topic the message was published on (`context.topic`).
    ///
    /// Every server sets it on every event: the Java nucleus (`PubSubIPCEventStreamAgent`
    /// builds each event with a `MessageContext` holding the topic), nucleus lite
    /// (`modules/ggipcd/src/services/pubsub/subscribe_to_topic.c` always writes
    /// `context.topic`) and the emulator. If a server omitted it, this returns `""`
    /// ([`context_topic`](Self::context_topic) tells the two apart).
    ///
    /// What a subscription handler receives; `new_json`/`new_binary` build one (for a
    /// handler's unit test):
    ///
    /// ```
    /// use ggipc::model::SubscriptionResponseMessage;
    /// use ggipc::serde_json::json;
    ///
    /// let event = SubscriptionResponseMessage::new_json("factory/line1/temperature", json!({"c": 21.5}));
    /// assert_eq!(event.topic(), "factory/line1/temperature");
    /// assert!(event.is_json());
    /// assert_eq!(event.json(), Some(&json!({"c": 21.5})));
    /// assert_eq!(event.payload_bytes(), br#"{"c":21.5}"#);
    ///
    /// let raw = SubscriptionResponseMessage::new_binary("camera/frames", vec![1, 2, 3]);
    /// assert_eq!(raw.binary(), Some(&[1, 2, 3][..]));
    /// assert_eq!(raw.json(), None);
    /// ```
    pub fn topic(&self) -> &str {
        self.context_topic().unwrap_or_default()
    }

    /// `context.topic` as sent: `None` only if the server omitted it (see
    /// [`topic`](Self::topic)).
    pub fn context_topic(&self) -> Option<&str> {
        let context = match self {
            SubscriptionResponseMessage::JsonMessage(m) => m.context.as_ref(),
            SubscriptionResponseMessage::BinaryMessage(m) => m.context.as_ref(),
        };
        context.and_then(|c| c.topic.as_deref())
    }

    /// Reads the payload into any `T: DeserializeOwned`: a JSON message's document, or a
    /// binary message's bytes parsed as JSON text (an absent payload reads as `null`).
    ///
    /// ```
    /// # fn main() -> Result<(), ggipc::Error> {
    /// use ggipc::model::SubscriptionResponseMessage;
    /// use ggipc::serde_json::json;
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Reading { celsius: f64 }
    ///
    /// let event = SubscriptionResponseMessage::new_json("sensors/t1", json!({"celsius": 21.5}));
    /// assert_eq!(event.json_as::<Reading>()?, Reading { celsius: 21.5 });
    /// let text = SubscriptionResponseMessage::new_binary("sensors/t1", br#"{"celsius": 3}"#.to_vec());
    /// assert_eq!(text.json_as::<Reading>()?, Reading { celsius: 3.0 });
    ///
    /// // Not a Reading, or not JSON at all: an error naming the type, not a panic.
    /// let other = SubscriptionResponseMessage::new_json("sensors/t1", json!({"kelvin": 1}));
    /// assert!(matches!(other.json_as::<Reading>(), Err(ggipc::Error::Json { .. })));
    /// let jpeg = SubscriptionResponseMessage::new_binary("camera", vec![0xff, 0xd8]);
    /// assert!(jpeg.json_as::<Reading>().is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] (naming `T`) when the payload is not JSON or not a `T`.
    pub fn json_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        match self {
            SubscriptionResponseMessage::JsonMessage(m) => {
                from_value(m.message.as_ref().unwrap_or(&Value::Null))
            }
            SubscriptionResponseMessage::BinaryMessage(m) => match m.message.as_deref() {
                Some(bytes) => from_json_bytes(bytes),
                None => from_value(&Value::Null),
            },
        }
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
    pub fn mqtt_message(&self) -> &MqttMessage {
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

    /// Reads the payload, as JSON text, into any `T: DeserializeOwned` (see
    /// [`MqttMessage::json_as`]).
    ///
    /// # Errors
    /// [`Error::Json`] (naming `T`) when the payload is not JSON or not a `T`.
    pub fn json_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.mqtt_message().json_as()
    }
}

impl MqttMessage {
    /// Reads the payload, as JSON text, into any `T: DeserializeOwned`; an absent or
    /// empty payload is not JSON.
    ///
    /// ```
    /// # fn main() -> Result<(), ggipc::Error> {
    /// use ggipc::model::{IoTCoreMessage, MqttMessage};
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Command { open: bool }
    ///
    /// let message = IoTCoreMessage::from(MqttMessage::new("gate/cmd").with_payload(br#"{"open":true}"#.to_vec()));
    /// assert_eq!(message.json_as::<Command>()?, Command { open: true });
    /// let garbage = MqttMessage::new("gate/cmd").with_payload(b"open!".to_vec());
    /// assert!(matches!(garbage.json_as::<Command>(), Err(ggipc::Error::Json { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] (naming `T`) when the payload is not JSON or not a `T`.
    pub fn json_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json_bytes(self.payload.as_deref().unwrap_or_default())
    }
}

impl From<MqttMessage> for IoTCoreMessage {
    fn from(message: MqttMessage) -> Self {
        IoTCoreMessage::Message(message)
    }
}

impl PublishToIoTCoreRequest {
    /// Publishes bytes to an AWS IoT Core topic (the same as
    /// `new(topic_name, qos).with_payload(bytes)`).
    ///
    /// ```
    /// use ggipc::model::{PublishToIoTCoreRequest, Qos};
    /// let request = PublishToIoTCoreRequest::binary("telemetry/line1", Qos::AtLeastOnce, b"21.5".to_vec())
    ///     .with_retain(true);
    /// assert_eq!(request.payload.as_deref(), Some(&b"21.5"[..]));
    /// ```
    pub fn binary(topic_name: impl Into<String>, qos: Qos, bytes: impl Into<Vec<u8>>) -> Self {
        Self::new(topic_name, qos).with_payload(bytes)
    }

    /// Publishes a JSON document (as JSON text) to an AWS IoT Core topic.
    ///
    /// ```
    /// use ggipc::model::{PublishToIoTCoreRequest, Qos};
    /// let request = PublishToIoTCoreRequest::json("telemetry/line1", Qos::AtMostOnce, ggipc::serde_json::json!({"c": 21.5}));
    /// assert_eq!(request.payload.as_deref(), Some(&br#"{"c":21.5}"#[..]));
    /// ```
    pub fn json(topic_name: impl Into<String>, qos: Qos, value: impl Into<Value>) -> Self {
        // Writing a `Value` as JSON text cannot fail (its map keys are strings).
        let bytes = serde_json::to_vec(&value.into()).unwrap_or_default();
        Self::binary(topic_name, qos, bytes)
    }

    /// Publishes any serializable value, as JSON text, to an AWS IoT Core topic.
    ///
    /// ```
    /// # fn main() -> Result<(), ggipc::Error> {
    /// use ggipc::model::{PublishToIoTCoreRequest, Qos};
    /// #[derive(serde::Serialize)]
    /// struct Reading { celsius: f64 }
    ///
    /// let request = PublishToIoTCoreRequest::json_from("telemetry/t1", Qos::AtLeastOnce, &Reading { celsius: 21.5 })?;
    /// assert_eq!(request.payload.as_deref(), Some(&br#"{"celsius":21.5}"#[..]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] when `value` cannot be serialized (e.g. a map with non-string keys).
    pub fn json_from<T: Serialize + ?Sized>(
        topic_name: impl Into<String>,
        qos: Qos,
        value: &T,
    ) -> Result<Self, Error> {
        Ok(Self::binary(topic_name, qos, to_json_bytes(value)?))
    }
}

impl GetConfigurationRequest {
    /// Reads the component's whole configuration (an empty key path; `new([])` would
    /// not compile, its item type being unknown).
    ///
    /// ```
    /// use ggipc::model::GetConfigurationRequest;
    /// assert!(GetConfigurationRequest::all().key_path.is_empty());
    /// ```
    pub fn all() -> Self {
        Self::new(Vec::<String>::new())
    }
}

impl GetConfigurationResponse {
    /// Reads the value into any `T: DeserializeOwned` (an absent value reads as `null`,
    /// which suits an `Option<T>`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::{GetConfigurationRequest, Timestamp, UpdateConfigurationRequest};
    /// #[derive(serde::Deserialize)]
    /// struct Settings { interval_ms: u64 }
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// let value = ggipc::serde_json::json!({"interval_ms": 500});
    /// client.update_configuration(UpdateConfigurationRequest::new(Timestamp::now(), value))?;
    ///
    /// let settings: Settings = client.get_configuration(GetConfigurationRequest::all())?.value_as()?;
    /// assert_eq!(settings.interval_ms, 500);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Json`] (naming `T`) when the value is not a `T`.
    pub fn value_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_value(self.value.as_ref().unwrap_or(&Value::Null))
    }
}

impl SubscribeToConfigurationUpdateRequest {
    /// Subscribes to changes anywhere in the component's configuration (an empty key
    /// path; `new([])` would not compile, its item type being unknown).
    ///
    /// ```
    /// use ggipc::model::SubscribeToConfigurationUpdateRequest;
    /// assert!(SubscribeToConfigurationUpdateRequest::all().key_path.is_empty());
    /// ```
    pub fn all() -> Self {
        Self::new(Vec::<String>::new())
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
