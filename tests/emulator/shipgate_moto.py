"""Shipgate's local AWS: moto server, extended with what Shipgate needs and moto lacks.

Run it as `python3 tests/emulator/shipgate_moto.py [--port N]`. It binds
127.0.0.1 only (port 0 picks a free port), prints one line
`SHIPGATE_EMULATOR_READY http://127.0.0.1:PORT` when it accepts connections,
and exits when its standard input closes, so a test harness that dies can
never leave it running.

Every change to moto goes through `patching` (a target moto no longer has
stops the emulator at start-up, naming it), and every action it adds is one
row of `ACTIONS` below, handled in the module of its service
(`codepipeline_ext`, `codedeploy_ext`, `ecs_ext`, `ecr_ext`, `events_ext`,
`inspector_ext`); the control API is `control.ROUTES`; the account and
region are `aws_account`'s. What it adds to moto, through the ordinary AWS
APIs (real SDK clients talk to it):

* CodePipeline `GetPipeline` with its metadata times as epoch seconds (moto
  writes ISO strings, which the SDKs refuse), `StartPipelineExecution`
  (idempotent on `clientRequestToken`),
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
* EventBridge `PutEvents` refuses a request whose entries total 256 KB or more
  (`ValidationException`), as AWS does; moto takes any size.
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
* `POST /_shipgate/faults` makes the next `count` calls of one action (after
  letting `after` of them through) fail with
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
import contextlib
import functools
import io
import logging
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import jsonpath_ng.ext
from moto import backends as moto_backends
from moto.codedeploy.responses import CodeDeployResponse
from moto.codepipeline.responses import CodePipelineResponse
from moto.core.utils import camelcase_to_underscores
from moto.ecr.models import ECRBackend
from moto.ecr.models import Image as ECRImage
from moto.ecr.responses import ECRResponse
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.responses import EventsHandler
from moto.inspector2.responses import Inspector2Response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import codedeploy_ext
import codepipeline_ext
import ecr_ext
import ecs_ext
import events_ext
import iam_enforcement
import inspector_ext
from control import _json, control
from patching import PatchTargetMissing, add, replace
from state import S3_WRITES, STATE

# (service, API action) -> (moto's response class, the handler). moto
# dispatches a JSON-protocol action to the response method named by the
# action in snake case (`camelcase_to_underscores`, moto's own conversion).
ACTIONS: dict[tuple[str, str], tuple[type, Callable[..., Any]]] = {
    ("codepipeline", "GetPipeline"): (CodePipelineResponse, codepipeline_ext.get_pipeline),
    ("codepipeline", "StartPipelineExecution"): (CodePipelineResponse, codepipeline_ext.start_pipeline_execution),
    ("codepipeline", "GetPipelineExecution"): (CodePipelineResponse, codepipeline_ext.get_pipeline_execution),
    ("codepipeline", "GetJobDetails"): (CodePipelineResponse, codepipeline_ext.get_job_details),
    ("codepipeline", "PutJobSuccessResult"): (CodePipelineResponse, codepipeline_ext.put_job_success_result),
    ("codepipeline", "PutJobFailureResult"): (CodePipelineResponse, codepipeline_ext.put_job_failure_result),
    ("codedeploy", "PutLifecycleEventHookExecutionStatus"): (
        CodeDeployResponse, codedeploy_ext.put_lifecycle_event_hook_execution_status,
    ),
    ("codedeploy", "GetDeployment"): (CodeDeployResponse, codedeploy_ext.get_deployment),
    ("codedeploy", "ListDeploymentTargets"): (CodeDeployResponse, codedeploy_ext.list_deployment_targets),
    ("codedeploy", "GetDeploymentTarget"): (CodeDeployResponse, codedeploy_ext.get_deployment_target),
    ("ecs", "DescribeServiceRevisions"): (EC2ContainerServiceResponse, ecs_ext.describe_service_revisions),
    ("ecr", "DescribeImageScanFindings"): (ECRResponse, ecr_ext.describe_image_scan_findings),
    ("ecr", "BatchGetImage"): (ECRResponse, ecr_ext.batch_get_image),
    ("ecr", "InitiateLayerUpload"): (ECRResponse, ecr_ext.initiate_layer_upload),
    ("ecr", "UploadLayerPart"): (ECRResponse, ecr_ext.upload_layer_part),
    ("ecr", "CompleteLayerUpload"): (ECRResponse, ecr_ext.complete_layer_upload),
    ("ecr", "GetDownloadUrlForLayer"): (ECRResponse, ecr_ext.get_download_url_for_layer),
    ("inspector2", "ListFindings"): (Inspector2Response, inspector_ext.list_findings),
    ("events", "PutEvents"): (EventsHandler, events_ext.put_events),
}


def install_extensions() -> None:
    for (_service, action), (response_class, handler) in ACTIONS.items():
        add(response_class, camelcase_to_underscores(action), handler)
    # ECR's digests as AWS computes them (moto's models, not an API action).
    replace(ECRBackend, "put_image", ecr_ext.put_image)
    replace(ECRImage, "_create_digest", ecr_ext._create_digest)
    # Speed only, no behaviour: moto finds the backend for a request's host
    # by listing its own package directory on every request (a listdir and a
    # stat per entry); the list cannot change while the server runs, so it
    # is read once.
    modules = tuple(moto_backends.list_of_moto_modules())
    replace(moto_backends, "list_of_moto_modules", lambda: modules)
    # Speed only, no behaviour: moto's EventBridge parses each target's input
    # paths (eight by default) with a newly built jsonpath parser for every
    # event it delivers. The same text always parses to the same expression,
    # which `find` only reads.
    replace(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse))


# --- Fault injection and AWS's answers ----------------------------------------


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto."""
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
    actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


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
                if fault and fault.get("after", 0) > 0:
                    # Armed for a later call: this one passes.
                    fault["after"] -= 1
                    fault = None
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
            status, refused, content_type = refusal
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(refused)))])
            return [refused]
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
    try:
        install_extensions()
        iam_enforcement.enable()
    except PatchTargetMissing as e:
        sys.exit(f"shipgate emulator: {e}")
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

