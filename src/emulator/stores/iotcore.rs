//! The IoT Core stand-in's store: what components published to the cloud, the
//! connection state and spool, and the cloud-side subscriptions.

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::emulator::common::topic::filter_matches;
use crate::emulator::conn::StreamRef;
use crate::model::{
    IoTCoreConnectionStatusEvent, IoTCoreMessage, PayloadFormat, Qos, Shape, UserProperty,
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
    pub qos: Qos,
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

pub(crate) struct Subscriber {
    pub(crate) filter: String,
    pub(crate) stream: StreamRef,
}

/// The cloud stand-in.
pub(crate) struct Cloud {
    pub(crate) connected: Mutex<bool>,
    published: Mutex<Vec<CloudMessage>>,
    pub(crate) spooled: Mutex<Vec<CloudMessage>>,
    pub(crate) subscribers: Mutex<Vec<Subscriber>>,
    pub(crate) status_subscribers: Mutex<Vec<StreamRef>>,
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

pub(crate) fn status_event(connected: bool) -> bytes::Bytes {
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

    pub(crate) fn send_to_cloud(&self, message: CloudMessage) {
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

    pub(crate) fn deliver_message(&self, event: &Value, topic: &str) -> usize {
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

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
