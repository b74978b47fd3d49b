//! Deployment hooks without the I/O: telling CodeDeploy and ECS native hook
//! invocations apart, reading the AppSpec, matching checks to hooks, and the
//! provenance index the release gate writes for every passing image.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::policy::HOOK_STAGES;
use crate::triggers::EcsLifecycleHook;
use crate::yaml::{self, Value};

/// The two ways a deployment hook is invoked.
#[derive(Debug, Clone, PartialEq)]
pub enum HookInvocation {
    /// CodeDeploy: answer with `PutLifecycleEventHookExecutionStatus`.
    CodeDeploy { deployment_id: String, hook_execution_id: String },
    /// ECS native blue/green: answer in the response (`hookStatus`).
    Ecs(Box<EcsLifecycleHook>),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CodeDeployPayload {
    deployment_id: String,
    lifecycle_event_hook_execution_id: String,
}

impl HookInvocation {
    /// Tells the kinds apart by their fields; an error names what is missing.
    pub fn from_payload(payload: serde_json::Value) -> Result<Self, String> {
        if payload.get("DeploymentId").is_some() || payload.get("LifecycleEventHookExecutionId").is_some() {
            let p: CodeDeployPayload = serde_json::from_value(payload)
                .map_err(|e| format!("invalid CodeDeploy hook invocation: {e}"))?;
            if p.deployment_id.is_empty() || p.lifecycle_event_hook_execution_id.is_empty() {
                return Err(
                    "invalid CodeDeploy hook invocation: empty DeploymentId or LifecycleEventHookExecutionId"
                        .into(),
                );
            }
            return Ok(Self::CodeDeploy {
                deployment_id: p.deployment_id,
                hook_execution_id: p.lifecycle_event_hook_execution_id,
            });
        }
        if payload.get("executionId").is_some() || payload.get("lifecycleStage").is_some() {
            let hook: EcsLifecycleHook = serde_json::from_value(payload)
                .map_err(|e| format!("invalid ECS lifecycle hook invocation: {e}"))?;
            return Ok(Self::Ecs(Box::new(hook)));
        }
        Err("not a deployment hook invocation: expected DeploymentId and LifecycleEventHookExecutionId (CodeDeploy) \
             or executionId and lifecycleStage (ECS)"
            .into())
    }
}

/// The task definition an ECS AppSpec deploys:
/// `Resources[0].TargetService.Properties.TaskDefinition`.
pub fn appspec_task_definition(appspec: &str) -> Result<String, String> {
    let root = yaml::parse(appspec)
        .map_err(|e| format!("AppSpec is not valid YAML or JSON: {}: {}", e.mark, e.message))?;
    let get = |node: &yaml::Node, key: &str| -> Option<yaml::Node> {
        match &node.value {
            Value::Map(entries) => {
                entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v.clone())
            }
            _ => None,
        }
    };
    let resources = get(&root, "Resources").ok_or("AppSpec has no Resources")?;
    let Value::Seq(items) = &resources.value else { return Err("AppSpec Resources is not a list".into()) };
    for item in items {
        let Value::Map(entries) = &item.value else { continue };
        for (_, resource) in entries {
            if let Some(td) = get(resource, "Properties")
                .and_then(|p| get(&p, "TaskDefinition"))
                .and_then(|t| t.scalar_text())
            {
                return Ok(td);
            }
        }
    }
    Err("AppSpec names no TaskDefinition (Resources[].TargetService.Properties.TaskDefinition)".into())
}

/// True when the AppSpec deploys an ECS service (a resource of `Type:
/// AWS::ECS::Service`); a Lambda deployment's deploys `AWS::Lambda::Function`
/// and EC2 deployments carry no AppSpec content at all.
pub fn deploys_ecs(appspec: &str) -> bool {
    let Ok(root) = yaml::parse(appspec) else { return false };
    let Value::Map(top) = &root.value else { return false };
    let Some((_, resources)) = top.iter().find(|(k, _)| k.as_str() == Some("Resources")) else {
        return false;
    };
    let Value::Seq(items) = &resources.value else { return false };
    items.iter().any(|item| match &item.value {
        Value::Map(entries) => entries.iter().any(|(_, resource)| match &resource.value {
            Value::Map(fields) => fields.iter().any(|(k, v)| {
                k.as_str() == Some("Type") && v.scalar_text().as_deref() == Some("AWS::ECS::Service")
            }),
            _ => false,
        }),
        _ => false,
    })
}

/// True when a check written for `check_hook` is due at `current`: the same
/// name, or the other kind's name for the same moment ([`HOOK_STAGES`]).
pub fn hook_matches(check_hook: &str, current: &str) -> bool {
    check_hook == current
        || HOOK_STAGES.iter().any(|stage| match *stage {
            (Some(cd), Some(ecs)) => {
                (check_hook == cd && current == ecs) || (check_hook == ecs && current == cd)
            }
            _ => false,
        })
}

/// The index the release gate writes for every image digest it passes:
/// `provenance/<digest>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub digest: Digest,
    pub decision_id: String,
    pub decision_key: String,
    pub pipeline: String,
    pub execution_id: String,
    pub decided_at: DateTime<Utc>,
    /// The environment the release was decided for (`None`: the base policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// Where a passing decision for `digest` in `environment` is indexed. A
/// decision opens the hooks of its own environment only: a PASS decided for
/// `dev` (a looser policy) never opens `prod`, so each environment has its
/// own index (`_base` for releases decided without one).
pub fn provenance_key(digest: &Digest, environment: Option<&str>) -> String {
    format!("provenance/{}/{digest}.json", environment.unwrap_or("_base"))
}

/// `Succeeded` / `Failed` (CodeDeploy's words; ECS's are upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    Succeeded,
    Failed,
    /// ECS native only: ask ECS to invoke again later.
    InProgress,
}

impl HookStatus {
    /// What a hook that cannot be asked again reports (CodeDeploy's): a
    /// success stays one, anything else fails closed.
    pub fn settled(self) -> HookStatus {
        match self {
            HookStatus::Succeeded => HookStatus::Succeeded,
            HookStatus::Failed | HookStatus::InProgress => HookStatus::Failed,
        }
    }

    /// ECS's word for it in a hook response.
    pub fn ecs_word(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "SUCCEEDED",
            HookStatus::Failed => "FAILED",
            HookStatus::InProgress => "IN_PROGRESS",
        }
    }

    /// The word in notification dedupe keys. Stored keys depend on it, so it
    /// never changes, whatever the variant is called.
    pub fn dedupe_word(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "Succeeded",
            HookStatus::Failed => "Failed",
            HookStatus::InProgress => "InProgress",
        }
    }
}

/// The `Shipgate Hook Result` event's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookResultEvent {
    /// `codedeploy` or `ecs`.
    pub kind: String,
    /// The CodeDeploy deployment id or the ECS service deployment ARN.
    pub deployment: String,
    /// The hook execution: CodeDeploy's `LifecycleEventHookExecutionId`, or
    /// the ECS hook's `executionId`. Messages are deduplicated on it.
    #[serde(default)]
    pub execution: String,
    pub hook: String,
    pub status: HookStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub digests: Vec<String>,
    pub reasons: Vec<String>,
    /// ECS native: ECS was rolling back, and Shipgate answered without checks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_are_told_apart_by_their_fields() {
        let cd = HookInvocation::from_payload(
            serde_json::json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h"}),
        )
        .unwrap();
        assert!(matches!(cd, HookInvocation::CodeDeploy { .. }));
        let ecs = include_str!("../../../events/ecs-native-hook-post-test-traffic.json");
        let ecs = HookInvocation::from_payload(serde_json::from_str(ecs).unwrap()).unwrap();
        assert!(matches!(ecs, HookInvocation::Ecs(h) if h.lifecycle_stage == "POST_TEST_TRAFFIC_SHIFT"));
        let err = HookInvocation::from_payload(serde_json::json!({"DeploymentId": "d-1"})).unwrap_err();
        assert!(err.contains("LifecycleEventHookExecutionId"), "{err}");
        assert!(HookInvocation::from_payload(serde_json::json!({"hello": 1})).is_err());
    }

    #[test]
    fn appspec_yields_its_task_definition_in_yaml_or_json() {
        let yaml = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"arn:aws:ecs:us-east-1:123456789012:task-definition/web:3\"\n        LoadBalancerInfo: {ContainerName: app, ContainerPort: 8080}\nHooks:\n  - AfterAllowTestTraffic: shipgate-deploy-hooks\n";
        assert_eq!(
            appspec_task_definition(yaml).unwrap(),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
        );
        let json = r#"{"version":0.0,"Resources":[{"TargetService":{"Type":"AWS::ECS::Service","Properties":{"TaskDefinition":"web:3"}}}]}"#;
        assert_eq!(appspec_task_definition(json).unwrap(), "web:3");
        assert!(appspec_task_definition("version: 0.0\n").unwrap_err().contains("no Resources"));
        assert!(deploys_ecs(yaml) && deploys_ecs(json));
    }

    #[test]
    fn a_lambda_appspec_deploys_no_ecs_service() {
        let lambda = "version: 0.0\nResources:\n  - api:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: api\n        Alias: live\n        CurrentVersion: \"1\"\n        TargetVersion: \"2\"\n";
        assert!(!deploys_ecs(lambda));
        assert!(appspec_task_definition(lambda).is_err());
        assert!(!deploys_ecs("not: [valid"));
    }

    #[test]
    fn checks_match_their_hook_in_either_vocabulary() {
        assert!(hook_matches("AfterAllowTestTraffic", "AfterAllowTestTraffic"));
        assert!(hook_matches("AfterAllowTestTraffic", "POST_TEST_TRAFFIC_SHIFT"));
        assert!(!hook_matches("AfterAllowTestTraffic", "BeforeInstall"));
    }
}
