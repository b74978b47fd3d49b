//! Reporting a CodePipeline job's result, where a job runs, and starting
//! executions.

use std::time::Duration;

use aws_sdk_codepipeline::types::{
    ExecutionDetails, FailureDetails, FailureType, PipelineVariable, SourceRevisionOverride,
    SourceRevisionType,
};

use crate::clients::report_timeouts;
use crate::error::{AwsError, aws_err};

const SERVICE: &str = "CodePipeline";
/// CodePipeline's limits on the failure message and execution summary.
pub const MAX_FAILURE_MESSAGE: usize = 5000;
pub const MAX_SUMMARY: usize = 2048;
pub const MAX_CONTINUATION_TOKEN: usize = 2048;

/// What a job ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Succeeded {
        summary: String,
        output_variables: Vec<(String, String)>,
    },
    /// Not finished: CodePipeline invokes again with this token.
    Continue {
        token: String,
        summary: String,
    },
    Failed {
        message: String,
    },
}

/// What a result is, in a word: `succeeded`, `continue` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Succeeded,
    Continue,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Continue => "continue",
            JobStatus::Failed => "failed",
        }
    }
}

impl JobResult {
    pub fn status(&self) -> JobStatus {
        match self {
            JobResult::Succeeded { .. } => JobStatus::Succeeded,
            JobResult::Continue { .. } => JobStatus::Continue,
            JobResult::Failed { .. } => JobStatus::Failed,
        }
    }
}

/// Where a job runs: `GetJobDetails`' pipeline context (the invoke event
/// does not say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobContext {
    pub pipeline: Option<String>,
    pub execution_id: Option<String>,
    pub stage: Option<String>,
    pub action: Option<String>,
}

/// A file a deploy action reads from an input artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePath {
    pub artifact: String,
    pub path: String,
}

/// AWS CodePipeline: job details, job results and starting executions.
#[derive(Debug, Clone)]
pub struct CodePipeline {
    client: aws_sdk_codepipeline::Client,
}

impl CodePipeline {
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Self { client }
    }

    pub fn connect(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_codepipeline::Client::new(sdk))
    }

    /// The job's pipeline context, or `None` when CodePipeline gives none.
    pub async fn job_context(&self, job_id: &str) -> Result<Option<JobContext>, AwsError> {
        let client = &self.client;
        let details = client
            .get_job_details()
            .job_id(job_id)
            .send()
            .await
            .map_err(aws_err(SERVICE, "GetJobDetails"))?;
        Ok(details.job_details.and_then(|j| j.data).and_then(|d| d.pipeline_context).map(|c| JobContext {
            pipeline: c.pipeline_name,
            execution_id: c.pipeline_execution_id,
            stage: c.stage.and_then(|s| s.name),
            action: c.action.and_then(|a| a.name),
        }))
    }

    /// The task definition each CodeDeploy blue/green deploy action of
    /// `pipeline` deploys: its `TaskDefinitionTemplateArtifact` and
    /// `TaskDefinitionTemplatePath` (`taskdef.json` when unset, as the
    /// action's reference says), in pipeline order, each once.
    pub async fn deployed_task_definitions(&self, pipeline: &str) -> Result<Vec<TemplatePath>, AwsError> {
        let client = &self.client;
        let output =
            client.get_pipeline().name(pipeline).send().await.map_err(aws_err(SERVICE, "GetPipeline"))?;
        let mut out: Vec<TemplatePath> = Vec::new();
        let stages = output.pipeline.map(|p| p.stages).unwrap_or_default();
        for action in stages.iter().flat_map(|s| s.actions()) {
            let is_ecs_blue_green =
                action.action_type_id().is_some_and(|t| t.provider() == "CodeDeployToECS");
            let Some(configuration) = action.configuration().filter(|_| is_ecs_blue_green) else { continue };
            let Some(artifact) = configuration.get("TaskDefinitionTemplateArtifact") else { continue };
            let path = configuration.get("TaskDefinitionTemplatePath").map_or("taskdef.json", String::as_str);
            let found = TemplatePath { artifact: artifact.clone(), path: path.to_owned() };
            if !out.contains(&found) {
                out.push(found);
            }
        }
        Ok(out)
    }

    /// Reports `result` for `job_id` within `budget` (retries included).
    /// Messages are cut to CodePipeline's limits.
    pub async fn report_job(
        &self,
        job_id: &str,
        result: &JobResult,
        budget: Duration,
    ) -> Result<Reported, AwsError> {
        let client = &self.client;
        // The same client (connection pool, credentials), with the report's timeouts.
        let config = client.config().to_builder().timeout_config(report_timeouts(budget)).build();
        let client = &aws_sdk_codepipeline::Client::from_conf(config);
        let (operation, outcome) = match result {
            JobResult::Succeeded { summary, output_variables } => {
                let mut request = client
                    .put_job_success_result()
                    .job_id(job_id)
                    .execution_details(execution_details(summary));
                for (k, v) in output_variables {
                    request = request.output_variables(k, v);
                }
                (
                    "PutJobSuccessResult",
                    request.send().await.map(|_| ()).map_err(aws_err(SERVICE, "PutJobSuccessResult")),
                )
            }
            JobResult::Continue { token, summary } => {
                if token.len() > MAX_CONTINUATION_TOKEN {
                    return Err(AwsError::new(
                        SERVICE,
                        "PutJobSuccessResult",
                        "continuation token over 2048 characters",
                    ));
                }
                let request = client
                    .put_job_success_result()
                    .job_id(job_id)
                    .continuation_token(token)
                    .execution_details(execution_details(summary));
                (
                    "PutJobSuccessResult",
                    request.send().await.map(|_| ()).map_err(aws_err(SERVICE, "PutJobSuccessResult")),
                )
            }
            JobResult::Failed { message } => {
                let details = FailureDetails::builder()
                    .r#type(FailureType::JobFailed)
                    .message(truncate(message, MAX_FAILURE_MESSAGE))
                    .build()
                    .map_err(|e| AwsError::new(SERVICE, "PutJobFailureResult", e.to_string()))?;
                let request = client.put_job_failure_result().job_id(job_id).failure_details(details);
                (
                    "PutJobFailureResult",
                    request.send().await.map(|_| ()).map_err(aws_err(SERVICE, "PutJobFailureResult")),
                )
            }
        };
        match outcome {
            Ok(()) => Ok(Reported::Now),
            Err(err) if err.is("InvalidJobStateException") => {
                tracing::info!(job_id, operation, "job was already reported; treating as done");
                Ok(Reported::AlreadyDone)
            }
            Err(err) => Err(err),
        }
    }

    /// Starts an execution and returns its id.
    pub async fn start_execution(&self, start: &StartExecution) -> Result<String, AwsError> {
        let client = &self.client;
        const OP: &str = "StartPipelineExecution";
        let revision = SourceRevisionOverride::builder()
            .action_name(&start.source_action)
            .revision_type(SourceRevisionType::CommitId)
            .revision_value(&start.commit)
            .build()
            .map_err(|e| AwsError::new(SERVICE, OP, e.to_string()))?;
        let mut request = client
            .start_pipeline_execution()
            .name(&start.pipeline)
            .client_request_token(&start.client_request_token)
            .source_revisions(revision);
        for (name, value) in &start.variables {
            let variable = PipelineVariable::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| AwsError::new(SERVICE, OP, e.to_string()))?;
            request = request.variables(variable);
        }
        let output = request.send().await.map_err(aws_err(SERVICE, OP))?;
        Ok(output.pipeline_execution_id().unwrap_or_default().to_owned())
    }
}

/// How a report went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    Now,
    /// The job had been reported already (a duplicate delivery); that is
    /// success, not an error.
    AlreadyDone,
}

fn execution_details(summary: &str) -> ExecutionDetails {
    ExecutionDetails::builder().summary(truncate(summary, MAX_SUMMARY)).build()
}

/// A new pipeline execution's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartExecution {
    pub pipeline: String,
    /// The source action whose revision is overridden.
    pub source_action: String,
    pub commit: String,
    pub variables: Vec<(String, String)>,
    pub client_request_token: String,
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    const MARK: &str = " …";
    let mut end = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_limit_and_char_boundaries() {
        let long = "é".repeat(3000);
        let cut = truncate(&long, 2048);
        assert!(cut.len() <= 2048);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 2048), "short");
    }
}
