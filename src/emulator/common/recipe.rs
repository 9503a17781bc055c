//! Component recipes (JSON or YAML, the developer guide's format) and the typed error for
//! any document the emulator loads (recipes, policies, secrets files).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::auth::Policies;

/// The syntax of a recipe or secrets document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecipeFormat {
    /// JSON.
    Json,
    /// YAML (a superset of JSON).
    Yaml,
}

impl RecipeFormat {
    /// The format a file name suggests: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &Path) -> RecipeFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => RecipeFormat::Json,
            _ => RecipeFormat::Yaml,
        }
    }
}

/// A document the emulator could not load: which file, where in it, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}: {}{}", .file, if .path.is_empty() { String::new() } else { format!("{}: ", .path) }, .problem)]
pub struct LoadError {
    /// The file (or `<recipe string>` / `<secrets>` for in-memory documents).
    pub file: String,
    /// Dotted path of the offending value in the document (`""` for the whole document),
    /// e.g. `ComponentConfiguration.DefaultConfiguration.accessControl.aws.greengrass.ipc.pubsub.p1.operations[0]`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl LoadError {
    pub(crate) fn new(file: &str, path: impl Into<String>, problem: impl Into<String>) -> Self {
        LoadError {
            file: file.to_owned(),
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// A component as its recipe describes it.
#[derive(Clone)]
#[non_exhaustive]
pub struct Recipe {
    /// `ComponentName`.
    pub name: String,
    /// `ComponentVersion`.
    pub version: String,
    /// `ComponentConfiguration.DefaultConfiguration` (an object; `{}` when absent).
    pub default_configuration: Value,
    pub(crate) policies: Policies,
}

impl fmt::Debug for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipe")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("policies", &self.policies.len())
            .finish_non_exhaustive()
    }
}

/// Parses a document as JSON or YAML into a JSON value.
pub(crate) fn parse_document(
    text: &str,
    format: RecipeFormat,
    file: &str,
) -> Result<Value, LoadError> {
    match format {
        RecipeFormat::Json => serde_json::from_str(text)
            .map_err(|e| LoadError::new(file, "", format!("invalid JSON: {e}"))),
        RecipeFormat::Yaml => serde_yaml_ng::from_str::<Value>(text)
            .map_err(|e| LoadError::new(file, "", format!("invalid YAML: {e}"))),
    }
}

fn field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<(&'a str, &'a Value)> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, v)| (k.as_str(), v))
}

impl Recipe {
    /// Parses a recipe. `file` names it in errors.
    ///
    /// # Errors
    /// [`LoadError`] naming the file, the path in the document and the problem.
    pub fn parse(text: &str, format: RecipeFormat, file: &str) -> Result<Recipe, LoadError> {
        let doc = parse_document(text, format, file)?;
        let Value::Object(root) = &doc else {
            return Err(LoadError::new(file, "", "a recipe must be a map"));
        };
        let name = match field(root, "ComponentName") {
            Some((_, Value::String(s))) if !s.trim().is_empty() => s.clone(),
            Some((k, _)) => return Err(LoadError::new(file, k, "must be a non-empty string")),
            None => return Err(LoadError::new(file, "ComponentName", "is missing")),
        };
        let version = match field(root, "ComponentVersion") {
            Some((_, Value::String(s))) if !s.trim().is_empty() => s.clone(),
            Some((_, Value::Number(n))) => n.to_string(),
            Some((k, _)) => {
                return Err(LoadError::new(
                    file,
                    k,
                    "must be a version string such as '1.0.0'",
                ))
            }
            None => return Err(LoadError::new(file, "ComponentVersion", "is missing")),
        };
        let mut configuration = Value::Object(serde_json::Map::new());
        let mut config_path = String::from("ComponentConfiguration.DefaultConfiguration");
        match field(root, "ComponentConfiguration") {
            None | Some((_, Value::Null)) => {}
            Some((ck, Value::Object(cc))) => match field(cc, "DefaultConfiguration") {
                None | Some((_, Value::Null)) => {}
                Some((_, v @ Value::Object(_))) => {
                    config_path = format!(
                        "{ck}.{}",
                        field(cc, "DefaultConfiguration").map_or("", |f| f.0)
                    );
                    configuration = v.clone();
                }
                Some((dk, _)) => {
                    return Err(LoadError::new(file, format!("{ck}.{dk}"), "must be a map"))
                }
            },
            Some((ck, _)) => return Err(LoadError::new(file, ck, "must be a map")),
        }
        let access = configuration
            .get("accessControl")
            .cloned()
            .unwrap_or(Value::Null);
        let (policies, problems) =
            Policies::parse(&access, &format!("{config_path}.accessControl"), true)
                .map_err(|p| LoadError::new(file, p.path, p.problem))?;
        for p in problems {
            log::warn!("{file}: {}: {}", p.path, p.problem);
        }
        Ok(Recipe {
            name,
            version,
            default_configuration: configuration,
            policies,
        })
    }

    /// Reads and parses a recipe file (format from the extension: `.json` or YAML).
    ///
    /// # Errors
    /// [`LoadError`], also when the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Recipe, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::new(&file, "", format!("cannot read: {e}")))?;
        Recipe::parse(&text, RecipeFormat::from_path(path), &file)
    }
}

/// Where a recipe comes from, until the builder starts.
#[derive(Clone, Debug)]
pub(crate) enum RecipeSource {
    File(PathBuf),
    Text(String, RecipeFormat),
}

impl RecipeSource {
    pub(crate) fn describe(&self) -> String {
        match self {
            RecipeSource::File(p) => p.display().to_string(),
            RecipeSource::Text(..) => "<recipe string>".to_owned(),
        }
    }

    pub(crate) fn load(&self) -> Result<Recipe, LoadError> {
        match self {
            RecipeSource::File(p) => Recipe::from_file(p),
            RecipeSource::Text(t, f) => Recipe::parse(t, *f, "<recipe string>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.HelloWorld
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    Message: world
    accessControl:
      aws.greengrass.ipc.pubsub:
        com.example.HelloWorld:pubsub:1:
          policyDescription: Allows access to publish to all topics.
          operations:
            - aws.greengrass#PublishToTopic
          resources:
            - "*"
"#;

    #[test]
    fn yaml_recipe_loads() {
        let r = Recipe::parse(HELLO, RecipeFormat::Yaml, "hello.yaml").unwrap();
        assert_eq!(r.name, "com.example.HelloWorld");
        assert_eq!(r.version, "1.0.0");
        assert_eq!(r.default_configuration["Message"], "world");
        assert_eq!(r.policies.len(), 1);
    }

    #[test]
    fn bad_operation_names_its_path() {
        let bad = HELLO.replace("- aws.greengrass#PublishToTopic", "- aws.greengrass#Nope");
        let e = Recipe::parse(&bad, RecipeFormat::Yaml, "hello.yaml").unwrap_err();
        assert_eq!(e.file, "hello.yaml");
        assert_eq!(
            e.path,
            "ComponentConfiguration.DefaultConfiguration.accessControl.aws.greengrass.ipc.pubsub.com.example.HelloWorld:pubsub:1.operations[0]"
        );
        assert!(e.to_string().contains("Nope"), "{e}");
    }

    #[test]
    fn missing_name_and_bad_documents_are_errors() {
        let e = Recipe::parse(
            "{\"ComponentVersion\": \"1\"}",
            RecipeFormat::Json,
            "x.json",
        )
        .unwrap_err();
        assert_eq!(e.path, "ComponentName");
        assert!(Recipe::parse("[1,", RecipeFormat::Json, "x").is_err());
        assert!(Recipe::parse(": : :\n  - [", RecipeFormat::Yaml, "x").is_err());
        assert!(Recipe::parse("42", RecipeFormat::Yaml, "x").is_err());
    }
}
