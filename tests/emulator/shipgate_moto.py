"""Shipgate's local AWS: moto server, extended with what Shipgate needs and moto lacks.

Run it as `python3 tests/emulator/shipgate_moto.py [--port N]`. It binds
127.0.0.1 only (port 0 picks a free port), prints one line
`SHIPGATE_EMULATOR_READY http://127.0.0.1:PORT` when it accepts connections,
and exits when its standard input closes, so a test harness that dies can
never leave it running.

What it adds to moto, through the ordinary AWS APIs (real SDK clients talk to it):

* CodePipeline `StartPipelineExecution` (idempotent on `clientRequestToken`),
  `GetPipelineExecution`, `GetJobDetails` (for seeded jobs), `PutJobSuccessResult`,
  `PutJobFailureResult`
  (a second report for the same job answers `InvalidJobStateException`, as AWS does).
* CodeDeploy `PutLifecycleEventHookExecutionStatus` (a second report for the
  same hook execution answers `LifecycleEventAlreadyCompletedException`), and
  `ListDeploymentTargets` / `GetDeploymentTarget` for a deployment whose ECS
  lifecycle a test has seeded.
* ECS `DescribeServiceRevisions` for seeded service revisions.
* ECR `DescribeImageScanFindings` for seeded images: the seeded status and
  findings (basic and enhanced), paged with `maxResults` and a real `nextToken`.
* Inspector2 `ListFindings` of the seeded scans' enhanced findings, filtered
  by `ecrImageRepositoryName`, `ecrImageHash` and `findingStatus` (EQUALS),
  paged, each with its seeded `epss` score: ECR's own answer leaves `epss`
  out, as ECR's API has no such field, so EPSS reaches a caller only from
  Inspector, as in AWS.
* ECR image digests as AWS computes them: the SHA-256 of the manifest exactly
  as pushed (moto hashes the layer digests, or picks a random one for an
  image index); `PutImage` with an `imageDigest` that is not the manifest's
  answers `ImageDigestDoesNotMatchException`. So a test pushes an image index
  (OCI index or Docker manifest list) and its per-platform images with
  `PutImage` and gets ECR's digests.
* ECR `BatchGetImage` that also knows every image a test seeded a scan for
  (a scan implies the image: it answers as a single-platform linux/amd64 OCI
  image), honours `acceptedMediaTypes` (an image whose media type is not
  accepted is an `UnsupportedImageType` failure, as in AWS), and answers
  `ImageNotFound` failures for the rest.
* ECR's blob APIs, as `docker push` and `docker pull` use them:
  `InitiateLayerUpload`, `UploadLayerPart`, `CompleteLayerUpload` (the
  digest must be the SHA-256 of the bytes, else `InvalidLayerException`),
  and `GetDownloadUrlForLayer`, whose URL (AWS's is a presigned S3 URL)
  points at `/_shipgate/ecr/blobs/...` here and serves the blob without
  credentials, as a presigned URL does; an unknown blob is
  `LayersNotFoundException`.

And a small control API under `/_shipgate/` for tests (never an AWS path):

* `POST /_shipgate/ecr/scan-findings` seeds one image's scan
  (`repositoryName`, `imageDigest`, `status`, `findings`, `enhancedFindings`,
  optional `region`, `description`, `completedAt`); status `SCAN_NOT_FOUND`
  makes the API answer `ScanNotFoundException`.
* `POST /_shipgate/codepipeline/jobs` seeds a job (`jobId`, `pipelineName`,
  `pipelineExecutionId`, optional `stage`, `action`) for `GetJobDetails`.
* `POST /_shipgate/codedeploy/lifecycle` (`deploymentId`, `currentHook`) puts
  a deployment's ECS target at a lifecycle hook (earlier ones Succeeded).
* `POST /_shipgate/ecs/service-revisions` (`serviceRevisionArn`,
  `taskDefinition`) seeds a service revision.
* `GET /_shipgate/requests` lists every AWS request's method, path, action (where
  the request names one, or is a plain S3 object call), status and the access key
  id it was signed with.
* `POST /_shipgate/faults` makes the next `count` calls of one action fail with
  an HTTP status and error code (throttling, 5xx) before they reach moto:
  JSON-protocol actions by their `X-Amz-Target`, query-protocol ones (SNS
  `Publish`) by the form's `Action`, S3 object calls as `GetObject`,
  `PutObject` or `DeleteObject`, answered in that protocol's error shape.
* `GET /_shipgate/calls` lists every call the extension served (service,
  action, request parameters, outcome), so tests read back what was reported.
* `POST /_shipgate/reset` clears all of it and moto's state.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import json
import logging
import sys
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import jsonpath_ng.ext
from moto import backends as moto_backends
from moto.codedeploy.responses import CodeDeployResponse
from moto.codedeploy.models import codedeploy_backends
from moto.codepipeline.models import codepipeline_backends
from moto.codepipeline.responses import CodePipelineResponse
from moto.core.exceptions import JsonRESTError
from moto.ecr.models import ECRBackend, ecr_backends
from moto.ecr.models import Image as ECRImage
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.ecr.responses import ECRResponse
from moto.inspector2.responses import Inspector2Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import iam_enforcement
import template_iam

# Speed only, no behaviour: moto's EventBridge parses each target's input
# paths (eight by default) with a newly built jsonpath parser for every event
# it delivers, a third of the emulator's request time over a `make bench`
# run (py-spy). The same text always parses to the same expression, which
# `find` only reads.
jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)

DEFAULT_PAGE = 100
MAX_PAGE = 1000


# Held around every S3 object write (see `ShipgateApp._moto_as_aws`).
S3_WRITES = threading.Lock()


class State:
    """Everything the extension keeps, behind one lock (moto's server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls: list[dict[str, Any]] = []
        # (region, repository, digest) -> seeded scan
        self.scans: dict[tuple[str, str, str], dict[str, Any]] = {}
        # (pipeline, clientRequestToken) -> execution id
        self.execution_tokens: dict[tuple[str, str], str] = {}
        self.executions: dict[str, dict[str, Any]] = {}
        self.finished_jobs: set[str] = set()
        self.finished_hooks: set[str] = set()
        # deployment id -> the ECS target's lifecycle events (seeded by tests:
        # CodeDeploy moves a deployment through them)
        self.targets: dict[str, list[dict[str, str]]] = {}
        # failed deployment id -> the rollback deployment CodeDeploy started
        self.rollbacks: dict[str, str] = {}
        # service revision ARN -> task definition ARN (seeded by tests)
        self.service_revisions: dict[str, dict[str, str]] = {}
        # job id -> jobDetails (seeded by tests: CodePipeline creates jobs)
        self.jobs: dict[str, dict[str, Any]] = {}
        # (method, path, access key id) of every AWS request, for tests that
        # check which credentials a call was signed with
        self.requests: list[dict[str, str]] = []
        # action name -> list of pending faults
        self.faults: dict[str, list[dict[str, Any]]] = {}
        # (region, repository, digest) -> blob pushed with the layer-upload APIs
        self.blobs: dict[tuple[str, str, str], bytes] = {}
        # upload id -> (region, repository, bytes so far)
        self.uploads: dict[str, tuple[str, str, bytearray]] = {}

    def record(self, service: str, action: str, params: dict[str, Any], outcome: str) -> None:
        self.calls.append(
            {"service": service, "action": action, "params": params, "outcome": outcome}
        )


STATE = State()


def _fail(service: str, action: str, params: dict[str, Any], error: str, message: str) -> None:
    STATE.record(service, action, params, error)
    raise JsonRESTError(error, message)


# --- CodePipeline -----------------------------------------------------------


def start_pipeline_execution(self: CodePipelineResponse) -> str:
    params = json.loads(self.body or "{}")
    name = params.get("name", "")
    backend = codepipeline_backends[self.current_account][self.region]
    with STATE.lock:
        if name not in backend.pipelines:
            _fail(
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
            _fail(
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
            _fail("codepipeline", "GetJobDetails", params, "JobNotFoundException", "The job was not found")
        STATE.record("codepipeline", "GetJobDetails", params, "Found")
        return json.dumps({"jobDetails": job})


def _put_job_result(self: CodePipelineResponse, action: str, outcome: str) -> str:
    params = json.loads(self.body or "{}")
    job_id = params.get("jobId", "")
    with STATE.lock:
        if job_id in STATE.finished_jobs:
            _fail(
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


# --- CodeDeploy -------------------------------------------------------------


def put_lifecycle_event_hook_execution_status(self: CodeDeployResponse) -> str:
    params = json.loads(self.body or "{}")
    action = "PutLifecycleEventHookExecutionStatus"
    deployment_id = params.get("deploymentId", "")
    hook_id = params.get("lifecycleEventHookExecutionId", "")
    backend = codedeploy_backends[self.current_account][self.region]
    with STATE.lock:
        if deployment_id not in backend.deployments:
            _fail(
                "codedeploy",
                action,
                params,
                "DeploymentDoesNotExistException",
                f"The deployment {deployment_id} does not exist with the user or AWS account.",
            )
        if params.get("status") not in ("Succeeded", "Failed"):
            _fail("codedeploy", action, params, "InvalidLifecycleEventHookExecutionStatusException",
                  "status must be Succeeded or Failed")
        if hook_id in STATE.finished_hooks:
            _fail(
                "codedeploy",
                action,
                params,
                "LifecycleEventAlreadyCompletedException",
                "The lifecycle event hook execution has already been completed",
            )
        STATE.finished_hooks.add(hook_id)
        STATE.record("codedeploy", action, params, params["status"])
    return json.dumps({"lifecycleEventHookExecutionId": hook_id})


_original_get_deployment = CodeDeployResponse.get_deployment


def _epoch(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return value


def get_deployment(self: CodeDeployResponse) -> str:
    """moto writes timestamps as ISO strings; the JSON protocol (and the SDKs
    that parse it strictly) wants epoch seconds."""
    body = json.loads(_original_get_deployment(self))
    info = body.get("deploymentInfo", {})
    for key in ("createTime", "startTime", "completeTime"):
        if key in info:
            info[key] = _epoch(info[key])
    # A rollback, as CodeDeploy records one: the failed deployment names its
    # rollback, and the rollback (created by CodeDeploy) names what it undoes.
    deployment_id = info.get("deploymentId", "")
    with STATE.lock:
        rolled_back_by = STATE.rollbacks.get(deployment_id)
        rolls_back = next((d for d, r in STATE.rollbacks.items() if r == deployment_id), None)
    if rolled_back_by:
        info["rollbackInfo"] = {"rollbackDeploymentId": rolled_back_by,
                                "rollbackMessage": f"Deployment {deployment_id} failed; rolled back by {rolled_back_by}"}
    if rolls_back:
        info["creator"] = "codeDeployRollback"
        info["rollbackInfo"] = {"rollbackTriggeringDeploymentId": rolls_back}
    return json.dumps(body)


ECS_HOOKS = ["BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic", "AfterAllowTestTraffic",
             "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]


def _target_id(deployment_id: str) -> str:
    return f"cluster:service-{deployment_id}"


def list_deployment_targets(self: CodeDeployResponse) -> str:
    params = json.loads(self.body or "{}")
    deployment_id = params.get("deploymentId", "")
    backend = codedeploy_backends[self.current_account][self.region]
    with STATE.lock:
        if deployment_id not in backend.deployments:
            _fail("codedeploy", "ListDeploymentTargets", params, "DeploymentDoesNotExistException",
                  f"The deployment {deployment_id} does not exist with the user or AWS account.")
        targets = [_target_id(deployment_id)] if deployment_id in STATE.targets else []
    return json.dumps({"targetIds": targets})


def get_deployment_target(self: CodeDeployResponse) -> str:
    params = json.loads(self.body or "{}")
    deployment_id = params.get("deploymentId", "")
    with STATE.lock:
        events = STATE.targets.get(deployment_id)
        if events is None or params.get("targetId") != _target_id(deployment_id):
            _fail("codedeploy", "GetDeploymentTarget", params, "DeploymentTargetDoesNotExistException",
                  "The deployment target does not exist")
    return json.dumps({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": {
        "deploymentId": deployment_id, "targetId": _target_id(deployment_id), "status": "InProgress",
        "lifecycleEvents": events}}})


def describe_service_revisions(self: Any) -> str:
    params = json.loads(self.body or "{}")
    found, failures = [], []
    with STATE.lock:
        for arn in params.get("serviceRevisionArns", []):
            revision = STATE.service_revisions.get(arn)
            if revision:
                found.append(revision)
            else:
                failures.append({"arn": arn, "reason": "MISSING"})
    return json.dumps({"serviceRevisions": found, "failures": failures})


# --- ECR --------------------------------------------------------------------

_original_describe_image_scan_findings = ECRResponse.describe_image_scan_findings


def _severity_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        severity = finding.get("severity", "UNDEFINED")
        counts[severity] = counts.get(severity, 0) + 1
    return counts


def describe_image_scan_findings(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository = params.get("repositoryName", "")
    digest = (params.get("imageId") or {}).get("imageDigest", "")
    with STATE.lock:
        scan = STATE.scans.get((self.region, repository, digest))
    if scan is None:
        return _original_describe_image_scan_findings(self)
    action = "DescribeImageScanFindings"
    # The repository must exist, as in AWS; moto raises its own error otherwise.
    ecr_backends[self.current_account][self.region]._get_repository(repository, None)
    if scan["status"] == "SCAN_NOT_FOUND":
        _fail("ecr", action, params, "ScanNotFoundException",
              f"Image scan does not exist for the image with '{{imageDigest:'{digest}'}}' in the repository with name '{repository}'")

    max_results = int(params.get("maxResults") or DEFAULT_PAGE)
    if not 1 <= max_results <= MAX_PAGE:
        _fail("ecr", action, params, "InvalidParameterException",
              f"maxResults must be between 1 and {MAX_PAGE}")
    token = params.get("nextToken")
    start = 0
    if token:
        prefix = f"{repository}/{digest}/"
        if not token.startswith(prefix) or not token[len(prefix):].isdigit():
            _fail("ecr", action, params, "InvalidParameterException", "Invalid nextToken")
        start = int(token[len(prefix):])

    basic = scan.get("findings", [])
    enhanced = scan.get("enhancedFindings", [])
    if enhanced:
        iam_enforcement.require(
            self, "inspector2:ListFindings", "*",
            "DescribeImageScanFindings of an image with enhanced findings also needs inspector2:ListFindings",
        )
    # Both lists are paged as one sequence: basic findings first, then enhanced.
    everything = [("findings", f) for f in basic] + [("enhancedFindings", f) for f in enhanced]
    page = everything[start : start + max_results]
    findings_block: dict[str, Any] = {
        "findingSeverityCounts": _severity_counts(basic + enhanced),
    }
    if scan["status"] in ("COMPLETE", "ACTIVE"):
        findings_block["imageScanCompletedAt"] = scan.get(
            "completedAt", datetime.now(timezone.utc).timestamp()
        )
        findings_block["vulnerabilitySourceUpdatedAt"] = findings_block["imageScanCompletedAt"]
        findings_block["findings"] = [f for kind, f in page if kind == "findings"]
        # ECR's EnhancedImageScanFinding has no EPSS score; Inspector's Finding does.
        findings_block["enhancedFindings"] = [
            {k: v for k, v in f.items() if k != "epss"} for kind, f in page if kind == "enhancedFindings"
        ]
    response: dict[str, Any] = {
        "registryId": self.current_account,
        "repositoryName": repository,
        "imageId": {"imageDigest": digest, **({"imageTag": scan["imageTag"]} if scan.get("imageTag") else {})},
        "imageScanStatus": {"status": scan["status"], "description": scan.get("description", "")},
    }
    if scan["status"] in ("COMPLETE", "ACTIVE"):
        response["imageScanFindings"] = findings_block
        if start + max_results < len(everything):
            response["nextToken"] = f"{repository}/{digest}/{start + max_results}"
    with STATE.lock:
        STATE.record("ecr", action, params, scan["status"])
    return json.dumps(response)


# --- Inspector2 ----------------------------------------------------------------

INSPECTOR_PAGE = 100


def _equals(criteria: dict[str, Any], key: str) -> list[str] | None:
    """The EQUALS values of one filter, or None when the filter is absent."""
    filters = criteria.get(key)
    if not filters:
        return None
    return [f.get("value") for f in filters if f.get("comparison") == "EQUALS"]


def list_findings(self: Inspector2Response) -> Any:
    params = json.loads(self.body or "{}")
    criteria = params.get("filterCriteria") or {}
    repositories = _equals(criteria, "ecrImageRepositoryName")
    hashes = _equals(criteria, "ecrImageHash")
    statuses = _equals(criteria, "findingStatus")
    found: list[dict[str, Any]] = []
    with STATE.lock:
        scans = sorted(STATE.scans.items())
    for (region, repository, digest), scan in scans:
        if region != self.region or (repositories is not None and repository not in repositories):
            continue
        if hashes is not None and digest not in hashes:
            continue
        for i, finding in enumerate(scan.get("enhancedFindings", [])):
            status = finding.get("status", "ACTIVE")
            if statuses is not None and status not in statuses:
                continue
            inspector = {
                "awsAccountId": self.current_account,
                "findingArn": f"arn:aws:inspector2:{region}:{self.current_account}:finding/{digest[7:19]}{i:04d}",
                "type": "PACKAGE_VULNERABILITY",
                "status": status,
                "severity": finding.get("severity", "UNTRIAGED"),
                "packageVulnerabilityDetails": finding.get("packageVulnerabilityDetails", {}),
                "fixAvailable": finding.get("fixAvailable", "NO"),
                "exploitAvailable": finding.get("exploitAvailable", "NO"),
                "resources": [{"type": "AWS_ECR_CONTAINER_IMAGE", "id": f"arn:aws:ecr:{region}:{self.current_account}:repository/{repository}/{digest}",
                               "details": {"awsEcrContainerImage": {"repositoryName": repository, "imageHash": digest}}}],
            }
            if "epss" in finding:
                inspector["epss"] = finding["epss"]
            found.append(inspector)
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or INSPECTOR_PAGE)
    response: dict[str, Any] = {"findings": found[start : start + size]}
    if start + size < len(found):
        response["nextToken"] = str(start + size)
    with STATE.lock:
        STATE.record("inspector2", "ListFindings", params, f"{len(response['findings'])} finding(s)")
    return json.dumps(response)


def _manifest_digest(manifest: str) -> str:
    """ECR's digest of a manifest: SHA-256 over the bytes as pushed."""
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def _create_digest(self: Any) -> None:
    self._image_digest = _manifest_digest(self.image_manifest)


class ImageDigestDoesNotMatchException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ImageDigestDoesNotMatchException", message)


_original_put_image = ECRBackend.put_image


def put_image(self: Any, repository_name: str, image_manifest: str, image_tag: str,
              image_manifest_mediatype: str | None = None, digest: str | None = None) -> Any:
    if digest and digest != _manifest_digest(image_manifest):
        raise ImageDigestDoesNotMatchException(
            f"Invalid parameter at 'imageDigest' failed to satisfy constraint: "
            f"'{digest}' does not match the digest of the manifest")
    return _original_put_image(self, repository_name, image_manifest, image_tag,
                               image_manifest_mediatype, None)


# What a scan-seeded image answers as: one linux/amd64 image, whose config
# every repository can serve.
_SEEDED_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
_SEEDED_CONFIG_DIGEST = _manifest_digest(_SEEDED_CONFIG.decode())
_SEEDED_MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": _SEEDED_CONFIG_DIGEST, "size": len(_SEEDED_CONFIG)},
    "layers": [],
})


def _ecr_error(code: str, message: str) -> None:
    raise JsonRESTError(code, message)


def initiate_layer_upload(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository = params.get("repositoryName", "")
    backend = ecr_backends[self.current_account][self.region]
    backend._get_repository(repository, None)
    upload_id = str(uuid.uuid4())
    with STATE.lock:
        STATE.uploads[upload_id] = (self.region, repository, bytearray())
    return json.dumps({"uploadId": upload_id, "partSize": 10 * 1024 * 1024})


def upload_layer_part(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    upload_id = params.get("uploadId", "")
    with STATE.lock:
        upload = STATE.uploads.get(upload_id)
        if upload is None:
            _ecr_error("UploadNotFoundException", f"upload {upload_id} does not exist")
        part = base64.b64decode(params.get("layerPartBlob", ""))
        if int(params.get("partFirstByte", 0)) != len(upload[2]):
            _ecr_error("InvalidLayerPartException", "partFirstByte is not the next byte of the upload")
        upload[2].extend(part)
        last = len(upload[2]) - 1
    return json.dumps({"registryId": self.current_account, "repositoryName": upload[1],
                       "uploadId": upload_id, "lastByteReceived": last})


def complete_layer_upload(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    upload_id = params.get("uploadId", "")
    digests = params.get("layerDigests") or []
    with STATE.lock:
        upload = STATE.uploads.pop(upload_id, None)
        if upload is None:
            _ecr_error("UploadNotFoundException", f"upload {upload_id} does not exist")
        region, repository, data = upload
        actual = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
        if digests != [actual]:
            _ecr_error("InvalidLayerException", f"the layer's digest is {actual}, not {digests}")
        STATE.blobs[(region, repository, actual)] = bytes(data)
    return json.dumps({"registryId": self.current_account, "repositoryName": repository,
                       "uploadId": upload_id, "layerDigest": actual})


def get_download_url_for_layer(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository, digest = params.get("repositoryName", ""), params.get("layerDigest", "")
    ecr_backends[self.current_account][self.region]._get_repository(repository, None)
    with STATE.lock:
        known = (self.region, repository, digest) in STATE.blobs or digest == _SEEDED_CONFIG_DIGEST
        STATE.record("ecr", "GetDownloadUrlForLayer", params, "found" if known else "LayersNotFoundException")
    if not known:
        _ecr_error("LayersNotFoundException", f"The image layer {digest} does not exist in the repository {repository}")
    host = self.headers.get("Host", "127.0.0.1")
    url = f"http://{host}/_shipgate/ecr/blobs/{self.region}/{repository}/{digest}"
    return json.dumps({"downloadUrl": url, "layerDigest": digest})


def blob(region: str, repository: str, digest: str) -> bytes | None:
    with STATE.lock:
        data = STATE.blobs.get((region, repository, digest))
    if data is None and digest == _SEEDED_CONFIG_DIGEST:
        return _SEEDED_CONFIG
    return data


def batch_get_image(self: ECRResponse) -> Any:
    params = json.loads(self.body or "{}")
    repository_name = params.get("repositoryName", "")
    backend = ecr_backends[self.current_account][self.region]
    repository = backend._get_repository(repository_name, None)  # RepositoryNotFoundException, as AWS
    accepted = params.get("acceptedMediaTypes") or [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
    images: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for image_id in params.get("imageIds") or []:
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        found = [i for i in repository.images
                 if (digest and i.get_image_digest() == digest) or (tag and tag in i.image_tags)]
        with STATE.lock:
            seeded = digest is not None and (self.region, repository_name, digest) in STATE.scans
        if found:
            image = found[0]
            media_type = image.image_manifest_media_type or json.loads(image.image_manifest).get("mediaType")
            body, answered_digest = image.image_manifest, image.get_image_digest()
        elif seeded:
            media_type, body, answered_digest = "application/vnd.oci.image.manifest.v1+json", _SEEDED_MANIFEST, digest
        else:
            failures.append({"imageId": image_id, "failureCode": "ImageNotFound",
                             "failureReason": "Requested image not found"})
            continue
        if media_type not in accepted:
            failures.append({"imageId": image_id, "failureCode": "UnsupportedImageType",
                             "failureReason": f"The requested media type {media_type} is not accepted"})
            continue
        images.append({
            "registryId": repository.registry_id,
            "repositoryName": repository_name,
            "imageId": {"imageDigest": answered_digest, **({"imageTag": tag} if tag else {})},
            "imageManifest": body,
            "imageManifestMediaType": media_type,
        })
    with STATE.lock:
        STATE.record("ecr", "BatchGetImage", params, f"{len(images)} image(s)")
    return json.dumps({"images": images, "failures": failures})


def install_extensions() -> None:
    # moto finds the backend for a request's host by listing its own package
    # directory on every request (a listdir and a stat per entry, about a
    # sixth of the server's time per request); the list cannot change while
    # the server runs, so it is read once.
    modules = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: modules
    CodePipelineResponse.start_pipeline_execution = start_pipeline_execution
    CodePipelineResponse.get_pipeline_execution = get_pipeline_execution
    CodePipelineResponse.get_job_details = get_job_details
    CodePipelineResponse.put_job_success_result = put_job_success_result
    CodePipelineResponse.put_job_failure_result = put_job_failure_result
    CodeDeployResponse.put_lifecycle_event_hook_execution_status = (
        put_lifecycle_event_hook_execution_status
    )
    CodeDeployResponse.get_deployment = get_deployment
    CodeDeployResponse.list_deployment_targets = list_deployment_targets
    CodeDeployResponse.get_deployment_target = get_deployment_target
    EC2ContainerServiceResponse.describe_service_revisions = describe_service_revisions
    ECRResponse.describe_image_scan_findings = describe_image_scan_findings
    ECRResponse.batch_get_image = batch_get_image
    ECRResponse.initiate_layer_upload = initiate_layer_upload
    ECRResponse.upload_layer_part = upload_layer_part
    ECRResponse.complete_layer_upload = complete_layer_upload
    ECRResponse.get_download_url_for_layer = get_download_url_for_layer
    Inspector2Response.list_findings = list_findings
    ECRBackend.put_image = put_image
    ECRImage._create_digest = _create_digest


# --- Control API and fault injection ----------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def control(request: Request) -> Response:
    path = request.path
    if path == "/_shipgate/calls" and request.method == "GET":
        with STATE.lock:
            return _json({"calls": list(STATE.calls)})
    if path == "/_shipgate/reset" and request.method == "POST":
        with STATE.lock:
            STATE.reset()
        iam_enforcement.create_admin()
        return _json({"reset": True})
    if path.startswith("/_shipgate/ecr/blobs/") and request.method == "GET":
        parts = path[len("/_shipgate/ecr/blobs/"):].split("/")
        region, repository, digest = parts[0], "/".join(parts[1:-1]), parts[-1]
        data = blob(region, repository, digest)
        if data is None:
            return Response("NoSuchKey", status=404)
        return Response(data, status=200, content_type="application/octet-stream")
    if path == "/_shipgate/ecr/scan-findings" and request.method == "POST":
        body = request.get_json(force=True)
        for key in ("repositoryName", "imageDigest", "status"):
            if not body.get(key):
                return _json({"error": f"missing {key}"}, 400)
        region = body.get("region", "us-east-1")
        with STATE.lock:
            STATE.scans[(region, body["repositoryName"], body["imageDigest"])] = body
        return _json({"seeded": True})
    if path == "/_shipgate/codepipeline/jobs" and request.method == "POST":
        body = request.get_json(force=True)
        for key in ("jobId", "pipelineName", "pipelineExecutionId"):
            if not body.get(key):
                return _json({"error": f"missing {key}"}, 400)
        details = {
            "id": body["jobId"],
            "accountId": body.get("accountId", "123456789012"),
            "data": {
                "pipelineContext": {
                    "pipelineName": body["pipelineName"],
                    "stage": {"name": body.get("stage", "Gate")},
                    "action": {"name": body.get("action", "ReleaseGate")},
                    "pipelineExecutionId": body["pipelineExecutionId"],
                }
            },
        }
        with STATE.lock:
            STATE.jobs[body["jobId"]] = details
        return _json({"seeded": True})
    if path == "/_shipgate/codedeploy/lifecycle" and request.method == "POST":
        body = request.get_json(force=True)
        current = body.get("currentHook", "")
        if not body.get("deploymentId") or current not in ECS_HOOKS:
            return _json({"error": "need deploymentId and currentHook (one of the ECS hooks)"}, 400)
        index = ECS_HOOKS.index(current)
        events = [{"lifecycleEventName": name,
                   "status": "Succeeded" if i < index else "InProgress" if i == index else "Pending"}
                  for i, name in enumerate(ECS_HOOKS)]
        with STATE.lock:
            STATE.targets[body["deploymentId"]] = events
        return _json({"seeded": True})
    if path == "/_shipgate/codedeploy/rollbacks" and request.method == "POST":
        body = request.get_json(force=True)
        if not body.get("deploymentId") or not body.get("rollbackDeploymentId"):
            return _json({"error": "need deploymentId and rollbackDeploymentId"}, 400)
        with STATE.lock:
            STATE.rollbacks[body["deploymentId"]] = body["rollbackDeploymentId"]
        return _json({"seeded": True})
    if path == "/_shipgate/ecs/service-revisions" and request.method == "POST":
        body = request.get_json(force=True)
        for key in ("serviceRevisionArn", "taskDefinition"):
            if not body.get(key):
                return _json({"error": f"missing {key}"}, 400)
        with STATE.lock:
            STATE.service_revisions[body["serviceRevisionArn"]] = {
                "serviceRevisionArn": body["serviceRevisionArn"],
                "serviceArn": body.get("serviceArn", ""),
                "clusterArn": body.get("clusterArn", ""),
                "taskDefinition": body["taskDefinition"],
                # What ECS resolved each container's image to when it created
                # the revision: [{containerName, image, imageDigest}].
                "containerImages": body.get("containerImages", []),
            }
        return _json({"seeded": True})
    if path == "/_shipgate/iam/functions" and request.method == "POST":
        body = request.get_json(force=True)
        try:
            identities = template_iam.function_identities(
                body.get("resources", {}), body.get("parameters", {}),
                iam_enforcement.ACCOUNT, body.get("region", "us-east-1"),
            )
        except template_iam.UnresolvedReference as e:
            return _json({"error": str(e)}, 400)
        out = {}
        for name, identity in identities.items():
            keys = iam_enforcement.create_user(
                f"shipgate-{name}", identity["policies"], identity["managedPolicyArns"]
            )
            out[name] = {**keys, "role": identity["role"], "policies": identity["policies"]}
        return _json({"functions": out})
    if path == "/_shipgate/iam/users" and request.method == "POST":
        body = request.get_json(force=True)
        if not body.get("name"):
            return _json({"error": "missing name"}, 400)
        return _json(iam_enforcement.create_user(
            body["name"], body.get("policies", []), body.get("managedPolicyArns", []),
            body.get("accessKeyId"), body.get("secretAccessKey"),
        ))
    if path == "/_shipgate/iam/service-roles" and request.method == "POST":
        body = request.get_json(force=True)
        if not body.get("name") or not body.get("principal"):
            return _json({"error": "missing name or principal"}, 400)
        return _json({"arn": iam_enforcement.create_service_role(body["name"], body["principal"])})
    if path == "/_shipgate/kms/keys" and request.method == "POST":
        body = request.get_json(force=True)
        return _json(iam_enforcement.create_key(body.get("description", "")))
    if path == "/_shipgate/iam/sessions" and request.method == "POST":
        body = request.get_json(force=True)
        if not body.get("name"):
            return _json({"error": "missing name"}, 400)
        return _json(iam_enforcement.create_session(body["name"], body.get("policies", []), body.get("fixed")))
    if path == "/_shipgate/requests" and request.method == "GET":
        with STATE.lock:
            return _json({"requests": list(STATE.requests)})
    if path == "/_shipgate/faults" and request.method == "POST":
        body = request.get_json(force=True)
        for key in ("action", "status", "errorCode"):
            if not body.get(key):
                return _json({"error": f"missing {key}"}, 400)
        with STATE.lock:
            STATE.faults.setdefault(body["action"], []).append(
                {"status": int(body["status"]), "errorCode": body["errorCode"],
                 "remaining": int(body.get("count", 1))}
            )
        return _json({"armed": True})
    return _json({"error": f"no such control path {request.method} {path}"}, 404)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _target_action(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    return target.rsplit(".", 1)[-1] if target else None


def _query_action(environ: dict[str, Any], body: bytes) -> str | None:
    """The action of a query-protocol request (a form-encoded POST)."""
    if environ.get("REQUEST_METHOD") != "POST" or b"Action=" not in body:
        return None
    from urllib.parse import parse_qs

    return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [None])[0]


def _query_error(fault: dict[str, Any]) -> Response:
    """An injected fault as a query-protocol service (SNS) answers it."""
    kind = "Receiver" if fault["status"] >= 500 else "Sender"
    xml = (
        f'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>{kind}</Type>'
        f'<Code>{fault["errorCode"]}</Code><Message>injected by the Shipgate emulator</Message></Error>'
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Response(xml, status=fault["status"], content_type="text/xml")


def _s3_error(fault: dict[str, Any]) -> Response:
    """An injected fault as S3 answers one (REST-XML, an `Error` root)."""
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault["errorCode"]}</Code>'
        f"<Message>injected by the Shipgate emulator</Message><RequestId>{uuid.uuid4()}</RequestId></Error>"
    )
    return Response(xml, status=fault["status"], content_type="application/xml")


class ShipgateApp:
    """moto's WSGI app behind the control API and the fault injector."""

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith("/_shipgate/"):
            return control(Request(environ))(environ, start_response)
        credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2]
        logged = {
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "accessKeyId": credential.split("/", 1)[0],
        }
        with STATE.lock:
            STATE.requests.append(logged)

        answer = start_response

        def logging_status(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # The answer's status too: a benchmark counts lost compare-and-swap races (412, 409).
            logged["status"] = int(status.split(" ", 1)[0])
            return answer(status, headers, exc_info)

        start_response = logging_status
        action = _target_action(environ)
        body = _read_body(environ)
        # JSON protocols name the action in X-Amz-Target; query protocols
        # (SNS) in the form body; S3's REST protocol in the method on an object.
        s3_action = iam_enforcement.s3_object_action(environ)
        faulted = action or _query_action(environ, body) or s3_action
        logged["action"] = faulted
        if faulted:
            with STATE.lock:
                pending = STATE.faults.get(faulted, [])
                fault = pending[0] if pending else None
                if fault:
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        pending.pop(0)
                    STATE.record("fault", faulted, {}, fault["errorCode"])
            if fault and action:
                payload = {"__type": fault["errorCode"], "message": "injected by the Shipgate emulator"}
                return _json(payload, fault["status"])(environ, start_response)
            if fault and s3_action:
                return _s3_error(fault)(environ, start_response)
            if fault:
                return _query_error(fault)(environ, start_response)
        refusal = iam_enforcement.kms_refusal(environ, action, body)
        if refusal:
            status, payload, content_type = refusal
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
            return [payload]
        return self._moto_as_aws(environ, start_response, action)

    def _moto_as_aws(self, environ: dict[str, Any], start_response: Any, action: str | None) -> Any:
        """moto's answer, corrected where AWS answers differently (see iam_enforcement)."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        # S3 decides a write against the object as it is when the write lands:
        # of conditional writes racing on one object, one wins and the rest get
        # 412 (Amazon S3 User Guide, "Conditional writes":
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
        # moto compares the ETag and then writes, two steps another thread can
        # come between, so its object writes are taken one at a time.
        serial = S3_WRITES if iam_enforcement.is_s3_object_write(environ) else contextlib.nullcontext()
        with serial:
            chunks = self.moto(environ, capture)
            try:
                body = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        status, headers = captured["status"], captured["headers"]
        if iam_enforcement.missing_key_without_list_bucket(environ, status):
            status = "403 Forbidden"
            body = iam_enforcement.S3_ACCESS_DENIED if environ.get("REQUEST_METHOD") == "GET" else b""
            headers = [("Content-Type", "application/xml")]
        elif action and status.startswith("403") and body.lstrip().startswith(b"<"):
            body = iam_enforcement.json_access_denied(body)
            headers = [("Content-Type", "application/x-amz-json-1.1")]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if environ.get("REQUEST_METHOD") != "HEAD" or not status.startswith("403"):
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


def _exit_when_stdin_closes(server: Any) -> None:
    try:
        while sys.stdin.buffer.read(1024):
            pass
    except (OSError, ValueError):
        pass
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument(
        "--no-stdin-watch",
        action="store_true",
        help="keep running when standard input closes (for a server started by hand)",
    )
    args = parser.parse_args()
    install_extensions()
    iam_enforcement.enable()
    # Many requests at once (the exposure storm: 30 invocations) share one
    # interpreter lock. At Python's default 5 ms between switches, a thread
    # whose answer is ready waits behind others' work for whole slices, and
    # the storm took twice as long once moto stopped making a stat call (which
    # lets go of the lock) per package directory entry on every request.
    sys.setswitchinterval(0.0005)
    # One line per request would drown the test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", args.port, ShipgateApp(), threaded=True)
    if not args.no_stdin_watch:
        threading.Thread(target=_exit_when_stdin_closes, args=(server,), daemon=True).start()
    print(f"SHIPGATE_EMULATOR_READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
