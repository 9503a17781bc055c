//! The modeled error shapes of the service and [`IpcError`], the error an operation returns.
//!
//! A server reports an operation failure with an `APPLICATION_ERROR` message whose
//! `service-model-type` header names one of the 12 error shapes below. The Java nucleus
//! sends the modeled members plus `_service`, `_message` and `_errorCode`; Greengrass
//! nucleus lite sends only `_message` and `_errorCode`. Anything else (no or unknown model
//! type, `text/plain` body, unparsable JSON) becomes [`IpcError::Unmodeled`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Shape;

/// Value of the `_service` member the Java nucleus adds to error bodies.
pub const SERVICE_SHAPE_ID: &str = "aws.greengrass#GreengrassCoreIPC";

/// Defines an error shape whose only member is `message`.
macro_rules! message_error {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub struct $name {
            /// `message`: human-readable description. Optional.
            #[serde(rename = "message", default, skip_serializing_if = "Option::is_none")]
            pub message: Option<String>,
        }

        impl $name {
            /// Creates the error with a message.
            pub fn new(message: impl Into<String>) -> Self {
                Self { message: Some(message.into()) }
            }
        }

        impl Shape for $name {
            const MODEL_TYPE: &'static str = concat!("aws.greengrass#", stringify!($name));
        }

        impl FromMembers for $name {
            fn from_members(_body: &Map<String, Value>, message: Option<String>) -> Option<Self> {
                Some(Self { message })
            }
        }
    };
}

/// Decoding a modeled error from its body without serde's derived visitors (one small
/// function per shape instead of a deserializer per shape: smaller binaries). It accepts
/// exactly what the derived `Deserialize` accepts: unknown members are ignored, an optional
/// member may be absent or `null`, and a member of the wrong type fails the whole shape.
trait FromMembers: Sized {
    /// The shape from `body`, with `message` already decoded (from `message`, else
    /// `_message`); `None` if a member has the wrong type.
    fn from_members(body: &Map<String, Value>, message: Option<String>) -> Option<Self>;
}

/// An optional string member: `Some(None)` when absent or `null`, `None` when it is not a
/// string.
fn string_member(body: &Map<String, Value>, key: &str) -> Option<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

message_error!(
    /// A named component does not exist (client error). Model type `aws.greengrass#ComponentNotFoundError`.
    ComponentNotFoundError
);
message_error!(
    /// The request conflicts with the current state, e.g. a shadow version mismatch (client error).
    /// Model type `aws.greengrass#ConflictError`.
    ConflictError
);
message_error!(
    /// `UpdateConfiguration`: the timestamp is older than the stored value (client error).
    /// Model type `aws.greengrass#FailedUpdateConditionCheckError`.
    FailedUpdateConditionCheckError
);
message_error!(
    /// The request is malformed or a member is invalid (client error).
    /// Model type `aws.greengrass#InvalidArgumentsError`.
    InvalidArgumentsError
);
message_error!(
    /// `CreateLocalDeployment`: the artifacts directory path is invalid (client error).
    /// Model type `aws.greengrass#InvalidArtifactsDirectoryPathError`.
    InvalidArtifactsDirectoryPathError
);
message_error!(
    /// The client device auth token is invalid or expired (client error).
    /// Model type `aws.greengrass#InvalidClientDeviceAuthTokenError`.
    InvalidClientDeviceAuthTokenError
);
message_error!(
    /// The client device credential is invalid (client error).
    /// Model type `aws.greengrass#InvalidCredentialError`.
    InvalidCredentialError
);
message_error!(
    /// `CreateLocalDeployment`: the recipe directory path is invalid (client error).
    /// Model type `aws.greengrass#InvalidRecipeDirectoryPathError`.
    InvalidRecipeDirectoryPathError
);
message_error!(
    /// `ValidateAuthorizationToken`: the token is invalid (server error: retryable).
    /// Model type `aws.greengrass#InvalidTokenError`.
    InvalidTokenError
);
message_error!(
    /// The caller is not authorized by any `accessControl` policy (client error).
    /// Model type `aws.greengrass#UnauthorizedError`.
    UnauthorizedError
);

/// A resource (component, deployment, shadow, secret...) was not found (client error).
/// Model type `aws.greengrass#ResourceNotFoundError`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceNotFoundError {
    /// `message`: human-readable description. Optional.
    #[serde(rename = "message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `resourceType`: kind of the missing resource. Optional.
    #[serde(
        rename = "resourceType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_type: Option<String>,
    /// `resourceName`: name of the missing resource. Optional.
    #[serde(
        rename = "resourceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_name: Option<String>,
}

impl ResourceNotFoundError {
    /// Creates the error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// Sets `resourceType`.
    pub fn with_resource_type(mut self, value: impl Into<String>) -> Self {
        self.resource_type = Some(value.into());
        self
    }

    /// Sets `resourceName`.
    pub fn with_resource_name(mut self, value: impl Into<String>) -> Self {
        self.resource_name = Some(value.into());
        self
    }
}

impl Shape for ResourceNotFoundError {
    const MODEL_TYPE: &'static str = "aws.greengrass#ResourceNotFoundError";
}

impl FromMembers for ResourceNotFoundError {
    fn from_members(body: &Map<String, Value>, message: Option<String>) -> Option<Self> {
        Some(Self {
            message,
            resource_type: string_member(body, "resourceType")?,
            resource_name: string_member(body, "resourceName")?,
        })
    }
}

/// The server failed to handle the request (server error: retryable).
/// Model type `aws.greengrass#ServiceError`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceError {
    /// `message`: human-readable description. Optional.
    #[serde(rename = "message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `context`: free-form JSON document (e.g. `reasonCode`/`reasonString` of a failed
    /// IoT Core subscription). Optional.
    #[serde(rename = "context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

impl ServiceError {
    /// Creates the error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            context: None,
        }
    }

    /// Sets `context`.
    pub fn with_context(mut self, value: impl Into<Value>) -> Self {
        self.context = Some(value.into());
        self
    }
}

impl Shape for ServiceError {
    const MODEL_TYPE: &'static str = "aws.greengrass#ServiceError";
}

impl FromMembers for ServiceError {
    fn from_members(body: &Map<String, Value>, message: Option<String>) -> Option<Self> {
        let context = match body.get("context") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.clone()),
        };
        Some(Self { message, context })
    }
}

/// An error that is not one of the modeled error shapes: missing or unknown
/// `service-model-type` (including framework ids such as `aws#AccessDenied`), non-JSON
/// content, or a body that does not parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnmodeledError {
    /// The `service-model-type` header, if any.
    pub model_type: Option<String>,
    /// The `:content-type` header, if any.
    pub content_type: Option<String>,
    /// Best-effort message: the body's `message`, `_message` or `error` string, else its text.
    pub message: String,
    /// The raw body (lossy UTF-8).
    pub payload: String,
}

impl UnmodeledError {
    /// Creates an unmodeled error with just a message (no model type, empty payload).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

/// The failure of an operation as reported by the server.
///
/// It reaches the caller inside [`Error::Service`](crate::Error::Service) (see
/// [`Error`](crate::Error) for matching a denied call against the emulator). Built from
/// a shape, or decoded from what a server sent:
///
/// ```
/// use ggipc::model::{IpcError, UnauthorizedError};
///
/// let denied = IpcError::from(UnauthorizedError::new("not granted"));
/// assert_eq!(denied.error_code(), Some("UnauthorizedError"));
/// assert_eq!(denied.to_string(), "UnauthorizedError: not granted");
/// assert!(!denied.is_retryable());
///
/// let decoded = IpcError::from_application_error(
///     Some("aws.greengrass#ResourceNotFoundError"),
///     Some("application/json"),
///     br#"{"message": "no shadow", "resourceType": "Shadow"}"#,
/// );
/// match &decoded {
///     IpcError::ResourceNotFound(e) => assert_eq!(e.resource_type.as_deref(), Some("Shadow")),
///     other => panic!("{other}"),
/// }
///
/// // What no model type names stays readable:
/// let other = IpcError::from_application_error(Some("aws#AccessDenied"), Some("text/plain"), b"denied");
/// assert!(matches!(other, IpcError::Unmodeled(ref e) if e.message == "denied"));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// `aws.greengrass#ComponentNotFoundError`.
    #[error("ComponentNotFoundError: {}", display_message(.0.message.as_deref()))]
    ComponentNotFound(ComponentNotFoundError),
    /// `aws.greengrass#ConflictError`.
    #[error("ConflictError: {}", display_message(.0.message.as_deref()))]
    Conflict(ConflictError),
    /// `aws.greengrass#FailedUpdateConditionCheckError`.
    #[error("FailedUpdateConditionCheckError: {}", display_message(.0.message.as_deref()))]
    FailedUpdateConditionCheck(FailedUpdateConditionCheckError),
    /// `aws.greengrass#InvalidArgumentsError`.
    #[error("InvalidArgumentsError: {}", display_message(.0.message.as_deref()))]
    InvalidArguments(InvalidArgumentsError),
    /// `aws.greengrass#InvalidArtifactsDirectoryPathError`.
    #[error("InvalidArtifactsDirectoryPathError: {}", display_message(.0.message.as_deref()))]
    InvalidArtifactsDirectoryPath(InvalidArtifactsDirectoryPathError),
    /// `aws.greengrass#InvalidClientDeviceAuthTokenError`.
    #[error("InvalidClientDeviceAuthTokenError: {}", display_message(.0.message.as_deref()))]
    InvalidClientDeviceAuthToken(InvalidClientDeviceAuthTokenError),
    /// `aws.greengrass#InvalidCredentialError`.
    #[error("InvalidCredentialError: {}", display_message(.0.message.as_deref()))]
    InvalidCredential(InvalidCredentialError),
    /// `aws.greengrass#InvalidRecipeDirectoryPathError`.
    #[error("InvalidRecipeDirectoryPathError: {}", display_message(.0.message.as_deref()))]
    InvalidRecipeDirectoryPath(InvalidRecipeDirectoryPathError),
    /// `aws.greengrass#InvalidTokenError`.
    #[error("InvalidTokenError: {}", display_message(.0.message.as_deref()))]
    InvalidToken(InvalidTokenError),
    /// `aws.greengrass#ResourceNotFoundError`.
    #[error("ResourceNotFoundError: {}", display_message(.0.message.as_deref()))]
    ResourceNotFound(ResourceNotFoundError),
    /// `aws.greengrass#ServiceError`.
    #[error("ServiceError: {}", display_message(.0.message.as_deref()))]
    Service(ServiceError),
    /// `aws.greengrass#UnauthorizedError`.
    #[error("UnauthorizedError: {}", display_message(.0.message.as_deref()))]
    Unauthorized(UnauthorizedError),
    /// Any other application error.
    #[error("unmodeled application error ({}): {}", .0.model_type.as_deref().unwrap_or("no model type"), .0.message)]
    Unmodeled(UnmodeledError),
}

fn display_message(message: Option<&str>) -> &str {
    message.unwrap_or("(no message)")
}

/// Implements the per-variant parts of [`IpcError`]: `(variant(shape, is_server_error), ...)`.
macro_rules! impl_error_conversions {
    ($($variant:ident($ty:ident, $server:literal),)+) => {
        $(
            impl From<$ty> for IpcError {
                fn from(error: $ty) -> Self {
                    IpcError::$variant(error)
                }
            }
        )+

        /// Model types of the 12 modeled error shapes.
        pub const ERROR_MODEL_TYPES: &[&str] = &[$(<$ty as Shape>::MODEL_TYPE),+];

        impl IpcError {
            /// Decodes a modeled error body; `None` if `model_type` is not a modeled error
            /// or the body does not match the shape.
            fn decode_modeled(model_type: &str, body: &Map<String, Value>) -> Option<IpcError> {
                if !ERROR_MODEL_TYPES.contains(&model_type) {
                    return None;
                }
                let message = string_member(body, "message")?.or_else(|| {
                    body.get("_message").and_then(Value::as_str).map(str::to_owned)
                });
                $(
                    if model_type == <$ty as Shape>::MODEL_TYPE {
                        return <$ty>::from_members(body, message).map(IpcError::$variant);
                    }
                )+
                None
            }

            /// The `service-model-type` of this error (`None` only for an unmodeled error
            /// received without one).
            pub fn model_type(&self) -> Option<&str> {
                match self {
                    $( IpcError::$variant(_) => Some(<$ty as Shape>::MODEL_TYPE), )+
                    IpcError::Unmodeled(e) => e.model_type.as_deref(),
                }
            }

            /// The error message (`""` when the server sent none).
            pub fn message(&self) -> &str {
                match self {
                    $( IpcError::$variant(e) => e.message.as_deref().unwrap_or(""), )+
                    IpcError::Unmodeled(e) => &e.message,
                }
            }

            /// Whether the model classifies the error as a server error, which the SDKs
            /// treat as retryable (`ServiceError`, `InvalidTokenError`). Unmodeled: `false`.
            pub fn is_retryable(&self) -> bool {
                match self {
                    $( IpcError::$variant(_) => $server, )+
                    IpcError::Unmodeled(_) => false,
                }
            }

            /// The modeled members of the error as a JSON object (empty for unmodeled).
            /// For the emulator, which sends them.
            #[cfg(feature = "emulator")]
            pub(crate) fn members(&self) -> Map<String, Value> {
                let value = match self {
                    $( IpcError::$variant(e) => serde_json::to_value(e), )+
                    IpcError::Unmodeled(_) => Ok(Value::Object(Map::new())),
                };
                match value {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                }
            }
        }
    };
}

impl_error_conversions!(
    ComponentNotFound(ComponentNotFoundError, false),
    Conflict(ConflictError, false),
    FailedUpdateConditionCheck(FailedUpdateConditionCheckError, false),
    InvalidArguments(InvalidArgumentsError, false),
    InvalidArtifactsDirectoryPath(InvalidArtifactsDirectoryPathError, false),
    InvalidClientDeviceAuthToken(InvalidClientDeviceAuthTokenError, false),
    InvalidCredential(InvalidCredentialError, false),
    InvalidRecipeDirectoryPath(InvalidRecipeDirectoryPathError, false),
    InvalidToken(InvalidTokenError, true),
    ResourceNotFound(ResourceNotFoundError, false),
    Service(ServiceError, true),
    Unauthorized(UnauthorizedError, false),
);

impl From<UnmodeledError> for IpcError {
    fn from(error: UnmodeledError) -> Self {
        IpcError::Unmodeled(error)
    }
}

impl IpcError {
    /// Interprets the payload of an `APPLICATION_ERROR` message.
    ///
    /// A modeled `aws.greengrass#<Error>` type with a JSON body becomes the typed variant;
    /// its message is the body's `message`, else `_message` (nucleus lite). Everything
    /// else — missing or unknown model type (e.g. `aws#AccessDenied`), non-JSON content
    /// type, body that does not parse — becomes [`IpcError::Unmodeled`] with the raw text
    /// and a best-effort message. Never panics.
    pub fn from_application_error(
        model_type: Option<&str>,
        content_type: Option<&str>,
        payload: &[u8],
    ) -> IpcError {
        let json_content = content_type.map_or(true, |ct| {
            let ct = ct.trim().to_ascii_lowercase();
            ct.starts_with("application/json") || ct.is_empty()
        });
        let body = if json_content {
            match serde_json::from_slice::<Value>(payload) {
                Ok(Value::Object(map)) => Some(map),
                _ => None,
            }
        } else {
            None
        };
        if let (Some(model_type), Some(body)) = (model_type, body.as_ref()) {
            if let Some(error) = Self::decode_modeled(model_type, body) {
                return error;
            }
        }
        let text = String::from_utf8_lossy(payload).into_owned();
        let message = body
            .as_ref()
            .and_then(|body| {
                ["message", "_message", "error"]
                    .iter()
                    .find_map(|key| body.get(*key).and_then(Value::as_str))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    model_type.unwrap_or("application error").to_owned()
                } else {
                    trimmed.to_owned()
                }
            });
        IpcError::Unmodeled(UnmodeledError {
            model_type: model_type.map(str::to_owned),
            content_type: content_type.map(str::to_owned),
            message,
            payload: text,
        })
    }

    /// The short error code (`UnauthorizedError`), i.e. the model type without namespace.
    pub fn error_code(&self) -> Option<&str> {
        self.model_type()
            .map(|t| t.rsplit_once('#').map_or(t, |(_, name)| name))
    }
}

impl fmt::Display for UnmodeledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
