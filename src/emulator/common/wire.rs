//! Server-side helpers on the client's types, for the emulator only (the client build does
//! not carry them): the body of an `APPLICATION_ERROR` a server sends, and the event a
//! subscriber receives for a published message.

use serde_json::{Map, Value};

use crate::model::{
    BinaryMessage, IpcError, JsonMessage, MessageContext, PublishMessage,
    SubscriptionResponseMessage, SERVICE_SHAPE_ID,
};

impl IpcError {
    /// The `:content-type` to send with [`IpcError::to_payload`]'s body: `application/json`,
    /// or an unmodeled error's own content type.
    pub fn content_type(&self) -> &str {
        match self {
            IpcError::Unmodeled(e) => e.content_type.as_deref().unwrap_or("application/json"),
            _ => "application/json",
        }
    }

    /// Builds the `APPLICATION_ERROR` a server would send: the `service-model-type` header
    /// value and the body.
    ///
    /// Modeled errors: the Java nucleus body (the members plus `_service`, `_message` and
    /// `_errorCode`) or, when `lite`, the nucleus lite body (only `_message` and
    /// `_errorCode`). Unmodeled errors: their own model type and raw payload (or, if the
    /// payload is empty, `{"error": ..., "message": ...}`).
    pub fn to_payload(&self, lite: bool) -> (Option<String>, Vec<u8>) {
        if let IpcError::Unmodeled(e) = self {
            let body = if e.payload.is_empty() {
                let mut map = Map::new();
                map.insert("error".into(), Value::String("Unmodeled error".into()));
                map.insert("message".into(), Value::String(e.message.clone()));
                serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
            } else {
                e.payload.clone().into_bytes()
            };
            return (e.model_type.clone(), body);
        }
        let mut body = if lite { Map::new() } else { self.members() };
        if !lite {
            body.insert("_service".into(), Value::String(SERVICE_SHAPE_ID.into()));
        }
        body.insert("_message".into(), Value::String(self.message().to_owned()));
        let code = self.error_code().unwrap_or_default().to_owned();
        body.insert("_errorCode".into(), Value::String(code));
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        (self.model_type().map(str::to_owned), bytes)
    }
}

impl PublishMessage {
    /// The stream event a subscriber receives for this published message: the same
    /// JSON/binary content with `context.topic` set to `topic` (what the nucleus does).
    pub fn into_event(self, topic: impl Into<String>) -> SubscriptionResponseMessage {
        let context = Some(MessageContext::new().with_topic(topic));
        match self {
            PublishMessage::JsonMessage(m) => {
                SubscriptionResponseMessage::JsonMessage(JsonMessage { context, ..m })
            }
            PublishMessage::BinaryMessage(m) => {
                SubscriptionResponseMessage::BinaryMessage(BinaryMessage { context, ..m })
            }
        }
    }
}
