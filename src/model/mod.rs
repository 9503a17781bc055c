//! The service model: the typed shapes of the Greengrass Core IPC service (serde). Pure.
//!
//! Every structure, union and enum of the service model is a Rust type of the same name
//! re-exported here (`PublishToTopicRequest`, `PublishMessage`, ...), grouped by
//! service area in submodules; an all-caps acronym is written as one word (the model's
//! `QOS`, `MQTTMessage` and `MQTTCredential` are [`Qos`], [`MqttMessage`] and
//! [`MqttCredential`]), while names derived from operations keep the service's spelling
//! (`PublishToIoTCoreRequest`). The wire is unchanged: [`Shape::MODEL_TYPE`] is the
//! model's name (`aws.greengrass#MQTTMessage`). Each of the 35 operations is a unit struct implementing
//! [`Operation`] (and [`StreamingOperation`] for the 7 streaming ones), e.g.
//! [`PublishToTopic`]; [`OPERATIONS`] lists them all with their authorization service.
//! Errors are in [`errors`]: one struct per modeled error and [`IpcError`].
//!
//! # Enums
//!
//! A string enum of the service ([`Qos`], [`ReportedLifecycleState`], [`ReceiveMode`], ...)
//! is taken as itself, so a misspelled value does not compile:
//!
//! ```compile_fail
//! let request = ggipc::model::UpdateStateRequest::new("RUNNNING"); // a typo: E0308
//! ```
//!
//! ```
//! use ggipc::model::{PublishToIoTCoreRequest, Qos, ReportedLifecycleState, UpdateStateRequest};
//! let running = UpdateStateRequest::new(ReportedLifecycleState::Running);
//! assert_eq!(running.state.as_str(), "RUNNING");
//!
//! // A value the server sends that this crate does not know still decodes...
//! let from_server: PublishToIoTCoreRequest =
//!     ggipc::serde_json::from_str(r#"{"topicName": "t", "qos": "2"}"#).unwrap();
//! assert_eq!(from_server.qos, Qos::Unknown("2".into()));
//! // ...and one is sent only explicitly.
//! let exactly_once = PublishToIoTCoreRequest::new("t", Qos::from_wire("2"));
//! assert!(!exactly_once.qos.is_known());
//! ```
//!
//! # Requests by service area
//!
//! Every request has a `new` taking its required members and a `with_<member>` setter
//! for each optional one; a few areas add shortcuts (`PublishToTopicRequest::json`,
//! `UpdateConfigurationRequest::merge`, ...). One runnable example per area, each against
//! the in-process [emulator](crate::emulator) (feature `emulator`).
//!
//! **Local pub/sub** ([`PublishToTopicRequest`], [`SubscribeToTopicRequest`]):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{PublishToTopicRequest, ReceiveMode, SubscribeToTopicRequest};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! let _sub = client.subscribe_to_topic(
//!     SubscribeToTopicRequest::new("sensors/+").with_receive_mode(ReceiveMode::ReceiveMessagesFromOthers),
//!     |event: ggipc::model::SubscriptionResponseMessage| println!("{:?}", event.json()),
//! )?;
//! client.publish_to_topic(PublishToTopicRequest::json("sensors/t1", ggipc::serde_json::json!(21.5)))?;
//! client.publish_to_topic(PublishToTopicRequest::binary("sensors/raw", b"\x01\x02".to_vec()))?;
//! # Ok(()) }
//! ```
//!
//! **AWS IoT Core MQTT** ([`PublishToIoTCoreRequest`], [`SubscribeToIoTCoreRequest`]):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{IoTCoreMessage, PublishToIoTCoreRequest, SubscribeToIoTCoreRequest, Qos};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! let (tx, rx) = crossbeam_channel::unbounded();
//! let _sub = client.subscribe_to_iot_core(
//!     SubscribeToIoTCoreRequest::new("commands/#", Qos::AtLeastOnce),
//!     move |m: IoTCoreMessage| tx.send((m.topic().to_owned(), m.payload().to_vec())).unwrap(),
//! )?;
//! client.publish_to_iot_core(
//!     PublishToIoTCoreRequest::new("telemetry/t1", Qos::AtMostOnce).with_payload(b"21.5".to_vec()),
//! )?;
//! assert_eq!(emu.cloud().published()[0].topic, "telemetry/t1");
//! emu.cloud().inject_message("commands/reboot", b"now".to_vec());
//! let got = rx.recv_timeout(std::time::Duration::from_secs(5))?;
//! assert_eq!(got, ("commands/reboot".to_owned(), b"now".to_vec()));
//! # Ok(()) }
//! ```
//!
//! **Configuration** ([`GetConfigurationRequest`], [`UpdateConfigurationRequest`]):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{GetConfigurationRequest, UpdateConfigurationRequest};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! client.update_configuration(UpdateConfigurationRequest::merge(["limits"], ggipc::serde_json::json!({"max": 5})))?;
//! let limits = client.get_configuration(GetConfigurationRequest::new(["limits"]))?;
//! assert_eq!(limits.value, Some(ggipc::serde_json::json!({"max": 5})));
//! // A leaf comes back as `{name: value}`, as the nucleus answers it:
//! let max = client.get_configuration(GetConfigurationRequest::new(["limits", "max"]))?;
//! assert_eq!(max.value, Some(ggipc::serde_json::json!({"max": 5})));
//! # Ok(()) }
//! ```
//!
//! **Lifecycle** ([`UpdateStateRequest`], [`DeferComponentUpdateRequest`], ...):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{LifecycleState, ReportedLifecycleState, UpdateStateRequest};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! client.update_state(UpdateStateRequest::new(ReportedLifecycleState::Running))?;
//! assert_eq!(emu.device().component_state(emu.component_name()), Some(LifecycleState::Running));
//! # Ok(()) }
//! ```
//!
//! **Secrets** ([`GetSecretValueRequest`]):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::emulator::{Emulator, Secret};
//! use ggipc::model::GetSecretValueRequest;
//! let emu = Emulator::builder()
//!     .permissive_component("com.example.App", "token-1")
//!     .secret(Secret::string("db-password", "hunter2"))
//!     .start()?;
//! let client = emu.connect()?;
//! let secret = client.get_secret_value(GetSecretValueRequest::new("db-password"))?;
//! assert_eq!(secret.secret_value.as_string(), Some("hunter2"));
//! # Ok(()) }
//! ```
//!
//! **Shadows** ([`UpdateThingShadowRequest`], [`GetThingShadowRequest`], ...):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{GetThingShadowRequest, UpdateThingShadowRequest};
//! use ggipc::serde_json::json;
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! let update = json!({"state": {"reported": {"door": "open"}}});
//! client.update_thing_shadow(UpdateThingShadowRequest::json("gate", &update).with_shadow_name("status"))?;
//! let shadow = client.get_thing_shadow(GetThingShadowRequest::new("gate").with_shadow_name("status"))?;
//! assert_eq!(shadow.document()?["state"]["reported"]["door"], "open");
//! # Ok(()) }
//! ```
//!
//! **Deployments and components** (the CLI operations: [`ListComponentsRequest`],
//! [`GetComponentDetailsRequest`], [`CreateLocalDeploymentRequest`], ...):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{GetComponentDetailsRequest, ListComponentsRequest};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! let listed = client.list_components(ListComponentsRequest::new())?;
//! assert!(listed.components.unwrap_or_default().iter().any(|c| c.component_name == emu.component_name()));
//! let details = client.get_component_details(GetComponentDetailsRequest::new(emu.component_name()))?;
//! assert_eq!(details.component_details.component_name, emu.component_name());
//! # Ok(()) }
//! ```
//!
//! **Client device auth** ([`VerifyClientDeviceIdentityRequest`],
//! [`GetClientDeviceAuthTokenRequest`], [`AuthorizeClientDeviceActionRequest`], ...):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::model::{ClientDeviceCredential, VerifyClientDeviceIdentityRequest};
//! # let emu = ggipc::emulator::Emulator::start()?;
//! # let client = emu.connect()?;
//! let pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
//! let request = VerifyClientDeviceIdentityRequest::new(ClientDeviceCredential::ClientDeviceCertificate(pem.into()));
//! assert!(client.verify_client_device_identity(request)?.is_valid_client_device);
//! # Ok(()) }
//! ```
//!
//! **Metrics** ([`PutComponentMetricRequest`]; the nucleus accepts it only from
//! components named `aws.…`):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::emulator::Emulator;
//! use ggipc::model::{Metric, MetricUnitType, PutComponentMetricRequest};
//! let emu = Emulator::builder().permissive_component("aws.example.Probe", "token-1").start()?;
//! let client = emu.connect()?;
//! client.put_component_metric(PutComponentMetricRequest::new([Metric::new("queued", MetricUnitType::Count, 3.0)]))?;
//! assert_eq!(emu.records().metrics()[0].1.name, "queued");
//! # Ok(()) }
//! ```
//!
//! **Token validation** ([`ValidateAuthorizationTokenRequest`]; only
//! `aws.greengrass.StreamManager` may call it):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ggipc::emulator::Emulator;
//! use ggipc::model::ValidateAuthorizationTokenRequest;
//! let emu = Emulator::builder()
//!     .permissive_component("aws.greengrass.StreamManager", "stream-manager-token")
//!     .permissive_component("com.example.App", "app-token")
//!     .start()?;
//! let client = emu.connect()?; // as the first component, the stream manager
//! let answer = client.validate_authorization_token(ValidateAuthorizationTokenRequest::new("app-token"))?;
//! assert!(answer.is_valid);
//! # Ok(()) }
//! ```
//!
//! # Encoding
//!
//! Shapes serialize to the exact JSON of the official SDKs:
//! * member keys are the Smithy member names (fields are snake_case with explicit renames);
//! * absent optional members are omitted, never `null`; `null` on input means absent;
//! * unknown members are ignored; unknown enum values are kept (`Unknown(String)`);
//! * blobs are `Vec<u8>`, standard padded base64 on the wire;
//! * timestamps are [`Timestamp`] (epoch seconds, always written with a fraction);
//! * documents are [`serde_json::Value`] (nulls inside preserved);
//! * unions are enums with exactly one key on the wire;
//! * required members of shapes received from the server (responses, stream events and
//!   what they contain) decode to their default value when missing or `null`, where the type
//!   has one (strings, numbers, booleans, lists, maps, blobs, timestamps), so that a sloppy
//!   server does not break decoding — the Python SDK is equally tolerant.
//!
//! The area modules and `operations.rs` are generated by `tools/gen_model.py` from the
//! machine-readable model (`tools/model/greengrass-ipc-model.json`); `errors.rs`, `encoding.rs`, `timestamp.rs` and `helpers.rs` are
//! written by hand.

use serde::{de::DeserializeOwned, Serialize};

mod encoding;
#[cfg(feature = "emulator")]
pub(crate) use encoding::to_json;
pub(crate) use encoding::write_json;
mod helpers;
mod operations;
mod timestamp;

pub mod cli;
pub mod clientdevices;
pub mod configuration;
pub mod errors;
pub mod iotcore;
pub mod lifecycle;
pub mod metrics;
pub mod pubsub;
pub mod secrets;
pub mod shadows;
pub mod tokens;

pub use cli::*;
pub use clientdevices::*;
pub use configuration::*;
pub use errors::*;
pub use iotcore::*;
pub use lifecycle::*;
pub use metrics::*;
pub use operations::OPERATIONS;
pub use pubsub::*;
pub use secrets::*;
pub use shadows::*;
pub use timestamp::Timestamp;
pub use tokens::*;

/// A shape sent on the wire: its `service-model-type` header value.
pub trait Shape: Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static {
    /// The shape id, e.g. `aws.greengrass#PublishToTopicRequest`.
    const MODEL_TYPE: &'static str;
}

/// One operation of the service.
pub trait Operation {
    /// Short operation name, e.g. `PublishToTopic`.
    const NAME: &'static str;
    /// Value of the `operation` header, e.g. `aws.greengrass#PublishToTopic`.
    const OPERATION: &'static str;
    /// The request shape.
    type Request: Shape;
    /// The (initial) response shape.
    type Response: Shape;
}

/// An operation whose stream carries events after the initial response.
pub trait StreamingOperation: Operation {
    /// The event union delivered to the subscription handler.
    type Event: Shape;
}

/// Static description of one operation (see [`OPERATIONS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationInfo {
    /// Short name, e.g. `PublishToTopic` (same as [`Operation::NAME`]).
    pub name: &'static str,
    /// Value of the `operation` header, e.g. `aws.greengrass#PublishToTopic`.
    pub operation: &'static str,
    /// Service area: `pubsub`, `iotcore`, `lifecycle`, `configuration`, `secrets`,
    /// `shadows`, `cli`, `clientdevices`, `metrics` or `tokens` (the submodule name).
    pub area: &'static str,
    /// Whether the operation streams events after its initial response.
    pub streaming: bool,
    /// Model type of the request shape.
    pub request: &'static str,
    /// Model type of the (initial) response shape.
    pub response: &'static str,
    /// Model type of the stream event union, for streaming operations.
    pub event: Option<&'static str>,
    /// Model types of the errors the model lists (servers may send others).
    pub errors: &'static [&'static str],
    /// The `accessControl` service identifier that authorizes the operation, e.g.
    /// `aws.greengrass.ipc.pubsub`; `None` when no policy is consulted (including
    /// `ValidateAuthorizationToken`, which is restricted to a fixed caller).
    pub auth_service: Option<&'static str>,
    /// Template of the resource string checked against policies, e.g. `{topic}`.
    pub auth_resource: Option<&'static str>,
    /// One-line summary.
    pub summary: &'static str,
}

/// Looks an operation up by short name (`PublishToTopic`) or operation header value
/// (`aws.greengrass#PublishToTopic`).
pub fn operation_info(name: &str) -> Option<&'static OperationInfo> {
    OPERATIONS
        .iter()
        .find(|op| op.name == name || op.operation == name)
}
