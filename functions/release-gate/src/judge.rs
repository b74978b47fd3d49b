//! Judging a job: its build output read with the job's credentials, the
//! policy that applies, the task definition's rules and each image's
//! findings as they are at decision time.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::codepipeline_job::CodePipelineJobEvent;
use chrono::{DateTime, Utc};
use shipgate_aws::artifacts::{
    ArtifactCredentials, ArtifactError, ArtifactFiles, ArtifactLocation, Wanted, read_files,
};
use shipgate_aws::codepipeline::TemplatePath;
use shipgate_aws::inspector::judge_now;
use shipgate_aws::policies::{ImagePolicyError, OwnPolicy, PolicyLookup, image_policy, load_central_policy};
use shipgate_aws::{AwsError, decode};
use shipgate_core::digest::{Digest, ImageDigest, NotADigest};
use shipgate_core::gate::{
    Continuation, GateParameters, ImageDetail, ImageScan, Judgement, Scanned, combine, image_placeholders,
    substitute_image_placeholders,
};
use shipgate_core::image::EcrImage;
use shipgate_core::lkg::NoPolicy;
use shipgate_core::policy::{Policy, UnknownEnvironment, layer};
use shipgate_core::rules::{check_task_definition, image_platform};
use shipgate_core::scan::{ScanVerdict, unscannable};
use shipgate_core::taskdef::TaskDefinition;
use shipgate_core::validate::parse_policy;

use crate::{Basis, Deps};

const FILES: [&str; 3] = ["imageDetail.json", "taskdef.json", "appsec.yaml"];

/// Why the gate refuses to judge a job. The job fails closed, with this as
/// its reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("invalid CodePipeline job event: {0}")]
    Event(String),
    /// `UserParameters` or the continuation token is unusable (the message
    /// names which).
    #[error("{0}")]
    Parameters(String),
    #[error("the job carries no artifactCredentials")]
    NoCredentials,
    #[error("the action has no input artifact: give it the build output (imageDetail.json, taskdef.json)")]
    NoInputArtifact,
    #[error("input artifact {0} has no S3 location")]
    NoArtifactLocation(String),
    #[error("{file} is missing from the input artifact(s) {artifacts}")]
    MissingFile { file: &'static str, artifacts: String },
    /// `imageDetail.json` is unusable (the message says how).
    #[error("{0}")]
    ImageDetail(String),
    #[error("imageDetail.json ImageURI {0} is not an ECR image; set UserParameters.repository")]
    NotEcr(String),
    #[error("ECR has no image {repository}:{tag}")]
    NoSuchImage { repository: String, tag: String },
    #[error("ECR has no image {repository}@{digest}")]
    NoSuchDigest { repository: String, digest: Digest },
    #[error("imageDetail.json ImageURI: {0}")]
    NotADigest(#[from] NotADigest),
    #[error(transparent)]
    NoPolicy(#[from] NoPolicy),
    #[error(transparent)]
    UnknownEnvironment(#[from] UnknownEnvironment),
    /// The policy of an image the build did not produce (a sidecar).
    #[error("image {image}: {source}")]
    OwnPolicy {
        image: String,
        #[source]
        source: ImagePolicyError,
    },
    #[error("the repository's appsec.yaml is invalid: {0}")]
    RepositoryPolicy(String),
    #[error("taskdef.json: {0}")]
    TaskDefinition(String),
    /// More images than the gate can tell apart.
    #[error("{0}")]
    AmbiguousImages(String),
    /// Several task definitions, and nothing says which is deployed.
    #[error("{0}")]
    AmbiguousTaskdef(String),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The job as the invoke event gives it.
struct Job {
    params: GateParameters,
    continuation: Option<Continuation>,
    credentials: ArtifactCredentials,
    artifacts: Vec<ArtifactLocation>,
}

/// What the build produced, as read from the input artifacts.
struct BuildOutput {
    image_detail: ImageDetail,
    taskdef: String,
    repository_policy: Option<String>,
}

/// The image the build pushed, resolved to its digest.
struct BuiltImage {
    uri: String,
    repository: String,
    digest: Digest,
}

/// Judges the job in its steps: read the job, read the build output,
/// resolve the image, resolve the policy, judge each container and image.
/// The basis says what was known when it stopped, refusal or not.
pub(crate) async fn judge_job(
    deps: &Deps,
    payload: serde_json::Value,
    pipeline: Option<&str>,
    now: DateTime<Utc>,
) -> (Basis, Result<(Judgement, Option<Continuation>), Refusal>) {
    let mut basis = Basis::default();
    let judged = async {
        let job = read_job(payload)?;
        basis.environment = job.params.environment.clone();
        let taskdef = task_definition_source(deps, &job, pipeline, &mut basis).await?;
        // Parameters that name the policy or the repository say which policy
        // applies before the artifact is read: one wait for both.
        let (output, central) = match (&job.params.policy, &job.params.repository) {
            (None, None) => (read_build_output(deps, &job, &taskdef).await?, None),
            (named, repository) => {
                let scope = repository.as_deref().unwrap_or_default();
                let (output, central) = tokio::join!(
                    read_build_output(deps, &job, &taskdef),
                    load_central_policy(&deps.bucket, named.as_deref(), scope)
                );
                (output?, Some(central?))
            }
        };
        basis.image = Some(output.image_detail.image_uri.trim().to_owned());
        let image = resolve_image(deps, &job.params, &output, &mut basis).await?;
        let policy = resolve_policy(deps, &job.params, &image, &output, central, now, &mut basis).await?;
        let judgement = judge_images(deps, &job, &output, &image, &policy, now).await?;
        Ok((judgement, job.continuation))
    }
    .await;
    (basis, judged)
}

/// Step 1: the job's parameters, continuation and input artifacts.
fn read_job(payload: serde_json::Value) -> Result<Job, Refusal> {
    let event: CodePipelineJobEvent = decode(payload).map_err(|e| Refusal::Event(e.0))?;
    let data = event.code_pipeline_job.data;
    let params = GateParameters::parse(data.action_configuration.configuration.user_parameters.as_deref())
        .map_err(Refusal::Parameters)?;
    let continuation = data
        .continuation_token
        .as_deref()
        .map(Continuation::from_token)
        .transpose()
        .map_err(Refusal::Parameters)?;
    let credentials = ArtifactCredentials {
        access_key_id: data.artifact_credentials.access_key_id.clone().unwrap_or_default(),
        secret_access_key: data.artifact_credentials.secret_access_key.clone().unwrap_or_default(),
        session_token: data.artifact_credentials.session_token.clone(),
    };
    if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
        return Err(Refusal::NoCredentials);
    }
    if data.input_artifacts.is_empty() {
        return Err(Refusal::NoInputArtifact);
    }
    let artifacts = data
        .input_artifacts
        .iter()
        .map(|artifact| {
            let name = artifact.name.clone().unwrap_or_else(|| "input".into());
            let s3 = &artifact.location.s3_location;
            match (s3.bucket_name.clone(), s3.object_key.clone()) {
                (Some(bucket), Some(key)) => Ok(ArtifactLocation { name, bucket, key }),
                _ => Err(Refusal::NoArtifactLocation(name)),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Job { params, continuation, credentials, artifacts })
}

/// Step 2: the build output, read with the job's own credentials. A file in
/// an earlier artifact wins over the same file in a later one, the
/// shallowest within one; the task definition is the one the deployment
/// uses (`task_definition_source`).
async fn read_build_output(deps: &Deps, job: &Job, taskdef: &TaskdefSource) -> Result<BuildOutput, Refusal> {
    let named: Vec<&str> = match taskdef {
        TaskdefSource::Named(paths) => paths.iter().map(|p| p.path.as_str()).collect(),
        TaskdefSource::OnlyOne => Vec::new(),
    };
    let wanted = Wanted { names: &FILES, paths: &named };
    let mut artifacts: Vec<(&str, ArtifactFiles)> = Vec::new();
    for location in &job.artifacts {
        artifacts
            .push((location.name.as_str(), read_files(&deps.sdk, &job.credentials, location, wanted).await?));
    }
    // Every image the deployment runs is judged, or the job fails: with
    // several images the gate cannot tell which fills which placeholder.
    let image_details: Vec<&str> = artifacts
        .iter()
        .filter(|(_, f)| f.shallowest("imageDetail.json").is_some())
        .map(|(n, _)| *n)
        .collect();
    if image_details.len() > 1 {
        return Err(Refusal::AmbiguousImages(format!(
            "the input artifacts {} each carry an imageDetail.json; the gate cannot tell which image fills which \
             <IMAGEn_NAME>, so it cannot judge every image the deployment runs",
            image_details.join(", ")
        )));
    }
    let missing = |file: &'static str| Refusal::MissingFile {
        file,
        artifacts: job.artifacts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "),
    };
    let first = |file: &str| artifacts.iter().find_map(|(_, f)| f.shallowest(file)).map(str::to_owned);
    let image_detail = first("imageDetail.json").ok_or_else(|| missing("imageDetail.json"))?;
    let image_detail = ImageDetail::parse(&image_detail).map_err(Refusal::ImageDetail)?;
    let taskdef = pick_taskdef(&artifacts, taskdef).ok_or_else(|| missing("taskdef.json"))??;
    let placeholders = image_placeholders(&taskdef);
    if placeholders.len() > 1 {
        let names: Vec<String> = placeholders.iter().map(|p| format!("<{p}>")).collect();
        return Err(Refusal::AmbiguousImages(format!(
            "taskdef.json names {} images ({}) but the build output has one imageDetail.json; the gate cannot \
             tell which image is which, so it cannot judge every image the deployment runs",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(BuildOutput { image_detail, taskdef, repository_policy: first("appsec.yaml") })
}

/// Where the task definition the deployment uses is.
enum TaskdefSource {
    /// Named: by `UserParameters.taskdef` (any input artifact), or by the
    /// pipeline's deploy action (its artifact).
    Named(Vec<TemplatePath>),
    /// Not named: the one `taskdef.json` of the input artifacts.
    OnlyOne,
}

/// The task definition the deployment uses, from what the job and the
/// pipeline say: `UserParameters.taskdef`, else the path the pipeline's
/// CodeDeploy blue/green action reads from one of this action's input
/// artifacts (which must be one), else the only `taskdef.json`. Unreadable
/// pipelines fall back to the last, with a note.
async fn task_definition_source(
    deps: &Deps,
    job: &Job,
    pipeline: Option<&str>,
    basis: &mut Basis,
) -> Result<TaskdefSource, Refusal> {
    if let Some(path) = &job.params.taskdef {
        return Ok(TaskdefSource::Named(vec![TemplatePath { artifact: String::new(), path: path.clone() }]));
    }
    let Some(pipeline) = pipeline else { return Ok(TaskdefSource::OnlyOne) };
    let deployed = match deps.codepipeline.deployed_task_definitions(pipeline).await {
        Ok(deployed) => deployed,
        Err(e) => {
            basis.notes.push(format!(
                "the pipeline's deploy actions could not be read ({e}); judged the only taskdef.json"
            ));
            return Ok(TaskdefSource::OnlyOne);
        }
    };
    let ours: Vec<TemplatePath> =
        deployed.into_iter().filter(|t| job.artifacts.iter().any(|a| a.name == t.artifact)).collect();
    match ours.len() {
        0 => Ok(TaskdefSource::OnlyOne),
        1 => Ok(TaskdefSource::Named(ours)),
        _ => Err(Refusal::AmbiguousTaskdef(format!(
            "pipeline {pipeline}'s deploy actions use {} task definitions ({}); name the one this gate judges in \
             UserParameters.taskdef",
            ours.len(),
            ours.iter().map(|t| format!("{}::{}", t.artifact, t.path)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The task definition text `source` says, `None` when it is not there;
/// `Some(Err)` when the artifacts hold several and nothing names one.
fn pick_taskdef(
    artifacts: &[(&str, ArtifactFiles)],
    source: &TaskdefSource,
) -> Option<Result<String, Refusal>> {
    match source {
        TaskdefSource::Named(paths) => paths.iter().find_map(|t| {
            artifacts
                .iter()
                .filter(|(name, _)| t.artifact.is_empty() || *name == t.artifact)
                .find_map(|(_, files)| files.at(&t.path))
                .map(|text| Ok(text.to_owned()))
        }),
        TaskdefSource::OnlyOne => {
            let all: Vec<String> = artifacts
                .iter()
                .flat_map(|(name, files)| {
                    files.named("taskdef.json").map(move |(path, _)| format!("{name}::{path}"))
                })
                .collect();
            if all.len() > 1 {
                return Some(Err(Refusal::AmbiguousTaskdef(format!(
                    "the input artifacts hold {} task definitions ({}) and nothing says which the deployment uses; \
                     name it in UserParameters.taskdef (or in the pipeline's CodeDeployToECS action)",
                    all.len(),
                    all.join(", ")
                ))));
            }
            artifacts.iter().find_map(|(_, files)| files.shallowest("taskdef.json")).map(|t| Ok(t.to_owned()))
        }
    }
}

/// Step 3: the built image's repository and digest (a tag is resolved in ECR).
async fn resolve_image(
    deps: &Deps,
    params: &GateParameters,
    output: &BuildOutput,
    basis: &mut Basis,
) -> Result<BuiltImage, Refusal> {
    let uri = output.image_detail.image_uri.trim().to_owned();
    let ecr_image = EcrImage::parse(&uri);
    let repository = params
        .repository
        .clone()
        .or_else(|| ecr_image.as_ref().map(|i| i.repository.clone()))
        .ok_or_else(|| Refusal::NotEcr(uri.clone()))?;
    basis.repository = Some(repository.clone());
    let digest = match ecr_image.as_ref().and_then(|i| i.digest.as_deref()) {
        Some(d) => Digest::parse(d)?,
        None => {
            let registry_id = ecr_image.as_ref().map(|i| i.registry_id.as_str());
            let tag = ecr_image.as_ref().and_then(|i| i.tag.clone()).unwrap_or_else(|| "latest".into());
            deps.ecr
                .resolve_digest(registry_id, &repository, &tag)
                .await?
                .ok_or(Refusal::NoSuchImage { repository: repository.clone(), tag })?
        }
    };
    basis.digest = Some(digest.to_string());
    Ok(BuiltImage { uri, repository, digest })
}

/// Step 4: the named central policy (or the repository's, else the
/// default; `central` when already read), its environment overlay, and the
/// repository's own file.
async fn resolve_policy(
    deps: &Deps,
    params: &GateParameters,
    image: &BuiltImage,
    output: &BuildOutput,
    central: Option<PolicyLookup>,
    now: DateTime<Utc>,
    basis: &mut Basis,
) -> Result<Policy, Refusal> {
    let lookup = match central {
        Some(lookup) => lookup,
        None => load_central_policy(&deps.bucket, params.policy.as_deref(), &image.repository).await?,
    };
    let (key, lkg) = lookup.found()?;
    basis.policy_key = Some(key.clone());
    basis.policy_sha256 = Some(lkg.sha256.clone());
    basis.owner = lkg.document.policy.owner.clone();
    let central = lkg.document.environment(params.environment.as_deref())?;
    if let Some(env) = &params.environment
        && lkg.document.environments.is_empty()
    {
        basis.notes.push(format!("{key} defines no environments; the base policy applied for {env}"));
    }
    let policy = match &output.repository_policy {
        None => central.clone(),
        Some(text) => {
            let repo_doc = parse_policy(text, Some(now)).map_err(|invalid| {
                let errors: Vec<String> = invalid.errors.iter().map(|d| format!("appsec.yaml:{d}")).collect();
                Refusal::RepositoryPolicy(errors.join("; "))
            })?;
            basis.repository_policy = true;
            let (repo_policy, _) = repo_doc.document.for_environment(params.environment.as_deref());
            layer(central, repo_policy)
        }
    };
    Ok(policy)
}

/// Step 5: the task-definition rules, and each distinct ECR image's scan,
/// judged at decision time from its current findings in ECR: the built
/// image's under the release's policy, any other repository's image (a
/// sidecar) under that repository's own policy, as deploy-hooks judges it.
async fn judge_images(
    deps: &Deps,
    job: &Job,
    output: &BuildOutput,
    image: &BuiltImage,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Judgement, Refusal> {
    let taskdef = TaskDefinition::from_json(&substitute_image_placeholders(&output.taskdef, &image.uri))
        .map_err(|e| Refusal::TaskDefinition(e.to_string()))?;
    let mut violations = check_task_definition(policy, &taskdef);

    let mut scans = Vec::new();
    let mut seen = BTreeSet::new();
    let mut own_policies: BTreeMap<String, OwnPolicy> = BTreeMap::new();
    for container in &taskdef.container_definitions {
        let reference = container.image.trim();
        let target = match EcrImage::parse(reference) {
            None => None,
            Some(i) if reference == image.uri => {
                Some((i.repository, Some(image.digest.clone()), i.registry_id))
            }
            // A digest that does not parse pins nothing (the `image_digest` rule says so too).
            Some(i) => Some((i.repository, i.digest.and_then(|d| Digest::parse(&d).ok()), i.registry_id)),
        };
        let verdict = match &target {
            None => unscannable(policy, format!("image {reference} is not in ECR, so it has no scan")),
            Some((_, None, _)) => unscannable(
                policy,
                format!("image {reference} is not pinned by digest, so its scan cannot be found"),
            ),
            Some((repo, Some(d), registry)) => {
                if !seen.insert((repo.clone(), d.clone())) {
                    continue;
                }
                // ECR scans each platform's image, never an index: an index
                // is judged by the children ECS may pull for the task's
                // platform.
                let manifest =
                    deps.ecr.get_manifest(&deps.http, Some(registry), repo, d).await?.ok_or_else(|| {
                        Refusal::NoSuchDigest { repository: repo.clone(), digest: d.clone() }
                    })?;
                let children = match image_platform(&taskdef, &container.name, reference, d, &manifest) {
                    Ok(children) => children,
                    Err(violation) => {
                        violations.push(violation);
                        continue;
                    }
                };
                let judged_by = if *repo == image.repository {
                    None
                } else {
                    if !own_policies.contains_key(repo) {
                        let found = image_policy(&deps.bucket, reference, job.params.environment.as_deref())
                            .await
                            .map_err(|source| Refusal::OwnPolicy { image: reference.to_owned(), source })?;
                        own_policies.insert(repo.clone(), found);
                    }
                    own_policies.get(repo)
                };
                // Each image a host of the task's platform may pull is
                // judged, and each must pass.
                for child in &children {
                    let scan_policy = judged_by.map_or(policy, |p| &p.policy);
                    let verdict =
                        judge_now(&deps.ecr, &deps.inspector, scan_policy, Some(registry), repo, child, now)
                            .await?;
                    let mut scan = scan_of(container.name.clone(), reference, repo, Some(child), verdict);
                    scan.index_digest = manifest.is_index().then(|| d.clone());
                    scan.policy = judged_by.map(|p| p.key.clone());
                    scans.push(scan);
                }
                continue;
            }
        };
        scans.push(scan_of(container.name.clone(), reference, "", None, verdict));
    }
    Ok(combine(policy, violations, scans, job.continuation, now))
}

/// The record of one image's judgement; without a digest (an image that
/// has no scan), the image as the task definition names it stands in.
fn scan_of(
    container: String,
    image: &str,
    repository: &str,
    digest: Option<&ImageDigest>,
    verdict: ScanVerdict,
) -> ImageScan {
    ImageScan {
        container,
        image: image.to_owned(),
        repository: repository.to_owned(),
        digest: digest.map_or_else(|| Scanned::Unscanned(image.to_owned()), |d| Scanned::Image(d.clone())),
        source: "ecr".to_owned(),
        index_digest: None,
        policy: None,
        verdict,
    }
}
