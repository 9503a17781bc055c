//! Secrets' store: the secrets the emulator serves, and reading them from a file.

use std::path::Path;

use serde_json::Value;

use crate::emulator::common::recipe::LoadError;
use crate::model::SecretValue;

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
            out.push(parse_entry(file, i, item)?);
        }
        Ok(out)
    }
}

/// One entry `[i]` of a secrets file.
fn parse_entry(file: &str, i: usize, item: &Value) -> Result<Secret, LoadError> {
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
    let value = entry_value(m, file, &at)?;
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
    if let Some(stages) = entry_stages(m, file, i, &at)? {
        secret.version_stages = stages;
    }
    Ok(secret)
}

/// The value of a secrets-file entry: `secretString` or base64 `secretBinary`.
fn entry_value(
    m: &serde_json::Map<String, Value>,
    file: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<SecretValue, LoadError> {
    Ok(match (m.get("secretString"), m.get("secretBinary")) {
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
    })
}

/// The `versionStages` of a secrets-file entry, if set.
fn entry_stages(
    m: &serde_json::Map<String, Value>,
    file: &str,
    i: usize,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<Vec<String>>, LoadError> {
    match m.get("versionStages") {
        None | Some(Value::Null) => Ok(None),
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
            Ok(Some(list))
        }
        Some(_) => Err(LoadError::new(
            file,
            at("versionStages"),
            "must be a list of strings",
        )),
    }
}

/// Reads a secrets file.
pub(crate) fn load_file(path: &Path) -> Result<Vec<Secret>, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(&file, "", format!("cannot read: {e}")))?;
    Secret::parse_list(&text, &file)
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
