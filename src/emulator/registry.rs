//! The emulator's operation registry: the typed handler that serves each operation, and
//! what a handler answers ([`Outcome`]).
//!
//! The table itself, [`HANDLERS`](super::handlers::table::HANDLERS), is generated from
//! the service model by `tools/gen_model.py` into `handlers/table.rs`: one row per
//! operation, whose [`Run`] is [`unary`] or [`streaming`] instantiated with the
//! operation's model type. Each service area (`handlers/<area>.rs`) implements [`Unary`]
//! or [`Streaming`] for the operations it serves (a handler taking the typed request and
//! returning the typed response or an [`IpcError`]), so an operation without a handler
//! does not compile. What the emulator knows about each operation besides its handler
//! (authorization, lite support) is the generated `common/operations.rs`.

use std::borrow::Cow;
use std::cell::Cell;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::common::errors::{parse_request, service_error};
use super::conn::{Cleanup, StreamRef};
use super::state::CallContext;
use crate::model::{IpcError, Operation, Shape, StreamingOperation};

/// Runs one operation on a request body.
pub(crate) type Run = fn(&CallContext<'_>, &Body<'_>) -> Outcome;

/// A request's body: JSON (an empty payload reads as `{}`), read straight into the typed
/// request or, where a rule needs the raw members, into a [`Value`]. Decoding the typed
/// request from the bytes skips building a `Value` for every call (the emulator's largest
/// per-call cost, issue 12 point 3); whether the body is JSON at all is checked only when
/// no typed decoding has shown it (see [`is_json`](Self::is_json)).
pub(crate) struct Body<'a> {
    json: &'a [u8],
    /// Whether the body is JSON, once known.
    valid: Cell<Option<bool>>,
}

impl<'a> Body<'a> {
    /// The body of a request's payload.
    pub(crate) fn new(payload: &'a [u8]) -> Body<'a> {
        Body {
            json: crate::rpc::json_body(payload),
            valid: Cell::new(None),
        }
    }

    /// Whether the body is JSON (UTF-8 text holding one JSON value). A body that is not
    /// is answered as unparsable whatever the operation (`server.rs`), so handlers may
    /// treat any body as JSON.
    pub(crate) fn is_json(&self) -> bool {
        if let Some(valid) = self.valid.get() {
            return valid;
        }
        let valid = std::str::from_utf8(self.json)
            .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
        self.valid.set(Some(valid));
        valid
    }

    /// The body as a JSON value; `Null` when it is not JSON (see [`is_json`](Self::is_json)).
    pub(crate) fn value(&self) -> Value {
        let value = serde_json::from_slice(self.json);
        self.valid.set(Some(value.is_ok()));
        value.unwrap_or(Value::Null)
    }

    /// The body as the typed request, else `InvalidArgumentsError`
    /// `invalid <shape>: <why>`. The text of the error is the one decoding the `Value`
    /// gives (no line and column), and a body with a member twice decodes as the value
    /// would (the last one wins).
    pub(crate) fn typed<T: DeserializeOwned>(&self, shape: &str) -> Result<T, IpcError> {
        match serde_json::from_slice(self.json) {
            Ok(request) => {
                self.valid.set(Some(true));
                Ok(request)
            }
            Err(_) => parse_request(self.value(), shape),
        }
    }
}

/// A request/response operation the emulator serves.
pub(crate) trait Unary: Operation {
    /// Reads the request. By default the body must decode as the typed request, else
    /// `InvalidArgumentsError` `invalid <RequestShape>: <why>`; a handler overrides it
    /// where the server it mimics validates the raw body first.
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<Self::Request, IpcError> {
        body.typed(short_name::<Self::Request>())
    }

    /// Serves the request.
    fn serve(ctx: &CallContext<'_>, request: Self::Request) -> Result<Self::Response, IpcError>;
}

/// A streaming operation the emulator serves.
pub(crate) trait Streaming: StreamingOperation {
    /// Reads the request, as [`Unary::parse`].
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<Self::Request, IpcError> {
        body.typed(short_name::<Self::Request>())
    }

    /// Serves the request: the initial response and how to register the stream.
    fn serve(
        ctx: &CallContext<'_>,
        request: Self::Request,
    ) -> Result<Stream<Self::Response>, IpcError>;
}

/// The accepted start of a stream: its initial response, the registration run once the
/// response is on the wire, and events to write right after it.
pub(crate) struct Stream<R> {
    response: R,
    register: Box<dyn FnOnce(StreamRef) -> Cleanup + Send>,
    initial: Option<Initial>,
}

impl<R> Stream<R> {
    /// A stream answering `response`; `register` is called with the stream once the
    /// response is written (and before any event can be written to it).
    pub(crate) fn new(
        response: R,
        register: impl FnOnce(StreamRef) -> Cleanup + Send + 'static,
    ) -> Stream<R> {
        Stream {
            response,
            register: Box::new(register),
            initial: None,
        }
    }

    /// Events to write right after the stream is registered.
    pub(crate) fn with_initial(
        mut self,
        initial: impl FnOnce() -> Vec<(&'static str, bytes::Bytes)> + Send + 'static,
    ) -> Stream<R> {
        self.initial = Some(Box::new(initial));
        self
    }
}

/// The shape name without its namespace, as the texts of decoding errors name it.
fn short_name<T: Shape>() -> &'static str {
    T::MODEL_TYPE
        .strip_prefix("aws.greengrass#")
        .unwrap_or(T::MODEL_TYPE)
}

/// Reads the request with `parse`; a body that is not JSON never reaches the handler's
/// `serve` (the server answers it as unparsable), even when `parse` does not read it.
fn read<O: Operation>(
    ctx: &CallContext<'_>,
    body: &Body<'_>,
    parse: fn(&CallContext<'_>, &Body<'_>) -> Result<O::Request, IpcError>,
) -> Result<O::Request, IpcError> {
    let request = parse(ctx, body)?;
    if body.is_json() {
        Ok(request)
    } else {
        Err(service_error("unparsable request"))
    }
}

/// The [`Run`] of a request/response operation.
pub(crate) fn unary<O: Unary>(ctx: &CallContext<'_>, body: &Body<'_>) -> Outcome {
    match read::<O>(ctx, body, O::parse).and_then(|r| O::serve(ctx, r)) {
        Ok(response) => Outcome::response(&response),
        Err(e) => Outcome::Error(e),
    }
}

/// The [`Run`] of a streaming operation.
pub(crate) fn streaming<O: Streaming>(ctx: &CallContext<'_>, body: &Body<'_>) -> Outcome {
    match read::<O>(ctx, body, O::parse).and_then(|r| O::serve(ctx, r)) {
        Ok(stream) => {
            let outcome = Outcome::subscribe(&stream.response, stream.register);
            match stream.initial {
                Some(initial) => outcome.with_initial(initial),
                None => outcome,
            }
        }
        Err(e) => Outcome::Error(e),
    }
}

/// Registers a new stream with its service once the response is on the wire.
pub(crate) type Register = Box<dyn FnOnce(StreamRef) -> Cleanup + Send>;
/// Events written right after a stream's registration, before any other event.
pub(crate) type Initial = Box<dyn FnOnce() -> Vec<(&'static str, Bytes)> + Send>;

/// What a service answers to one request.
pub(crate) enum Outcome {
    /// A response (for a streaming operation, the stream then stays open: see `Subscribe`).
    Response {
        model_type: Cow<'static, str>,
        payload: Bytes,
    },
    /// A modeled (or unmodeled) error; ends the stream.
    Error(IpcError),
    /// The initial response of a streaming operation, and how to register the stream.
    Subscribe {
        model_type: Cow<'static, str>,
        payload: Bytes,
        register: Register,
        initial: Option<Initial>,
    },
}

impl Outcome {
    /// A response carrying `shape`.
    pub(crate) fn response<T: Shape>(shape: &T) -> Outcome {
        match crate::model::to_json(shape) {
            Ok(p) => Outcome::Response {
                model_type: Cow::Borrowed(T::MODEL_TYPE),
                payload: p.into(),
            },
            Err(e) => Outcome::Error(service_error(&format!(
                "cannot encode {}: {e}",
                T::MODEL_TYPE
            ))),
        }
    }

    /// A streaming response carrying `shape`; `register` is called with the stream once
    /// the response is written (and before any event can be written to it).
    pub(crate) fn subscribe<T: Shape>(
        shape: &T,
        register: impl FnOnce(StreamRef) -> Cleanup + Send + 'static,
    ) -> Outcome {
        match crate::model::to_json(shape) {
            Ok(p) => Outcome::Subscribe {
                model_type: Cow::Borrowed(T::MODEL_TYPE),
                payload: p.into(),
                register: Box::new(register),
                initial: None,
            },
            Err(e) => Outcome::Error(service_error(&format!(
                "cannot encode {}: {e}",
                T::MODEL_TYPE
            ))),
        }
    }
}

impl Outcome {
    /// Events to write right after the stream is registered (a streaming outcome only).
    pub(crate) fn with_initial(
        self,
        initial: impl FnOnce() -> Vec<(&'static str, Bytes)> + Send + 'static,
    ) -> Outcome {
        match self {
            Outcome::Subscribe {
                model_type,
                payload,
                register,
                ..
            } => Outcome::Subscribe {
                model_type,
                payload,
                register,
                initial: Some(Box::new(initial)),
            },
            other => other,
        }
    }
}
