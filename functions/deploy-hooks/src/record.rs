//! What a completed deployment runs, written as its running record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use shipgate_aws::AwsError;
use shipgate_aws::exposure::{Recorded, record_deployment};
use shipgate_core::digest::{Digest, NotADigest};
use shipgate_core::exposure::{RunningImage, RunningService};
use shipgate_core::image::EcrImage;
use tracing::info;

use crate::checks::{ImageError, image_that_runs};
use crate::{Deps, Recording};

/// Why what a deployment runs could not be read or written (worth a retry).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The AppSpec does not name a task definition.
    #[error("{0}")]
    AppSpec(String),
    #[error("executionDetails.serviceArn {0:?} is not an ECS service ARN")]
    NotAServiceArn(String),
    #[error("ECR has no image {repository}:{tag}")]
    NoSuchTag { repository: String, tag: String },
    #[error("image {0} names neither a tag nor a digest")]
    Unpinned(String),
    #[error("image {image}: {source}")]
    NotADigest {
        image: String,
        #[source]
        source: NotADigest,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("ECS does not know service revision {0}")]
    NoRevision(String),
}

/// Records that `service` runs `task_definition`'s ECR images (each as the
/// image its platform runs) since `deployed_at`.
pub(crate) async fn record_running(
    deps: &Deps,
    deployment: &str,
    service: String,
    task_definition: &str,
    resolved: &BTreeMap<String, Digest>,
    deployed_at: DateTime<Utc>,
) -> Result<Recording, RecordError> {
    let td = deps.ecs.describe_task_definition(task_definition).await?;
    let mut images = Vec::new();
    for c in &td.container_definitions {
        let image = c.image.trim();
        // Inspector scans ECR images only: nothing else can be re-judged.
        let Some(ecr) = EcrImage::parse(image) else { continue };
        let digest = match (resolved.get(&c.name), &ecr.digest, &ecr.tag) {
            (Some(d), _, _) => d.clone(),
            (None, Some(d), _) => Digest::parse(d)
                .map_err(|source| RecordError::NotADigest { image: image.to_owned(), source })?,
            (None, None, Some(tag)) => {
                deps.ecr.resolve_digest(Some(&ecr.registry_id), &ecr.repository, tag).await?.ok_or_else(
                    || RecordError::NoSuchTag { repository: ecr.repository.clone(), tag: tag.clone() },
                )?
            }
            (None, None, None) => return Err(RecordError::Unpinned(image.to_owned())),
        };
        // Every image a host of the task's platform may pull is running.
        for runs in image_that_runs(deps, &td, &c.name, image, &digest).await? {
            images.push(RunningImage {
                container: c.name.clone(),
                image: image.to_owned(),
                repository: ecr.repository.clone(),
                digest: runs,
                exposure: Default::default(),
            });
        }
    }
    let running = RunningService {
        environment: deps.environment.clone(),
        service,
        deployment: deployment.to_owned(),
        deployed_at,
        images,
    };
    let key = running.key();
    let digests: Vec<String> = running.digests().into_iter().map(ToString::to_string).collect();
    Ok(match record_deployment(&deps.bucket, running).await? {
        Recorded::Written(_) => {
            info!(%key, ?digests, "running images recorded");
            Recording { deployment: deployment.to_owned(), recorded: Some(key), digests, ignored: None }
        }
        Recorded::Kept => Recording {
            deployment: deployment.to_owned(),
            recorded: None,
            digests,
            ignored: Some(format!("{key} already records this or a later deployment")),
        },
    })
}
