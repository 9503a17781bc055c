//! Scripted replies: what a script sees of a request and what it answers (see
//! `Emulator::replies`).

use serde_json::Value;

use crate::model::IpcError;

/// What a scripted operation answers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Reply {
    /// A response with this JSON body and model type (`aws.greengrass#…Response`).
    Response {
        /// The response shape id.
        model_type: String,
        /// The JSON body.
        body: Value,
    },
    /// An error answer.
    Error(IpcError),
    /// The initial response of a streaming operation: the stream stays open and the test
    /// pushes events with [`RepliesHandle::push_event`](crate::emulator::RepliesHandle::push_event).
    Stream {
        /// The response shape id.
        model_type: String,
        /// The JSON body.
        body: Value,
    },
}

impl Reply {
    /// A response carrying `shape`.
    pub fn response<T: crate::model::Shape>(shape: &T) -> Reply {
        Reply::Response {
            model_type: T::MODEL_TYPE.to_owned(),
            body: to_value(shape),
        }
    }

    /// A streaming operation's initial response carrying `shape`; the stream stays open.
    pub fn stream<T: crate::model::Shape>(shape: &T) -> Reply {
        Reply::Stream {
            model_type: T::MODEL_TYPE.to_owned(),
            body: to_value(shape),
        }
    }

    /// An error answer.
    pub fn error(error: IpcError) -> Reply {
        Reply::Error(error)
    }
}

fn to_value<T: serde::Serialize>(shape: &T) -> Value {
    serde_json::to_value(shape).unwrap_or(Value::Null)
}

/// A request as a script sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScriptedRequest {
    /// The calling component.
    pub component: String,
    /// The short operation name.
    pub operation: String,
    /// The request JSON.
    pub body: Value,
}
