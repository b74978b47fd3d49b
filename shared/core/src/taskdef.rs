//! ECS task definitions, in the three shapes people hand us (`docs/policy.md`): the
//! `taskDefinition` object of `aws ecs describe-task-definition`, that whole
//! output, or a `register-task-definition` input (`taskdef.json`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    /// The CPU architecture and OS family the task runs on; X86_64 and LINUX
    /// when unset (ECS's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    /// `X86_64` or `ARM64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
    /// `LINUX`, or `WINDOWS_SERVER_2022_CORE` and the other Windows families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

/// An environment entry. Its value is held but never displayed: `Debug`
/// redacts it so that no log line can carry it by accident.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl std::fmt::Debug for EnvironmentVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentVariable").field("name", &self.name).field("value", &"<redacted>").finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value_from: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    #[serde(default)]
    pub log_driver: String,
}

/// Why a document is not a task definition we can judge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDefinitionError {
    #[error("task definition is unusable: {0}")]
    Json(String),
    #[error("task definition has no containerDefinitions")]
    NoContainers,
    #[error("containerDefinitions[{index}].{field} is missing")]
    MissingField { index: usize, field: &'static str },
}

impl TaskDefinition {
    /// Parses any of the three accepted shapes.
    pub fn from_json(text: &str) -> Result<Self, TaskDefinitionError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| malformed(&e))?;
        Self::from_value(value)
    }

    pub fn from_value(value: serde_json::Value) -> Result<Self, TaskDefinitionError> {
        // `describe-task-definition` wraps the definition; the other shapes do not.
        let inner = match value {
            serde_json::Value::Object(mut map) if map.contains_key("taskDefinition") => {
                map.remove("taskDefinition").unwrap_or_default()
            }
            other => other,
        };
        let td: TaskDefinition = serde_path_to_error::deserialize(inner).map_err(|e| misfit(e.path()))?;
        td.validated()
    }

    fn validated(self) -> Result<Self, TaskDefinitionError> {
        if self.container_definitions.is_empty() {
            return Err(TaskDefinitionError::NoContainers);
        }
        for (index, c) in self.container_definitions.iter().enumerate() {
            if c.name.is_empty() {
                return Err(TaskDefinitionError::MissingField { index, field: "name" });
            }
            if c.image.is_empty() {
                return Err(TaskDefinitionError::MissingField { index, field: "image" });
            }
        }
        Ok(self)
    }
}

// These errors reach CodePipeline, decision records and emails, and serde's
// messages quote the offending value (`invalid type: string "DB_PASSWORD=
// hunter2"`): they are never read, let alone passed on. A misfit names the
// field (its path); malformed JSON says where.

/// A value that does not fit the task definition: the field, never the value.
fn misfit(path: &serde_path_to_error::Path) -> TaskDefinitionError {
    TaskDefinitionError::Json(format!("{path}: the value has the wrong type or shape"))
}

/// Text that is not JSON: what kind of fault, and where.
fn malformed(e: &serde_json::Error) -> TaskDefinitionError {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "the JSON ends too early",
        _ => "the JSON is malformed",
    };
    TaskDefinitionError::Json(format!("{what} (line {} column {})", e.line(), e.column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_never_quote_environment_values() {
        let text =
            r#"{"containerDefinitions":[{"name":"app","image":"x","environment":["DB_PASSWORD=hunter2"]}]}"#;
        let err = TaskDefinition::from_json(text).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && !err.contains("DB_PASSWORD"), "{err}");
        assert!(err.contains("containerDefinitions[0].environment[0]"), "names the field: {err}");
        // serde's message has ", expected " after the value: a value that
        // holds the same words must not be cut at them and leak its tail.
        let crafted = r#"{"containerDefinitions":[{"name":"app","image":"x","environment":["a, expected leaked-tail"]}]}"#;
        let err = TaskDefinition::from_json(crafted).unwrap_err().to_string();
        assert!(!err.contains("leaked-tail") && !err.contains("expected"), "{err}");
        let broken = TaskDefinition::from_json(r#"{"containerDefinitions":[{"name":"hunter2"#)
            .unwrap_err()
            .to_string();
        assert!(!broken.contains("hunter2"), "{broken}");
    }

    const INNER: &str = r#"{"family":"web","containerDefinitions":[{"name":"app","image":"nginx"}]}"#;

    #[test]
    fn all_three_shapes_parse_alike() {
        let wrapped = format!(r#"{{"taskDefinition":{INNER},"tags":[]}}"#);
        let a = TaskDefinition::from_json(INNER).unwrap();
        let b = TaskDefinition::from_json(&wrapped).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.container_definitions[0].name, "app");
    }

    #[test]
    fn missing_image_is_named() {
        let err = TaskDefinition::from_json(r#"{"containerDefinitions":[{"name":"app"}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "containerDefinitions[0].image is missing");
    }

    #[test]
    fn debug_never_shows_environment_values() {
        let v = EnvironmentVariable { name: "DB_PASSWORD".into(), value: Some("hunter2".into()) };
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
