//! ValidateAuthorizationToken: valid tokens are the components' SVCUIDs.
//!
//! # Rules
//!
//! From aws-greengrass/aws-greengrass-nucleus at a28341c
//! (`src/main/java/com/aws/greengrass/authorization/AuthorizationIPCAgent.java`, `AI`, and
//! `src/main/java/com/aws/greengrass/ipc/AuthenticationHandler.java`, `AH`). Tests:
//! `tests/emulator_fidelity.rs` (`tokens_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | Any caller but `aws.greengrass.StreamManager` → `UnauthorizedError` `<caller> is not authorized to perform aws.greengrass#ValidateAuthorizationToken`. | `AI:32,66-71` |
//! | A token no component has → `InvalidTokenError` `Authentication token not found`. | `AI:74-83`, `AH:129-137` |
//! | A valid token → `{"isValid": true}`. | `AI:73-77` |
//!
//! `lite` flavour (aws-greengrass/aws-greengrass-lite tag v2.6.0,
//! `modules/ggipcd/src/services/authorizationagent/token_validator.c:31-85`): the same
//! rules with its texts: `Component does not have access to token verification IPC
//! command.` and `Invalid token used by stream manager when trying to authorize.`

use serde_json::{json, Value};

use super::server::Outcome;
use super::Flavor;
use super::{json_response, modeled_error, parse_request, CallContext};
use crate::model::{Shape, ValidateAuthorizationTokenRequest, ValidateAuthorizationTokenResponse};

pub(crate) fn validate_authorization_token(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: ValidateAuthorizationTokenRequest =
        match parse_request(request, "ValidateAuthorizationTokenRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    let lite = ctx.state.flavor == Flavor::Lite;
    if let Err(e) = ctx.state.authorize(ctx, "ValidateAuthorizationToken", &[]) {
        if lite {
            return Outcome::Error(modeled_error(
                "UnauthorizedError",
                "Component does not have access to token verification IPC command.",
            ));
        }
        return Outcome::Error(e);
    }
    if !ctx.state.is_valid_token(&r.token) {
        let text = if lite {
            "Invalid token used by stream manager when trying to authorize."
        } else {
            "Authentication token not found"
        };
        return Outcome::Error(modeled_error(
            "InvalidTokenError",
            &super::texts::nucleus_text(text, "no component has this SVCUID"),
        ));
    }
    json_response(
        ValidateAuthorizationTokenResponse::MODEL_TYPE,
        &json!({"isValid": true}),
    )
}

/// A fresh SVCUID (auth token) for a component, in the flavour's format: nucleus lite
/// issues 12 random bytes in base64, 16 characters (`gg_rand_fill` of a `GglSvcuid` in
/// `modules/ggipcd/src/ipc_components.c:29-35,214`, aws-greengrass-lite tag v2.6.0); for
/// the Java nucleus the emulator keeps 32 hex characters.
pub(crate) fn new_svcuid(flavor: Flavor) -> String {
    match flavor {
        Flavor::Lite => {
            use base64::Engine as _;
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&super::random_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&super::random_u64().to_le_bytes());
            base64::engine::general_purpose::STANDARD.encode(&bytes[..12])
        }
        _ => super::random_token(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lite_svcuids_are_16_base64_characters() {
        let a = super::new_svcuid(super::Flavor::Lite);
        let b = super::new_svcuid(super::Flavor::Lite);
        assert_eq!(a.len(), 16);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
        assert_ne!(a, b);
        assert_eq!(super::new_svcuid(super::Flavor::Nucleus).len(), 32);
    }
}
