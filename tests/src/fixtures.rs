//! AWS resources and payloads tests make: deployment groups and deployments,
//! queues and what arrives on them, artifacts, webhook signatures.

use std::io::Write;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::*;

/// A container the default policy passes (a non-root user, a read-only root
/// file system, logs to CloudWatch), as ECS registers it.
pub fn compliant_container(name: &str, image: &str) -> aws_sdk_ecs::types::ContainerDefinition {
    use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
    ContainerDefinition::builder()
        .name(name)
        .memory(256)
        .image(image)
        .user("10001")
        .readonly_root_filesystem(true)
        .log_configuration(LogConfiguration::builder().log_driver(LogDriver::Awslogs).build().unwrap())
        .build()
}

/// Creates a CodeDeploy ECS application and its deployment group.
pub async fn create_deployment_group(sdk: &SdkConfig, application: &str, group: &str) {
    create_deployment_group_of(sdk, application, group, None).await;
}

/// [`create_deployment_group`] deploying ECS service `(cluster, service)`,
/// as `GetDeploymentGroup` then names it. Either may exist already.
pub async fn create_deployment_group_of(
    sdk: &SdkConfig,
    application: &str,
    group: &str,
    service: Option<(&str, &str)>,
) {
    use aws_sdk_codedeploy::types::{ComputePlatform, EcsService};
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let _ = codedeploy
        .create_application()
        .application_name(application)
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await;
    let service =
        service.map(|(cluster, name)| EcsService::builder().cluster_name(cluster).service_name(name).build());
    let _ = codedeploy
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .service_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/codedeploy"))
        .set_ecs_services(service.map(|s| vec![s]))
        .send()
        .await;
}

/// A CodeDeploy ECS deployment in `application`'s `group` whose AppSpec
/// content names `task_definition`: the deployment id.
pub async fn create_ecs_deployment(
    sdk: &SdkConfig,
    application: &str,
    group: &str,
    task_definition: &str,
) -> String {
    let appspec = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"{task_definition}\"\n        LoadBalancerInfo: {{ContainerName: app, ContainerPort: 8080}}\n"
    );
    create_deployment_of(sdk, application, group, appspec_content(&appspec)).await
}

/// An `AppSpecContent` revision holding `appspec`.
pub fn appspec_content(appspec: &str) -> aws_sdk_codedeploy::types::RevisionLocation {
    use aws_sdk_codedeploy::types::{AppSpecContent, RevisionLocation, RevisionLocationType};
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(appspec).build())
        .build()
}

/// A CodeDeploy deployment of `revision` in `application`'s `group`; its id.
pub async fn create_deployment_of(
    sdk: &SdkConfig,
    application: &str,
    group: &str,
    revision: aws_sdk_codedeploy::types::RevisionLocation,
) -> String {
    aws_sdk_codedeploy::Client::new(sdk)
        .create_deployment()
        .application_name(application)
        .deployment_group_name(group)
        .revision(revision)
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap()
}

/// The names of the JSON files in `dir` (not its subfolders), sorted.
pub fn json_files(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    files
}

/// Creates an SQS queue; returns its URL and ARN.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// An SQS queue subscribed to the fleet's notification topic: what people
/// would receive.
#[derive(Debug)]
pub struct Inbox {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) url: String,
}

impl Inbox {
    /// Every message delivered since the last call (SNS envelopes).
    pub async fn messages(&self) -> Vec<Value> {
        drain_queue(&self.sqs, &self.url).await
    }
}

/// Every message waiting in an SQS queue (JSON bodies), deleting them.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return messages;
        }
        for m in batch {
            messages.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
}

/// `sha256=<hex HMAC-SHA256>` of `body`, as GitHub signs a webhook.
pub fn github_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A zip archive of `(name, text)` files, as CodePipeline stores artifacts.
pub fn zip_files(files: &[(&str, String)]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut buffer);
    for (name, body) in files {
        writer.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(body.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    buffer.into_inner()
}
