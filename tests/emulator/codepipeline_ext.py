"""CodePipeline as AWS answers where moto does not: the pipeline's metadata
times, starting executions and the job APIs."""

from __future__ import annotations

import json
import uuid

from moto.codepipeline.models import codepipeline_backends
from moto.codepipeline.responses import CodePipelineResponse

from state import STATE, epoch_seconds, fail

_original_get_pipeline = CodePipelineResponse.get_pipeline


def get_pipeline(self: CodePipelineResponse) -> str:
    """moto writes the pipeline's metadata times as ISO strings; the JSON
    protocol (and the SDKs that parse it strictly) wants epoch seconds."""
    body = json.loads(_original_get_pipeline(self))
    metadata = body.get("metadata", {})
    for key in ("created", "updated", "pollingDisabledAt"):
        if key in metadata:
            metadata[key] = epoch_seconds(metadata[key])
    with STATE.lock:
        STATE.record("codepipeline", "GetPipeline", json.loads(self.body or "{}"), "Found")
    return json.dumps(body)


def start_pipeline_execution(self: CodePipelineResponse) -> str:
    params = json.loads(self.body or "{}")
    name = params.get("name", "")
    backend = codepipeline_backends[self.current_account][self.region]
    with STATE.lock:
        if name not in backend.pipelines:
            fail(
                "codepipeline",
                "StartPipelineExecution",
                params,
                "PipelineNotFoundException",
                f"Account '{self.current_account}' does not have a pipeline with name '{name}'",
            )
        token = params.get("clientRequestToken")
        key = (name, token) if token else None
        if key and key in STATE.execution_tokens:
            execution_id = STATE.execution_tokens[key]
            STATE.record("codepipeline", "StartPipelineExecution", params, "Duplicate")
        else:
            execution_id = str(uuid.uuid4())
            if key:
                STATE.execution_tokens[key] = execution_id
            STATE.executions[execution_id] = {
                "pipelineName": name,
                "pipelineExecutionId": execution_id,
                "status": "InProgress",
                "variables": params.get("variables", []),
                "sourceRevisions": params.get("sourceRevisions", []),
            }
            STATE.record("codepipeline", "StartPipelineExecution", params, "Started")
    return json.dumps({"pipelineExecutionId": execution_id})


def get_pipeline_execution(self: CodePipelineResponse) -> str:
    params = json.loads(self.body or "{}")
    with STATE.lock:
        execution = STATE.executions.get(params.get("pipelineExecutionId", ""))
        if execution is None or execution["pipelineName"] != params.get("pipelineName"):
            fail(
                "codepipeline",
                "GetPipelineExecution",
                params,
                "PipelineExecutionNotFoundException",
                "The pipeline execution was not found",
            )
        variables = [
            {"name": v.get("name"), "resolvedValue": v.get("value")}
            for v in execution["variables"]
        ]
        return json.dumps(
            {
                "pipelineExecution": {
                    "pipelineName": execution["pipelineName"],
                    "pipelineExecutionId": execution["pipelineExecutionId"],
                    "status": execution["status"],
                    "variables": variables,
                }
            }
        )


def get_job_details(self: CodePipelineResponse) -> str:
    params = json.loads(self.body or "{}")
    with STATE.lock:
        job = STATE.jobs.get(params.get("jobId", ""))
        if job is None:
            fail("codepipeline", "GetJobDetails", params, "JobNotFoundException", "The job was not found")
        STATE.record("codepipeline", "GetJobDetails", params, "Found")
        return json.dumps({"jobDetails": job})


def _put_job_result(self: CodePipelineResponse, action: str, outcome: str) -> str:
    params = json.loads(self.body or "{}")
    job_id = params.get("jobId", "")
    with STATE.lock:
        if job_id in STATE.finished_jobs:
            fail(
                "codepipeline",
                action,
                params,
                "InvalidJobStateException",
                f"Job {job_id} is not in a state that allows this action",
            )
        STATE.finished_jobs.add(job_id)
        STATE.record("codepipeline", action, params, outcome)
    return "{}"


def put_job_success_result(self: CodePipelineResponse) -> str:
    return _put_job_result(self, "PutJobSuccessResult", "Succeeded")


def put_job_failure_result(self: CodePipelineResponse) -> str:
    return _put_job_result(self, "PutJobFailureResult", "Failed")


