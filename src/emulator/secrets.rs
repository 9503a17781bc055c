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

use std::path::Path;

use serde_json::{json, Value};

use super::recipe::LoadError;
use super::server::Outcome;
use super::{json_response, parse_request, resource_not_found, service_error, CallContext};
use crate::model::{GetSecretValueRequest, GetSecretValueResponse, SecretValue, Shape};

/// A secret the emulator serves.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Secret {
    /// The ARN, which policies of `aws.greengrass.SecretManager` name.
    pub arn: String,
    /// The secret name (a `secretId` may be either).
    pub name: String,
    /// The value.
    pub value: SecretValue,
    /// The version id.
    pub version_id: String,
    /// The version stages (default `["AWSCURRENT"]`).
    pub version_stages: Vec<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("arn", &self.arn)
            .field("name", &self.name)
            .field("version_id", &self.version_id)
            .field("version_stages", &self.version_stages)
            .finish_non_exhaustive()
    }
}

const ARN_PREFIX: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:";

/// The name part of a secrets manager ARN (without the 6-character random suffix).
fn name_from_arn(arn: &str) -> String {
    let tail = arn.split_once(":secret:").map_or(arn, |(_, t)| t);
    match tail.rsplit_once('-') {
        Some((name, suffix))
            if suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            name.to_owned()
        }
        _ => tail.to_owned(),
    }
}

impl Secret {
    fn new(name_or_arn: &str, value: SecretValue) -> Secret {
        let (arn, name) = if name_or_arn.starts_with("arn:") {
            (name_or_arn.to_owned(), name_from_arn(name_or_arn))
        } else {
            (format!("{ARN_PREFIX}{name_or_arn}"), name_or_arn.to_owned())
        };
        Secret {
            arn,
            name,
            value,
            version_id: "00000000-0000-0000-0000-000000000001".into(),
            version_stages: vec!["AWSCURRENT".into()],
        }
    }

    /// A string secret. `name_or_arn` starting with `arn:` is the ARN (the name is taken
    /// from it); otherwise it is the name and the ARN is
    /// `arn:aws:secretsmanager:us-east-1:000000000000:secret:<name>`.
    pub fn string(name_or_arn: &str, value: impl Into<String>) -> Secret {
        Secret::new(name_or_arn, SecretValue::SecretString(value.into()))
    }

    /// A binary secret (see [`Secret::string`] for the naming).
    pub fn binary(name_or_arn: &str, value: impl Into<Vec<u8>>) -> Secret {
        Secret::new(name_or_arn, SecretValue::SecretBinary(value.into()))
    }

    /// Sets the version id.
    #[must_use]
    pub fn with_version_id(mut self, id: impl Into<String>) -> Secret {
        self.version_id = id.into();
        self
    }

    /// Sets the version stages.
    #[must_use]
    pub fn with_version_stages<S: Into<String>>(
        mut self,
        stages: impl IntoIterator<Item = S>,
    ) -> Secret {
        self.version_stages = stages.into_iter().map(Into::into).collect();
        self
    }

    /// Parses a secrets document (a JSON list). `file` names it in errors.
    ///
    /// # Errors
    /// [`LoadError`] naming the entry and member at fault.
    pub fn parse_list(text: &str, file: &str) -> Result<Vec<Secret>, LoadError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| LoadError::new(file, "", format!("invalid JSON: {e}")))?;
        let Value::Array(items) = doc else {
            return Err(LoadError::new(
                file,
                "",
                "a secrets file must be a JSON list",
            ));
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = |m: &str| {
                if m.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("[{i}].{m}")
                }
            };
            let Value::Object(m) = item else {
                return Err(LoadError::new(
                    file,
                    at(""),
                    "each secret must be an object",
                ));
            };
            for key in m.keys() {
                if ![
                    "arn",
                    "name",
                    "secretString",
                    "secretBinary",
                    "versionId",
                    "versionStages",
                ]
                .contains(&key.as_str())
                {
                    return Err(LoadError::new(file, at(key), "unknown member"));
                }
            }
            let text_of = |k: &str| -> Result<Option<String>, LoadError> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(_) => Err(LoadError::new(file, at(k), "must be a non-empty string")),
                }
            };
            let arn = text_of("arn")?;
            let name = text_of("name")?;
            let value = match (m.get("secretString"), m.get("secretBinary")) {
                (Some(Value::String(s)), None) => SecretValue::SecretString(s.clone()),
                (None, Some(Value::String(b))) => {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|e| {
                            LoadError::new(file, at("secretBinary"), format!("invalid base64: {e}"))
                        })?;
                    SecretValue::SecretBinary(bytes)
                }
                (Some(_), Some(_)) => {
                    return Err(LoadError::new(
                        file,
                        at(""),
                        "set secretString or secretBinary, not both",
                    ))
                }
                (Some(_), None) => {
                    return Err(LoadError::new(file, at("secretString"), "must be a string"))
                }
                (None, Some(_)) => {
                    return Err(LoadError::new(
                        file,
                        at("secretBinary"),
                        "must be a base64 string",
                    ))
                }
                (None, None) => {
                    return Err(LoadError::new(
                        file,
                        at(""),
                        "needs secretString or secretBinary",
                    ))
                }
            };
            let mut secret = match (&arn, &name) {
                (Some(a), Some(n)) => {
                    if !a.starts_with("arn:") {
                        return Err(LoadError::new(file, at("arn"), "must start with \"arn:\""));
                    }
                    let mut s = Secret::new(a, value);
                    s.name = n.clone();
                    s
                }
                (Some(a), None) => {
                    if !a.starts_with("arn:") {
                        return Err(LoadError::new(file, at("arn"), "must start with \"arn:\""));
                    }
                    Secret::new(a, value)
                }
                (None, Some(n)) => Secret::new(n, value),
                (None, None) => return Err(LoadError::new(file, at(""), "needs an arn or a name")),
            };
            if let Some(v) = text_of("versionId")? {
                secret.version_id = v;
            }
            match m.get("versionStages") {
                None | Some(Value::Null) => {}
                Some(Value::Array(stages)) => {
                    let mut list = Vec::new();
                    for (j, s) in stages.iter().enumerate() {
                        match s.as_str() {
                            Some(s) => list.push(s.to_owned()),
                            None => {
                                return Err(LoadError::new(
                                    file,
                                    format!("[{i}].versionStages[{j}]"),
                                    "must be a string",
                                ))
                            }
                        }
                    }
                    secret.version_stages = list;
                }
                Some(_) => {
                    return Err(LoadError::new(
                        file,
                        at("versionStages"),
                        "must be a list of strings",
                    ))
                }
            }
            out.push(secret);
        }
        Ok(out)
    }
}

/// Reads a secrets file.
pub(crate) fn load_file(path: &Path) -> Result<Vec<Secret>, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(&file, "", format!("cannot read: {e}")))?;
    Secret::parse_list(&text, &file)
}

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

pub(crate) fn get_secret_value(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let request: GetSecretValueRequest = match parse_request(request, "GetSecretValueRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let id = request.secret_id.clone();
    if id.is_empty() {
        return Outcome::Error(service_error("SecretId absent in the request"));
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
        return Outcome::Error(not_found(&format!("Secret not configured {id}"), &id));
    }
    // Authorization is on the ARN the id resolves to (the id itself when it is an ARN).
    let arn = candidates
        .first()
        .map_or_else(|| id.clone(), |s| s.arn.clone());
    if let Err(e) = ctx.state.authorize(ctx, "GetSecretValue", &[arn]) {
        return Outcome::Error(e);
    }
    let version_id = request.version_id.clone().filter(|v| !v.is_empty());
    let version_stage = request.version_stage.clone().filter(|v| !v.is_empty());
    if version_id.is_some() && version_stage.is_some() {
        return Outcome::Error(service_error(
            "Both versionId and Stage are set in the request",
        ));
    }
    let chosen = match (&version_id, &version_stage) {
        (Some(v), _) => candidates
            .iter()
            .find(|s| &s.version_id == v)
            .ok_or_else(|| not_found(&format!("Version Id {v} not found for secret {id}"), &id)),
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
    let chosen = match chosen {
        Ok(s) => s,
        Err(e) => return Outcome::Error(e),
    };
    let value = match &chosen.value {
        SecretValue::SecretString(s) => json!({"secretString": s}),
        SecretValue::SecretBinary(b) => {
            use base64::Engine as _;
            json!({"secretBinary": base64::engine::general_purpose::STANDARD.encode(b)})
        }
        #[allow(unreachable_patterns)]
        _ => json!({}),
    };
    json_response(
        GetSecretValueResponse::MODEL_TYPE,
        &json!({
            "secretId": chosen.arn,
            "versionId": chosen.version_id,
            "versionStage": chosen.version_stages,
            "secretValue": value,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_file_parses_and_reports_paths() {
        let list = Secret::parse_list(
            r#"[{"name": "db", "secretString": "pw"},
                {"arn": "arn:aws:secretsmanager:eu-west-1:1:secret:key-AbC123", "secretBinary": "AAE=", "versionStages": ["AWSCURRENT", "x"]}]"#,
            "s.json",
        )
        .unwrap();
        assert_eq!(list[0].arn, format!("{ARN_PREFIX}db"));
        assert_eq!(list[1].name, "key");
        assert_eq!(list[1].value, SecretValue::SecretBinary(vec![0, 1]));
        let e =
            Secret::parse_list(r#"[{"name": "a", "secretBinary": "%%"}]"#, "s.json").unwrap_err();
        assert_eq!(e.path, "[0].secretBinary");
        assert!(Secret::parse_list("{}", "s.json").is_err());
        assert!(Secret::parse_list(r#"[{"name": "a"}]"#, "s.json").is_err());
    }
}
