//! Reading a task definition from ECS into the domain's model.

use shipgate_core::digest::Digest;
use shipgate_core::taskdef::{
    Capabilities, ContainerDefinition, EnvironmentVariable, LinuxParameters, LogConfiguration,
    RuntimePlatform, Secret, TaskDefinition,
};

use crate::error::{AwsError, aws_err};

/// Amazon ECS: task definitions and service revisions.
#[derive(Debug, Clone)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }

    pub fn connect(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_ecs::Client::new(sdk))
    }

    /// The task definition named by ARN or `family:revision`.
    pub async fn describe_task_definition(&self, task_definition: &str) -> Result<TaskDefinition, AwsError> {
        let client = &self.client;
        const OP: &str = "DescribeTaskDefinition";
        let output = client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(aws_err("ECS", OP))?;
        let td = output.task_definition().ok_or_else(|| {
            AwsError::new("ECS", OP, format!("no task definition in the answer for {task_definition}"))
        })?;
        Ok(TaskDefinition {
            family: td.family().map(str::to_owned),
            task_definition_arn: td.task_definition_arn().map(str::to_owned),
            container_definitions: td.container_definitions().iter().map(container).collect(),
            network_mode: td.network_mode().map(|m| m.as_str().to_owned()),
            pid_mode: td.pid_mode().map(|m| m.as_str().to_owned()),
            ipc_mode: td.ipc_mode().map(|m| m.as_str().to_owned()),
            runtime_platform: td.runtime_platform().map(|p| RuntimePlatform {
                cpu_architecture: p.cpu_architecture().map(|c| c.as_str().to_owned()),
                operating_system_family: p.operating_system_family().map(|f| f.as_str().to_owned()),
            }),
        })
    }

    pub async fn service_revision(&self, revision_arn: &str) -> Result<Option<ServiceRevision>, AwsError> {
        let client = &self.client;
        let output = client
            .describe_service_revisions()
            .service_revision_arns(revision_arn)
            .send()
            .await
            .map_err(aws_err("ECS", "DescribeServiceRevisions"))?;
        Ok(output.service_revisions().first().and_then(|r| {
            Some(ServiceRevision {
                task_definition: r.task_definition()?.to_owned(),
                image_digests: r
                    .container_images()
                    .iter()
                    .filter_map(|c| {
                        Some((c.container_name()?.to_owned(), Digest::parse(c.image_digest()?).ok()?))
                    })
                    .collect(),
            })
        }))
    }
}

/// An ECS service revision (ECS native blue/green): its task definition, and
/// the digest ECS resolved each container's image to when it created the
/// revision, which is what its tasks run even when the task definition
/// names a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRevision {
    pub task_definition: String,
    /// Container name -> resolved image digest.
    pub image_digests: std::collections::BTreeMap<String, Digest>,
}

fn container(c: &aws_sdk_ecs::types::ContainerDefinition) -> ContainerDefinition {
    ContainerDefinition {
        name: c.name().unwrap_or_default().to_owned(),
        image: c.image().unwrap_or_default().to_owned(),
        privileged: c.privileged(),
        readonly_root_filesystem: c.readonly_root_filesystem(),
        user: c.user().map(str::to_owned),
        linux_parameters: c.linux_parameters().map(|lp| LinuxParameters {
            capabilities: lp
                .capabilities()
                .map(|caps| Capabilities { add: caps.add().to_vec(), drop: caps.drop().to_vec() }),
        }),
        environment: c
            .environment()
            .iter()
            .map(|kv| EnvironmentVariable {
                name: kv.name().unwrap_or_default().to_owned(),
                value: kv.value().map(str::to_owned),
            })
            .collect(),
        secrets: c
            .secrets()
            .iter()
            .map(|s| Secret { name: s.name().to_owned(), value_from: s.value_from().to_owned() })
            .collect(),
        log_configuration: c
            .log_configuration()
            .map(|l| LogConfiguration { log_driver: l.log_driver().as_str().to_owned() }),
    }
}
