//! ValidateAuthorizationToken: valid tokens are the components' SVCUIDs.

use serde_json::{json, Value};

use super::server::Outcome;
use super::{json_response, modeled_error, parse_request, CallContext};
use crate::model::{Shape, ValidateAuthorizationTokenRequest, ValidateAuthorizationTokenResponse};

pub(crate) fn validate_authorization_token(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: ValidateAuthorizationTokenRequest =
        match parse_request(request, "ValidateAuthorizationTokenRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = ctx.state.authorize(ctx, "ValidateAuthorizationToken", &[]) {
        return Outcome::Error(e);
    }
    if !ctx.state.is_valid_token(&r.token) {
        return Outcome::Error(modeled_error("InvalidTokenError", "the token is not valid"));
    }
    json_response(
        ValidateAuthorizationTokenResponse::MODEL_TYPE,
        &json!({"isValid": true}),
    )
}
