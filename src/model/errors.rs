//! TEMPORARY stand-in for the modeled errors (replaced by the model work).
#![allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{message}")]
    Unmodeled { model_type: Option<String>, message: String },
}
impl IpcError {
    pub fn from_application_error(model_type: Option<&str>, _ct: Option<&str>, payload: &[u8]) -> IpcError {
        let message = crate::rpc::error_payload_text(payload);
        match model_type {
            Some("aws.greengrass#UnauthorizedError") => IpcError::Unauthorized(message),
            Some("aws.greengrass#InvalidArgumentsError") => IpcError::InvalidArguments(message),
            _ => IpcError::Unmodeled { model_type: model_type.map(Into::into), message },
        }
    }
    pub fn to_payload(&self, _lite: bool) -> (Option<String>, Vec<u8>) {
        match self {
            IpcError::Unauthorized(m) => (Some("aws.greengrass#UnauthorizedError".into()), serde_json::json!({"message": m}).to_string().into_bytes()),
            IpcError::InvalidArguments(m) => (Some("aws.greengrass#InvalidArgumentsError".into()), serde_json::json!({"message": m}).to_string().into_bytes()),
            IpcError::Unmodeled { model_type, message } => (model_type.clone(), message.clone().into_bytes()),
        }
    }
    pub fn is_retryable(&self) -> bool { false }
}
impl IpcError {
    pub fn model_type(&self) -> Option<&str> {
        match self { IpcError::Unauthorized(_) => Some("aws.greengrass#UnauthorizedError"), IpcError::InvalidArguments(_) => Some("aws.greengrass#InvalidArgumentsError"), IpcError::Unmodeled { model_type, .. } => model_type.as_deref() }
    }
}
