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

use crate::emulator::common::errors::modeled_error;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::registry::Unary;
use crate::emulator::state::CallContext;
use crate::model::{
    IpcError, ValidateAuthorizationToken, ValidateAuthorizationTokenRequest,
    ValidateAuthorizationTokenResponse,
};

impl Unary for ValidateAuthorizationToken {
    fn serve(
        ctx: &CallContext<'_>,
        r: ValidateAuthorizationTokenRequest,
    ) -> Result<ValidateAuthorizationTokenResponse, IpcError> {
        let lite = ctx.state.flavor == Flavor::Lite;
        if let Err(e) = ctx.state.authorize(ctx, "ValidateAuthorizationToken", &[]) {
            if lite {
                return Err(modeled_error(
                    "UnauthorizedError",
                    "Component does not have access to token verification IPC command.",
                ));
            }
            return Err(e);
        }
        if !ctx.state.is_valid_token(&r.token) {
            let text = if lite {
                "Invalid token used by stream manager when trying to authorize."
            } else {
                "Authentication token not found"
            };
            return Err(modeled_error(
                "InvalidTokenError",
                &crate::emulator::common::texts::nucleus_text(text, "no component has this SVCUID"),
            ));
        }
        Ok(ValidateAuthorizationTokenResponse::new(true))
    }
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
            bytes[..8].copy_from_slice(&crate::emulator::common::ids::random_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&crate::emulator::common::ids::random_u64().to_le_bytes());
            base64::engine::general_purpose::STANDARD.encode(&bytes[..12])
        }
        _ => crate::emulator::common::ids::random_token(),
    }
}

#[cfg(test)]
mod tests {
    use crate::emulator::common::flavor::Flavor;

    #[test]
    fn lite_svcuids_are_16_base64_characters() {
        let a = super::new_svcuid(Flavor::Lite);
        let b = super::new_svcuid(Flavor::Lite);
        assert_eq!(a.len(), 16);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
        assert_ne!(a, b);
        assert_eq!(super::new_svcuid(Flavor::Nucleus).len(), 32);
    }
}
