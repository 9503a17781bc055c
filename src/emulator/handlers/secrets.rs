//! Secrets: GetSecretValue over secrets loaded from a file or added by the test.
//!
//! # Rules
//!
//! From aws-greengrass/aws-greengrass-secret-manager at adbbd4d; `SM/` is
//! `src/main/java/com/aws/greengrass/secretmanager/`. Tests: `tests/emulator_fidelity.rs`
//! (`secret_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | An empty `secretId` → **ServiceError** `SecretId absent in the request` (a 400 GetSecretException). | `SM/SecretManager.java:356-359`, `SM/SecretManagerIPCAgent.java:139-149` |
//! | A name (not an ARN) that no configured secret has → `ResourceNotFoundError` `Secret not configured <id>`, resource type `secret`, **before** authorization. | `SM/SecretManager.java:383-403`, `SM/SecretManagerIPCAgent.java:104-108,142-147` |
//! | Authorization is on the ARN the id resolves to; a denial is `UnauthorizedError` with the nucleus's `Principal … is not authorized …` text. | `SM/SecretManagerIPCAgent.java:104-113,137-138` |
//! | `versionId` and `versionStage` both set → **ServiceError** `Both versionId and Stage are set in the request` (after authorization). | `SM/SecretManager.java:280-285` |
//! | Unknown `versionId` → `ResourceNotFoundError` `Version Id <v> not found for secret <id>`; unknown `versionStage` → `Version stage <s> not found for secret <id>`; neither given and no `AWSCURRENT` version → `Secret not found <id>`. | `SM/SecretManager.java:248-273` |
//! | An ARN that no secret has (authorized) → `ResourceNotFoundError` `Secret not found <id>`. | `SM/SecretManager.java:268-270,292-308` (the cloud fetch that follows fails offline) |
//!
//! Deliberate differences: there is no cloud: `refresh` is ignored and a secret is never
//! fetched; a name also matches the secret's `name` exactly (the secret manager maps names
//! to ARNs from its cloud sync, or by the `<name>-XXXXXX` ARN suffix).

use crate::emulator::common::errors::resource_not_found;
use crate::emulator::common::errors::service_error;
use crate::emulator::registry::Unary;
use crate::emulator::state::CallContext;
use crate::emulator::stores::secrets::Secret;
use crate::model::{GetSecretValue, GetSecretValueRequest, GetSecretValueResponse, IpcError};

/// `VALID_SECRET_ARN_PATTERN` (SecretManager.java:54-56), loosely: an ARN of the secrets
/// manager service.
fn is_secret_arn(id: &str) -> bool {
    let parts: Vec<&str> = id.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "secretsmanager"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5] == "secret"
        && !parts[6].is_empty()
}

fn not_found(text: &str, id: &str) -> crate::model::IpcError {
    resource_not_found(text, "secret", id)
}

impl Unary for GetSecretValue {
    fn serve(
        ctx: &CallContext<'_>,
        request: GetSecretValueRequest,
    ) -> Result<GetSecretValueResponse, IpcError> {
        let id = request.secret_id.clone();
        if id.is_empty() {
            return Err(service_error("SecretId absent in the request"));
        }
        let candidates: Vec<Secret> = ctx
            .state
            .secrets
            .lock()
            .iter()
            .filter(|s| s.arn == id || s.name == id)
            .cloned()
            .collect();
        if candidates.is_empty() && !is_secret_arn(&id) {
            // A name that maps to no ARN: 404 before authorization.
            return Err(not_found(&format!("Secret not configured {id}"), &id));
        }
        // Authorization is on the ARN the id resolves to (the id itself when it is an ARN).
        let arn = candidates
            .first()
            .map_or_else(|| id.clone(), |s| s.arn.clone());
        ctx.state.authorize(ctx, "GetSecretValue", &[arn])?;
        let version_id = request.version_id.clone().filter(|v| !v.is_empty());
        let version_stage = request.version_stage.clone().filter(|v| !v.is_empty());
        if version_id.is_some() && version_stage.is_some() {
            return Err(service_error(
                "Both versionId and Stage are set in the request",
            ));
        }
        let chosen = match (&version_id, &version_stage) {
            (Some(v), _) => candidates
                .iter()
                .find(|s| &s.version_id == v)
                .ok_or_else(|| {
                    not_found(&format!("Version Id {v} not found for secret {id}"), &id)
                }),
            (None, Some(stage)) => candidates
                .iter()
                .find(|s| s.version_stages.contains(stage))
                .ok_or_else(|| {
                    not_found(
                        &format!("Version stage {stage} not found for secret {id}"),
                        &id,
                    )
                }),
            (None, None) => candidates
                .iter()
                .find(|s| s.version_stages.iter().any(|st| st == "AWSCURRENT"))
                .ok_or_else(|| not_found(&format!("Secret not found {id}"), &id)),
        };
        let chosen = chosen?;
        Ok(GetSecretValueResponse::new(
            chosen.arn.clone(),
            chosen.version_id.clone(),
            chosen.version_stages.clone(),
            chosen.value.clone(),
        ))
    }
}
