//! The emulator's own error, and the modeled errors its services answer.

use std::path::PathBuf;

use serde_json::Value;

use super::recipe::LoadError;
use crate::model::IpcError;

/// Errors of the emulator itself (not of the calls it serves).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The socket could not be created.
    #[error("emulator socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another live server already listens on the path.
    #[error("another server is listening on {0}")]
    InUse(PathBuf),
    /// A configuration value is invalid.
    #[error("invalid emulator configuration: {0}")]
    Invalid(String),
    /// A recipe, policy or secrets document is malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
}

pub(crate) fn invalid_arguments(message: &str) -> IpcError {
    modeled_error("InvalidArgumentsError", message)
}

pub(crate) fn service_error(message: &str) -> IpcError {
    modeled_error("ServiceError", message)
}

pub(crate) fn resource_not_found(message: &str, resource_type: &str, name: &str) -> IpcError {
    crate::model::ResourceNotFoundError::new(message)
        .with_resource_type(resource_type)
        .with_resource_name(name)
        .into()
}

pub(crate) fn modeled_error(shape: &str, message: &str) -> IpcError {
    let body = serde_json::json!({ "message": message }).to_string();
    IpcError::from_application_error(
        Some(&format!("aws.greengrass#{shape}")),
        Some(crate::rpc::CONTENT_TYPE_JSON),
        body.as_bytes(),
    )
}

/// Decodes a request; a body that does not fit the shape is `InvalidArgumentsError`.
pub(crate) fn parse_request<T: serde::de::DeserializeOwned>(
    request: Value,
    shape: &str,
) -> Result<T, IpcError> {
    serde_json::from_value(request).map_err(|e| invalid_arguments(&format!("invalid {shape}: {e}")))
}
