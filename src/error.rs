//! The one public error type and its parts.

use std::io;
use std::sync::Arc;

use crate::codec::CodecError;
use crate::model::IpcError;
use crate::rpc::{ProtocolError, RpcMessage};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call.
///
/// Branch on the kind of failure with the helpers ([`Error::is_timeout`],
/// [`Error::is_connection_lost`], [`Error::as_service_error`], [`Error::is_retryable`]) or
/// match the variants. Errors returned by the IPC service itself are [`Error::Service`].
///
/// A call the component's recipe does not grant fails with the service's
/// `UnauthorizedError`. Here the emulator loads a recipe (JSON) whose `accessControl`
/// grants subscribing but not publishing:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::emulator::{Emulator, RecipeFormat};
/// use ggipc::model::{IpcError, PublishToTopicRequest};
/// use ggipc::serde_json::json;
/// use ggipc::Error;
///
/// let recipe = json!({
///     "ComponentName": "com.example.Listener",
///     "ComponentVersion": "1.0.0",
///     "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": {
///         "aws.greengrass.ipc.pubsub": {"com.example.Listener:pubsub:1": {
///             "operations": ["aws.greengrass#SubscribeToTopic"],
///             "resources": ["*"]
///         }}
///     }}}
/// });
/// let emulator = Emulator::builder().recipe_str(recipe.to_string(), RecipeFormat::Json).start()?;
/// let client = emulator.connect()?;
///
/// match client.publish_to_topic(PublishToTopicRequest::json("status", json!("up"))) {
///     Err(Error::Service(e)) if matches!(*e, IpcError::Unauthorized(_)) => {
///         eprintln!("the recipe does not grant this: {e}");
///     }
///     other => panic!("expected UnauthorizedError, got {other:?}"),
/// }
///
/// // The same with the helpers:
/// let error = client.publish_to_topic(PublishToTopicRequest::json("status", json!("up"))).unwrap_err();
/// assert_eq!(error.as_service_error().and_then(|e| e.error_code()), Some("UnauthorizedError"));
/// assert!(!error.is_retryable() && !error.is_timeout() && !error.is_connection_lost());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be opened or failed outside a call.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// A frame could not be encoded (e.g. larger than the frame limit).
    #[error("frame error: {0}")]
    Codec(#[from] CodecError),
    /// The peer broke the eventstream-RPC protocol (for one call, or for the connection).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server refused the connection (CONNECT_ACK without the accepted flag, or the
    /// socket closed before any answer, as nucleus lite does).
    #[error("the IPC server rejected the connection: {detail}")]
    ConnectRejected {
        /// What the client saw.
        detail: String,
    },
    /// A deadline passed.
    #[error("timed out during {0}")]
    Timeout(TimeoutKind),
    /// The connection is closed; the reason says why.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The connection is lost and the client is reconnecting (only with
    /// [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect)): the call was not
    /// answered. The reason says why the connection was lost. Try again later, or ask
    /// the call to wait with [`CallOptions::wait_for_reconnect`](crate::CallOptions::wait_for_reconnect).
    #[error("disconnected, reconnecting: {0}")]
    Disconnected(CloseReason),
    /// The IPC service answered the call with an error.
    #[error("the IPC service returned an error: {0}")]
    Service(Box<IpcError>),
    /// A payload could not be turned into (or out of) JSON for the named shape.
    #[error("invalid JSON for {shape}: {message}")]
    Json {
        /// The shape being encoded or decoded.
        shape: String,
        /// What serde_json said.
        message: String,
    },
    /// A required environment variable is not set, or is set but empty.
    #[error("environment variable {name} is not set or is empty (is this process running as a Greengrass component?)")]
    MissingEnvVar {
        /// The variable.
        name: &'static str,
    },
    /// An argument or configuration value is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request's frame would exceed the frame limit
    /// ([`ClientBuilder::max_frame_size`](crate::ClientBuilder::max_frame_size), or
    /// [`ClientBuilder::nucleus_lite`](crate::ClientBuilder::nucleus_lite)'s 10,012
    /// bytes): nothing was sent and the connection is unharmed.
    #[error(
        "request too large: its payload of {payload} bytes makes a frame of {frame} bytes, over the limit of {max} bytes; nothing was sent (send less per call{})",
        if *.max <= NUCLEUS_LITE_MAX_FRAME { "" } else { ", or raise ClientBuilder::max_frame_size if the server accepts more" }
    )]
    RequestTooLarge {
        /// The request's payload (its JSON), in bytes.
        payload: u64,
        /// The whole encoded frame, in bytes.
        frame: u64,
        /// The limit.
        max: u32,
    },
    /// The server closed the connection while this call, whose frame is larger than
    /// nucleus lite accepts (about 10,000 bytes), was pending: most likely nucleus lite
    /// refused the frame. Retrying the same request will not help;
    /// [`ClientBuilder::nucleus_lite`](crate::ClientBuilder::nucleus_lite) makes such a
    /// request fail before it is sent.
    #[error(
        "connection closed after this client sent a frame of {frame} bytes; nucleus lite accepts at most about 10,000 (10,012 with the prelude): send less per call, and use ClientBuilder::nucleus_lite() to catch this before sending ({reason})"
    )]
    FrameRefused {
        /// The frame the client sent, in bytes.
        frame: u64,
        /// How the connection closed.
        reason: CloseReason,
    },
    /// A bug in ggipc: its own bookkeeping broke an invariant (e.g. the write path lost
    /// track of a call's frame, which may or may not have been sent). The call fails
    /// rather than waiting forever; please report it.
    #[error("internal error in ggipc (please report it): {0}")]
    Internal(&'static str),
}

/// The largest whole frame nucleus lite accepts: its 10,000-byte IPC buffer after the
/// 12-byte prelude.
pub(crate) const NUCLEUS_LITE_MAX_FRAME: u32 = 10_000 + 12;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Opening the socket, or (for a call that asked to wait for it) a reconnect.
    Connect,
    /// Waiting for CONNECT_ACK.
    Handshake,
    /// Waiting for the response to a call.
    Response,
    /// Writing a request: the server is not reading.
    Write,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect",
            TimeoutKind::Handshake => "the handshake (no CONNECT_ACK)",
            TimeoutKind::Response => "the wait for the response",
            TimeoutKind::Write => "the write (the server is not reading)",
        })
    }
}

/// Why a connection is closed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ggipc::model::PublishToTopicRequest;
/// use ggipc::{CloseReason, Error};
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// let client = emulator.connect()?;
/// assert_eq!(client.close_reason(), None);
/// client.close();
/// assert_eq!(client.close_reason(), Some(CloseReason::ByUser));
/// let after = client.publish_to_topic(PublishToTopicRequest::json("t", ggipc::serde_json::json!(1)));
/// assert!(matches!(after, Err(Error::Closed(CloseReason::ByUser))));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Client::close`](crate::Client::close) was called or the last handle dropped.
    ByUser,
    /// The server closed the socket.
    PeerClosed,
    /// Reading or writing the socket failed.
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// The server sent bytes that are not a valid frame.
    Codec(CodecError),
    /// The server broke the RPC protocol (or reported a protocol/internal error).
    Protocol(ProtocolError),
    /// A write did not complete before its deadline; the stream may hold half a frame.
    WriteTimeout,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ByUser => f.write_str("closed by the client"),
            CloseReason::PeerClosed => f.write_str("the server closed the connection"),
            CloseReason::Io { message, .. } => write!(f, "socket error: {message}"),
            CloseReason::Codec(e) => write!(f, "invalid frame from the server: {e}"),
            CloseReason::Protocol(e) => write!(f, "{e}"),
            CloseReason::WriteTimeout => {
                f.write_str("a write timed out (the server stopped reading)")
            }
        }
    }
}

impl CloseReason {
    pub(crate) fn from_io(e: &io::Error) -> Self {
        CloseReason::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<IpcError> for Error {
    fn from(e: IpcError) -> Self {
        Error::Service(Box::new(e))
    }
}

impl Error {
    /// Whether a deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// Whether the connection is gone (closed by either side, or broken).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::Closed(_) | Error::Disconnected(_) | Error::Io(_) | Error::FrameRefused { .. }
        )
    }

    /// The service's error, when the IPC service answered with one.
    pub fn as_service_error(&self) -> Option<&IpcError> {
        match self {
            Error::Service(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying the same call again on the same client may succeed.
    ///
    /// True for a passed deadline, for [`Error::Disconnected`] (the client is reconnecting),
    /// for a socket error that goes away when the nucleus starts listening (refused, not
    /// found, interrupted, timed out) and for a `ServiceError` (the service failed, not the
    /// request). False for everything that trying again cannot fix: [`Error::Closed`] (the
    /// client is closed for good: closed by the user, lost without
    /// [`reconnect`](crate::ClientBuilder::reconnect), or reconnecting gave up), a refused
    /// connection, invalid arguments, a frame too large (also [`Error::RequestTooLarge`] and
    /// [`Error::FrameRefused`]), a protocol error, bad JSON, a
    /// missing variable, and the service's other errors (unauthorized, not found, invalid
    /// token, ...). So a loop that retries while this is true ends. (For a service error
    /// alone, [`IpcError::is_retryable`] says whether the model puts the fault on the
    /// server's side; it counts `InvalidTokenError`, which a retry of the same request
    /// cannot fix.)
    ///
    /// ```
    /// use ggipc::{CloseReason, Error, TimeoutKind};
    ///
    /// assert!(Error::Timeout(TimeoutKind::Response).is_retryable());
    /// assert!(!Error::Closed(CloseReason::PeerClosed).is_retryable());
    /// assert!(!Error::InvalidArgument("handler_threads must be at least 1".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::Disconnected(_) => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
            ),
            Error::Service(e) => matches!(**e, IpcError::Service(_)),
            Error::Closed(_)
            | Error::Codec(_)
            | Error::Protocol(_)
            | Error::ConnectRejected { .. }
            | Error::Json { .. }
            | Error::MissingEnvVar { .. }
            | Error::InvalidArgument(_)
            | Error::RequestTooLarge { .. }
            | Error::FrameRefused { .. }
            | Error::Internal(_) => false,
        }
    }

    /// Whether the service refused the call for lack of an authorization policy
    /// (`UnauthorizedError`): the component's recipe needs an `accessControl` entry.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::PublishToTopicRequest;
    /// // A component with no pub/sub policy at all.
    /// let emulator = ggipc::emulator::Emulator::builder()
    ///     .component("com.example.NoPolicies", "token-1")
    ///     .start()?;
    /// let client = emulator.connect_as("com.example.NoPolicies")?;
    /// let error = client
    ///     .publish_to_topic(PublishToTopicRequest::json("t", serde_json::json!({})))
    ///     .unwrap_err();
    /// assert!(error.is_unauthorized());
    /// assert!(!error.is_not_found());
    /// # Ok(()) }
    /// ```
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.as_service_error(), Some(IpcError::Unauthorized(_)))
    }

    /// Whether the service reported that what the call names does not exist
    /// (`ResourceNotFoundError`: a secret, a shadow, a configuration key, a deployment).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::model::GetSecretValueRequest;
    /// let emulator = ggipc::emulator::Emulator::start()?;
    /// let client = emulator.connect()?;
    /// let error = client.get_secret_value(GetSecretValueRequest::new("no-such-secret")).unwrap_err();
    /// assert!(error.is_not_found());
    /// # Ok(()) }
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(self.as_service_error(), Some(IpcError::ResourceNotFound(_)))
    }

    /// Whether the service reported that a named component does not exist
    /// (`ComponentNotFoundError`).
    ///
    /// ```
    /// let error = ggipc::Error::from(ggipc::model::IpcError::ComponentNotFound(
    ///     ggipc::model::ComponentNotFoundError::new("no such component"),
    /// ));
    /// assert!(error.is_component_not_found());
    /// ```
    pub fn is_component_not_found(&self) -> bool {
        matches!(
            self.as_service_error(),
            Some(IpcError::ComponentNotFound(_))
        )
    }

    /// Whether the service rejected the request's arguments (`InvalidArgumentsError`).
    ///
    /// ```
    /// let error = ggipc::Error::from(ggipc::model::IpcError::InvalidArguments(
    ///     ggipc::model::InvalidArgumentsError::new("topic is empty"),
    /// ));
    /// assert!(error.is_invalid_arguments());
    /// ```
    pub fn is_invalid_arguments(&self) -> bool {
        matches!(self.as_service_error(), Some(IpcError::InvalidArguments(_)))
    }

    /// Whether the service refused the call because it conflicts with the current state
    /// (`ConflictError`, e.g. an `UpdateThingShadow` with a stale version).
    ///
    /// ```
    /// let error = ggipc::Error::from(ggipc::model::IpcError::Conflict(
    ///     ggipc::model::ConflictError::new("version mismatch"),
    /// ));
    /// assert!(error.is_conflict());
    /// ```
    pub fn is_conflict(&self) -> bool {
        matches!(self.as_service_error(), Some(IpcError::Conflict(_)))
    }

    /// Whether an `UpdateConfiguration` was refused because the stored value is newer
    /// than the request's timestamp (`FailedUpdateConditionCheckError`).
    ///
    /// ```
    /// let error = ggipc::Error::from(ggipc::model::IpcError::FailedUpdateConditionCheck(
    ///     ggipc::model::FailedUpdateConditionCheckError::new("stale timestamp"),
    /// ));
    /// assert!(error.is_failed_update_condition());
    /// ```
    pub fn is_failed_update_condition(&self) -> bool {
        matches!(
            self.as_service_error(),
            Some(IpcError::FailedUpdateConditionCheck(_))
        )
    }

    /// Whether the service failed internally (`ServiceError`).
    ///
    /// ```
    /// let error = ggipc::Error::from(ggipc::model::IpcError::Service(
    ///     ggipc::model::ServiceError::new("internal failure"),
    /// ));
    /// assert!(error.is_service_failure());
    /// ```
    pub fn is_service_failure(&self) -> bool {
        matches!(self.as_service_error(), Some(IpcError::Service(_)))
    }

    pub(crate) fn json(shape: &str, e: serde_json::Error) -> Self {
        Error::Json {
            shape: shape.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Why a subscription ended: see [`Subscription::wait_end`](crate::Subscription::wait_end)
/// and the last item of a [`PullSubscription`](crate::PullSubscription).
///
/// ```
/// use ggipc::{CloseReason, Error, StreamEnd};
/// let lost = StreamEnd::ConnectionLost(Error::Closed(CloseReason::PeerClosed));
/// assert!(lost.error().is_some_and(|e| e.is_connection_lost()));
/// assert_eq!(StreamEnd::ClosedByServer.to_string(), "the server closed the stream");
/// assert!(StreamEnd::ClosedByClient.error().is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamEnd {
    /// This client closed it: [`Subscription::close`](crate::Subscription::close) or
    /// dropping the handle, a handler that asked to close without an error, or
    /// [`Client::close`](crate::Client::close).
    ClosedByClient,
    /// The server ended the stream without an error.
    ClosedByServer,
    /// The connection was lost and the subscription was not resumed (no reconnect, or
    /// reconnecting gave up). The error is an [`Error::Closed`] saying why.
    ConnectionLost(Error),
    /// An error ended it: the server's error on the stream, an event that did not decode
    /// (for a pull subscription, or a handler whose `on_stream_error` asked to close),
    /// or a refused re-subscription after a reconnect.
    Failed(Error),
}

impl StreamEnd {
    /// The error that ended the stream, if an error did.
    pub fn error(&self) -> Option<&Error> {
        match self {
            StreamEnd::ConnectionLost(e) | StreamEnd::Failed(e) => Some(e),
            StreamEnd::ClosedByClient | StreamEnd::ClosedByServer => None,
        }
    }

    /// The end for a stream finished by the connection or the server, with or without an
    /// error.
    pub(crate) fn from_finish(error: Option<Error>) -> Self {
        match error {
            None => StreamEnd::ClosedByServer,
            Some(e @ Error::Closed(_)) => StreamEnd::ConnectionLost(e),
            Some(e) => StreamEnd::Failed(e),
        }
    }
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::ClosedByClient => f.write_str("closed by the client"),
            StreamEnd::ClosedByServer => f.write_str("the server closed the stream"),
            StreamEnd::ConnectionLost(e) => write!(f, "connection lost: {e}"),
            StreamEnd::Failed(e) => write!(f, "stream failed: {e}"),
        }
    }
}

/// An [`Error`] for `main`'s return type: its `Debug` (what Rust prints when `main`
/// returns `Err`) is the error's `Display`, so a failing component logs
/// `Error: the IPC service returned an error: UnauthorizedError: …` rather than the
/// variant tree. `?` converts an [`Error`] into it.
///
/// ```no_run
/// fn main() -> Result<(), ggipc::Report> {
///     let client = ggipc::Client::connect()?;
///     let running = ggipc::model::ReportedLifecycleState::Running;
///     client.update_state(ggipc::model::UpdateStateRequest::new(running))?;
///     Ok(())
/// }
/// ```
///
/// ```
/// let report = ggipc::Report::from(ggipc::Error::InvalidArgument("no topic".into()));
/// assert_eq!(format!("{report:?}"), "invalid argument: no topic");
/// assert!(!report.error().is_retryable());
/// ```
pub struct Report(Error);

impl Report {
    /// The error.
    pub fn error(&self) -> &Error {
        &self.0
    }

    /// The error, owned.
    pub fn into_error(self) -> Error {
        self.0
    }
}

impl From<Error> for Report {
    fn from(e: Error) -> Self {
        Report(e)
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// The typed error an APPLICATION_ERROR message carries.
pub(crate) fn stream_error(message: &RpcMessage) -> Error {
    IpcError::from_application_error(
        message.model_type.as_deref(),
        message.content_type.as_deref(),
        &message.payload,
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 56,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn error_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}
