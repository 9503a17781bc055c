//! Layer 4: the typed shapes of the Greengrass Core IPC service (serde). Pure.
//!
//! SKELETON: the traits below are the contract the client and the emulator code against.

use serde::{de::DeserializeOwned, Serialize};

/// A shape sent on the wire: its `service-model-type` header value.
pub trait Shape: Serialize + DeserializeOwned + Send + 'static {
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

mod errors;
mod pubsub;
pub use errors::*;
pub use pubsub::*;
