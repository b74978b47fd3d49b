//! The `detail` of the EventBridge events Shipgate consumes, where the
//! `aws_lambda_events` crate has no type for them (or one that does not
//! match what AWS sends), plus the ECS native lifecycle hook payload.
//!
//! Field names follow AWS's documented event shapes exactly; unknown fields
//! are ignored so that AWS adding one never breaks a function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hooks::HookStatus;

/// `CodeCommit Repository State Change` (source `aws.codecommit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeCommitReferenceChange {
    /// `referenceCreated`, `referenceUpdated` or `referenceDeleted`.
    pub event: String,
    pub repository_name: String,
    /// `branch` or `tag`; absent for events that change no reference
    /// (`unreferencedMergeCommitCreated`).
    #[serde(default)]
    pub reference_type: String,
    #[serde(default)]
    pub reference_name: String,
    #[serde(default)]
    pub reference_full_name: Option<String>,
    /// Absent for deletions.
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub old_commit_id: Option<String>,
    #[serde(default)]
    pub caller_user_arn: Option<String>,
}

/// `Object Created` (source `aws.s3`, EventBridge notifications on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3ObjectCreated {
    pub bucket: S3Bucket,
    pub object: S3Object,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub etag: Option<String>,
    /// Present when the bucket is versioned (Shipgate's config bucket is).
    #[serde(default, rename = "version-id")]
    pub version_id: Option<String>,
    /// Orders events for one key: a larger sequencer is a later write.
    #[serde(default)]
    pub sequencer: Option<String>,
}

/// `ECR Image Scan` (basic) and `Inspector2 Scan` (enhanced) details. For
/// Inspector, `repository-name` is the repository's ARN. Inspector sends the
/// same detail-type for EC2 instances, Lambda functions and machine images,
/// without a repository or digest
/// (https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageScanCompleted {
    #[serde(rename = "scan-status")]
    pub scan_status: String,
    #[serde(default, rename = "repository-name")]
    pub repository_name: Option<String>,
    #[serde(default, rename = "image-digest")]
    pub image_digest: Option<String>,
    #[serde(default, rename = "image-tags")]
    pub image_tags: Vec<String>,
    /// Missing severities mean zero.
    #[serde(default, rename = "finding-severity-counts")]
    pub finding_severity_counts: BTreeMap<String, u64>,
}

impl ImageScanCompleted {
    /// The repository's name, whether the event carried a name or an ARN
    /// (`arn:aws:ecr:REGION:ACCOUNT:repository/NAME`, where NAME may hold `/`);
    /// `None` when the scan is not of an ECR image.
    pub fn repository(&self) -> Option<&str> {
        let name = self.repository_name.as_deref()?;
        Some(match name.split_once(":repository/") {
            Some((prefix, repository)) if prefix.starts_with("arn:") => repository,
            _ => name,
        })
    }

    /// The ECR image scanned, as (repository, digest); `None` for a scan of
    /// another kind of resource.
    pub fn image(&self) -> Option<(&str, &str)> {
        Some((self.repository()?, self.image_digest.as_deref()?))
    }
}

/// `Inspector2 Finding` detail (source `aws.inspector2`): a finding created,
/// updated or closed after the image's scan
/// (`events/aws/inspector2-finding-ecr.aws-ecr-docs.json`). Only what
/// Shipgate reads: the resource, which for an ECR image names the
/// repository and the image's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectorFinding {
    #[serde(default)]
    pub resources: Vec<FindingResource>,
    /// `ACTIVE`, `SUPPRESSED` or `CLOSED`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingResource {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub details: Option<FindingResourceDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingResourceDetails {
    #[serde(default)]
    pub aws_ecr_container_image: Option<EcrContainerImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcrContainerImage {
    pub repository_name: String,
    pub image_hash: String,
}

impl InspectorFinding {
    /// The ECR image the finding is on, as (repository, digest); `None` for
    /// a finding on an EC2 instance, a Lambda function or anything else.
    pub fn image(&self) -> Option<(&str, &str)> {
        self.resources.iter().filter(|r| r.kind == "AWS_ECR_CONTAINER_IMAGE").find_map(|r| {
            let image = r.details.as_ref()?.aws_ecr_container_image.as_ref()?;
            Some((image.repository_name.as_str(), image.image_hash.as_str()))
        })
    }
}

/// The notifier's exposure schedule: EventBridge Scheduler sends the
/// target input the template gives it, with `<aws.scheduler.scheduled-time>`
/// replaced by the time the schedule fired
/// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushExposure {
    /// Always [`FlushExposure::KIND`].
    pub shipgate: String,
    pub scheduled_time: chrono::DateTime<chrono::Utc>,
}

impl FlushExposure {
    pub const KIND: &'static str = "flush-exposure-digests";
}

/// `CodePipeline Pipeline Execution State Change` and
/// `CodePipeline Action Execution State Change` (source `aws.codepipeline`).
/// `CodeDeploy Deployment State-change Notification` detail
/// (`events/aws/codedeploy-deployment-state-change.aws-lambda-go.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStateChange {
    pub deployment_id: String,
    #[serde(default)]
    pub application: Option<String>,
    #[serde(default)]
    pub deployment_group: Option<String>,
    /// `START`, `SUCCESS`, `FAILURE`, `STOP`, `READY`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStateChange {
    pub pipeline: String,
    #[serde(rename = "execution-id")]
    pub execution_id: String,
    pub state: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default, rename = "execution-result")]
    pub execution_result: Option<ActionExecutionResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionExecutionResult {
    #[serde(default, rename = "external-execution-summary")]
    pub summary: Option<String>,
    #[serde(default, rename = "error-code")]
    pub error_code: Option<String>,
}

/// An ECS native blue/green lifecycle hook invocation. ECS calls the function
/// synchronously and reads a [`EcsHookResponse`] back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsLifecycleHook {
    pub execution_id: String,
    pub lifecycle_stage: String,
    #[serde(default)]
    pub resource_arn: Option<String>,
    pub execution_details: EcsExecutionDetails,
    #[serde(default)]
    pub hook_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsExecutionDetails {
    pub service_arn: String,
    pub target_service_revision_arn: String,
    #[serde(default)]
    pub test_traffic_weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub production_traffic_weights: BTreeMap<String, f64>,
}

impl EcsLifecycleHook {
    /// Whether ECS is rolling back: on a rollback it re-invokes the
    /// TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT hooks with the same
    /// (green) target revision and the traffic weights pointing back to the
    /// previous revision
    /// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html).
    pub fn is_rollback(&self) -> bool {
        let weights = match self.lifecycle_stage.as_str() {
            "TEST_TRAFFIC_SHIFT" => &self.execution_details.test_traffic_weights,
            "PRODUCTION_TRAFFIC_SHIFT" => &self.execution_details.production_traffic_weights,
            _ => return false,
        };
        let target = &self.execution_details.target_service_revision_arn;
        let to_target = weights.get(target).copied().unwrap_or(0.0);
        let elsewhere: f64 = weights.iter().filter(|(revision, _)| *revision != target).map(|(_, w)| w).sum();
        to_target == 0.0 && elsewhere > 0.0
    }
}

/// What an ECS native hook answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsHookResponse {
    /// In ECS's words: `SUCCEEDED`, `FAILED` or `IN_PROGRESS`.
    #[serde(with = "ecs_hook_status")]
    pub hook_status: HookStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_back_delay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_details: Option<serde_json::Value>,
}

/// A [`HookStatus`] as ECS writes it in a hook response.
mod ecs_hook_status {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::hooks::HookStatus;

    pub fn serialize<S: Serializer>(status: &HookStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.ecs_word())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HookStatus, D::Error> {
        let word = String::deserialize(d)?;
        [HookStatus::Succeeded, HookStatus::Failed, HookStatus::InProgress]
            .into_iter()
            .find(|s| s.ecs_word() == word)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown hookStatus {word:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(repository_name: &str) -> ImageScanCompleted {
        ImageScanCompleted {
            scan_status: "COMPLETE".into(),
            repository_name: Some(repository_name.into()),
            image_digest: Some("sha256:00".into()),
            image_tags: vec![],
            finding_severity_counts: BTreeMap::new(),
        }
    }

    #[test]
    fn repository_is_read_from_a_name_or_an_arn() {
        assert_eq!(scan("payments-api").repository(), Some("payments-api"));
        assert_eq!(
            scan("arn:aws:ecr:us-east-1:123456789012:repository/team/payments-api").repository(),
            Some("team/payments-api")
        );
        let ec2 = ImageScanCompleted { repository_name: None, image_digest: None, ..scan("x") };
        assert_eq!(ec2.image(), None);
    }

    #[test]
    fn an_inspector_finding_names_its_ecr_image() {
        let event: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/aws/inspector2-finding-ecr.aws-ecr-docs.json"
        ))
        .unwrap();
        let finding: InspectorFinding = serde_json::from_value(event["detail"].clone()).unwrap();
        assert_eq!(
            finding.image(),
            Some((
                "amazon/amazon-ecs-sample",
                "sha256:36c7b282abd0186e01419f2e58743e1bf635808231049bbc9d77e5EXAMPLE"
            ))
        );
        let ec2: InspectorFinding = serde_json::from_value(serde_json::json!({
            "resources": [{"type": "AWS_EC2_INSTANCE", "id": "i-0123", "details": {"awsEc2Instance": {}}}]
        }))
        .unwrap();
        assert_eq!(ec2.image(), None);
    }
}
