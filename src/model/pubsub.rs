//! TEMPORARY stand-in for the generated pub/sub shapes (replaced by the model work).
#![allow(missing_docs)]
use super::{Operation, Shape, StreamingOperation};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct MessageContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct BinaryMessage {
    #[serde(skip_serializing_if = "Option::is_none", with = "b64opt", default)]
    pub message: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
}
mod b64opt {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v { Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)), None => s.serialize_none() }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let o: Option<String> = Option::deserialize(d)?;
        o.map(|s| base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PublishMessage {
    #[serde(rename = "jsonMessage")]
    JsonMessage(JsonMessage),
    #[serde(rename = "binaryMessage")]
    BinaryMessage(BinaryMessage),
}
impl PublishMessage {
    pub fn json(v: serde_json::Value) -> Self { PublishMessage::JsonMessage(JsonMessage { message: Some(v), context: None }) }
    pub fn binary(b: impl Into<Vec<u8>>) -> Self { PublishMessage::BinaryMessage(BinaryMessage { message: Some(b.into()), context: None }) }
}
pub type SubscriptionResponseMessage = PublishMessage;
impl SubscriptionResponseMessage {
    pub fn topic(&self) -> Option<&str> {
        match self { PublishMessage::JsonMessage(m) => m.context.as_ref()?.topic.as_deref(), PublishMessage::BinaryMessage(m) => m.context.as_ref()?.topic.as_deref() }
    }
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishToTopicRequest {
    pub topic: String,
    #[serde(rename = "publishMessage")]
    pub publish_message: PublishMessage,
}
impl PublishToTopicRequest {
    pub fn new(topic: impl Into<String>, m: PublishMessage) -> Self { Self { topic: topic.into(), publish_message: m } }
    pub fn json(topic: impl Into<String>, v: serde_json::Value) -> Self { Self::new(topic, PublishMessage::json(v)) }
    pub fn binary(topic: impl Into<String>, b: impl Into<Vec<u8>>) -> Self { Self::new(topic, PublishMessage::binary(b)) }
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct PublishToTopicResponse {}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReceiveMode {
    #[serde(rename = "RECEIVE_ALL_MESSAGES")]
    ReceiveAllMessages,
    #[serde(rename = "RECEIVE_MESSAGES_FROM_OTHERS")]
    ReceiveMessagesFromOthers,
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscribeToTopicRequest {
    pub topic: String,
    #[serde(rename = "receiveMode", skip_serializing_if = "Option::is_none")]
    pub receive_mode: Option<ReceiveMode>,
}
impl SubscribeToTopicRequest {
    pub fn new(topic: impl Into<String>) -> Self { Self { topic: topic.into(), receive_mode: None } }
    pub fn with_receive_mode(mut self, m: ReceiveMode) -> Self { self.receive_mode = Some(m); self }
}
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct SubscribeToTopicResponse {
    #[serde(rename = "topicName", skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
}
macro_rules! shape { ($($t:ty => $n:literal),*) => { $(impl Shape for $t { const MODEL_TYPE: &'static str = concat!("aws.greengrass#", $n); })* } }
shape!(PublishToTopicRequest => "PublishToTopicRequest", PublishToTopicResponse => "PublishToTopicResponse",
  SubscribeToTopicRequest => "SubscribeToTopicRequest", SubscribeToTopicResponse => "SubscribeToTopicResponse",
  PublishMessage => "SubscriptionResponseMessage");
pub struct PublishToTopic;
impl Operation for PublishToTopic { const NAME: &'static str = "PublishToTopic"; const OPERATION: &'static str = "aws.greengrass#PublishToTopic"; type Request = PublishToTopicRequest; type Response = PublishToTopicResponse; }
pub struct SubscribeToTopic;
impl Operation for SubscribeToTopic { const NAME: &'static str = "SubscribeToTopic"; const OPERATION: &'static str = "aws.greengrass#SubscribeToTopic"; type Request = SubscribeToTopicRequest; type Response = SubscribeToTopicResponse; }
impl StreamingOperation for SubscribeToTopic { type Event = SubscriptionResponseMessage; }
