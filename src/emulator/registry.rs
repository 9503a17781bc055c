//! The emulator's operation registry: what it knows about each operation and the typed
//! handler that serves it.
//!
//! The table itself, [`OPERATION_FACTS`](super::operations::OPERATION_FACTS), is generated
//! from the service model by `tools/gen_model.py` into `operations.rs`: one row per
//! operation, whose `run` is [`unary`] or [`streaming`] instantiated with the operation's
//! model type. Each service area implements [`Unary`] or [`Streaming`] for the operations
//! it serves (a handler taking the typed request and returning the typed response or an
//! [`IpcError`]), so an operation without a handler does not compile.

use serde_json::Value;

use super::operations::OPERATION_FACTS;
use super::server::{Cleanup, Initial, Outcome, StreamRef};
use super::{parse_request, CallContext};
use crate::model::{IpcError, Operation, Shape, StreamingOperation};

/// Runs one operation on a request body (`{}` when the body was empty).
pub(crate) type Run = fn(&CallContext<'_>, Value) -> Outcome;

/// A request/response operation the emulator serves.
pub(crate) trait Unary: Operation {
    /// Reads the request. By default the body must decode as the typed request, else
    /// `InvalidArgumentsError` `invalid <RequestShape>: <why>`; a handler overrides it
    /// where the server it mimics validates the raw body first.
    fn parse(_ctx: &CallContext<'_>, request: Value) -> Result<Self::Request, IpcError> {
        parse_request(request, short_name::<Self::Request>())
    }

    /// Serves the request.
    fn serve(ctx: &CallContext<'_>, request: Self::Request) -> Result<Self::Response, IpcError>;
}

/// A streaming operation the emulator serves.
pub(crate) trait Streaming: StreamingOperation {
    /// Reads the request, as [`Unary::parse`].
    fn parse(_ctx: &CallContext<'_>, request: Value) -> Result<Self::Request, IpcError> {
        parse_request(request, short_name::<Self::Request>())
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

/// The [`Run`] of a request/response operation.
pub(crate) fn unary<O: Unary>(ctx: &CallContext<'_>, request: Value) -> Outcome {
    match O::parse(ctx, request).and_then(|r| O::serve(ctx, r)) {
        Ok(response) => Outcome::response(&response),
        Err(e) => Outcome::Error(e),
    }
}

/// The [`Run`] of a streaming operation.
pub(crate) fn streaming<O: Streaming>(ctx: &CallContext<'_>, request: Value) -> Outcome {
    match O::parse(ctx, request).and_then(|r| O::serve(ctx, r)) {
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

/// What the emulator knows about one operation (one row of the generated table).
pub(crate) struct OperationFacts {
    /// Short name, e.g. `PublishToTopic`.
    pub(crate) name: &'static str,
    /// Service area (the emulator module that serves it).
    #[allow(dead_code)]
    pub(crate) area: &'static str,
    /// Whether the operation streams events.
    #[allow(dead_code)]
    pub(crate) streaming: bool,
    /// The `accessControl` service identifier whose policies authorize it.
    pub(crate) service: Option<&'static str>,
    /// Template of the resource checked against policies, e.g. `{topic}`.
    #[allow(dead_code)]
    pub(crate) resource: Option<&'static str>,
    /// Whether the service's policy resources use MQTT wildcards.
    pub(crate) mqtt_matching: bool,
    /// Whether an `accessControl` policy may name it (false for `CancelLocalDeployment`,
    /// which the nucleus does not register under its service).
    pub(crate) grantable: bool,
    /// Whether the nucleus checks anything at all (a policy or a fixed caller).
    pub(crate) checked: bool,
    /// The only callers allowed, for operations restricted to fixed components.
    pub(crate) fixed_callers: &'static [&'static str],
    /// Whether nucleus lite 2.6.0 serves it.
    pub(crate) lite: bool,
    /// Its handler.
    pub(crate) run: Run,
}

/// The facts of one operation by short name.
pub(crate) fn facts(name: &str) -> Option<&'static OperationFacts> {
    OPERATION_FACTS.iter().find(|f| f.name == name)
}

/// The operations a policy under `service` may name, in model order; `None` for an
/// unknown service identifier.
pub(crate) fn grantable_operations(service: &str) -> Option<Vec<&'static str>> {
    let ops: Vec<&'static str> = OPERATION_FACTS
        .iter()
        .filter(|f| f.grantable && f.service == Some(service))
        .map(|f| f.name)
        .collect();
    (!ops.is_empty()).then_some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OPERATIONS;

    #[test]
    fn the_emulator_table_agrees_with_the_model_table() {
        assert_eq!(OPERATION_FACTS.len(), OPERATIONS.len());
        for (facts, info) in OPERATION_FACTS.iter().zip(OPERATIONS) {
            assert_eq!(facts.name, info.name);
            assert_eq!(facts.area, info.area);
            assert_eq!(facts.streaming, info.streaming);
            assert_eq!(facts.service, info.auth_service, "{}", info.name);
            assert_eq!(facts.resource, info.auth_resource, "{}", info.name);
        }
    }

    #[test]
    fn policy_facts() {
        let cli = grantable_operations("aws.greengrass.Cli").unwrap();
        assert!(cli.contains(&"ListComponents") && !cli.contains(&"CancelLocalDeployment"));
        assert_eq!(
            facts("CancelLocalDeployment").unwrap().service,
            Some("aws.greengrass.Cli")
        );
        assert!(grantable_operations("aws.greengrass.ipc.nothing").is_none());
        assert!(!facts("UpdateState").unwrap().checked);
        let token = facts("ValidateAuthorizationToken").unwrap();
        assert!(token.checked && token.service.is_none());
        assert_eq!(token.fixed_callers, ["aws.greengrass.StreamManager"]);
        assert!(facts("PublishToIoTCore").unwrap().mqtt_matching);
    }
}
