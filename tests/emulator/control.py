"""The control API under `/_shipgate/` (never an AWS path): what tests seed and
read back. One handler per (method, path), found in `ROUTES`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

import iam_enforcement
import template_iam
from aws_account import ACCOUNT, REGION
from codedeploy_ext import ECS_HOOKS
from ecr_ext import blob
from state import STATE

BLOBS = "/_shipgate/ecr/blobs/"


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _missing(body: dict[str, Any], keys: tuple[str, ...]) -> Response | None:
    """A 400 naming the first required key the body lacks."""
    for key in keys:
        if not body.get(key):
            return _json({"error": f"missing {key}"}, 400)
    return None


def calls(_request: Request) -> Response:
    with STATE.lock:
        return _json({"calls": list(STATE.calls)})


def requests(_request: Request) -> Response:
    with STATE.lock:
        return _json({"requests": list(STATE.requests)})


def reset(_request: Request) -> Response:
    with STATE.lock:
        STATE.reset()
    iam_enforcement.create_admin()
    return _json({"reset": True})


def ecr_blob(request: Request) -> Response:
    parts = request.path[len(BLOBS):].split("/")
    region, repository, digest = parts[0], "/".join(parts[1:-1]), parts[-1]
    data = blob(region, repository, digest)
    if data is None:
        return Response("NoSuchKey", status=404)
    return Response(data, status=200, content_type="application/octet-stream")


def scan_findings(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("repositoryName", "imageDigest", "status")):
        return refused
    region = body.get("region", REGION)
    with STATE.lock:
        STATE.scans[(region, body["repositoryName"], body["imageDigest"])] = body
    return _json({"seeded": True})


def codepipeline_job(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("jobId", "pipelineName", "pipelineExecutionId")):
        return refused
    details = {
        "id": body["jobId"],
        "accountId": body.get("accountId", ACCOUNT),
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


def codedeploy_lifecycle(request: Request) -> Response:
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


def codedeploy_rollback(request: Request) -> Response:
    body = request.get_json(force=True)
    if not body.get("deploymentId") or not body.get("rollbackDeploymentId"):
        return _json({"error": "need deploymentId and rollbackDeploymentId"}, 400)
    with STATE.lock:
        STATE.rollbacks[body["deploymentId"]] = body["rollbackDeploymentId"]
    return _json({"seeded": True})


def ecs_service_revision(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("serviceRevisionArn", "taskDefinition")):
        return refused
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


def iam_functions(request: Request) -> Response:
    body = request.get_json(force=True)
    try:
        identities = template_iam.function_identities(
            body.get("resources", {}), body.get("parameters", {}), ACCOUNT, body.get("region", REGION),
        )
    except template_iam.UnresolvedReference as e:
        return _json({"error": str(e)}, 400)
    out = {}
    for name, identity in identities.items():
        keys = iam_enforcement.create_user(
            f"shipgate-{name}", identity["policies"], identity["managedPolicyArns"]
        )
        out[name] = {**keys, **{k: v for k, v in identity.items() if k != "managedPolicyArns"}}
    return _json({"functions": out})


class _Named(dict[str, str]):
    """A resource's attributes where any is asked for: `Ref` gives the
    logical id, `GetAtt X.Attr` gives `X.Attr` (a template read for its
    parameters, not its resources)."""

    def __init__(self, logical_id: str) -> None:
        super().__init__()
        self.logical_id = logical_id

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return self.logical_id if key == "Ref" else f"{self.logical_id}.{key}"


def template_resolve(request: Request) -> Response:
    """`{template, parameters?, path}`: the node at `path` of `template` (a
    path in the repository) as SAM translates it and CloudFormation resolves
    it with `parameters` (the rest take their defaults)."""
    body = request.get_json(force=True)
    if refused := _missing(body, ("template", "path")):
        return refused
    path = Path(__file__).resolve().parents[2] / body["template"]
    translated, resolve = template_iam.translate_template(
        path, body.get("parameters", {}), ACCOUNT, REGION, lambda logical_id, _kind: _Named(logical_id)
    )
    node: Any = translated
    for key in body["path"]:
        node = node[key]
    return _json({"value": resolve(node)})


def iam_user(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("name",)):
        return refused
    return _json(iam_enforcement.create_user(
        body["name"], body.get("policies", []), body.get("managedPolicyArns", []),
        body.get("accessKeyId"), body.get("secretAccessKey"),
    ))


def iam_service_role(request: Request) -> Response:
    body = request.get_json(force=True)
    if not body.get("name") or not body.get("principal"):
        return _json({"error": "missing name or principal"}, 400)
    return _json({"arn": iam_enforcement.create_service_role(body["name"], body["principal"])})


def kms_key(request: Request) -> Response:
    body = request.get_json(force=True)
    return _json(iam_enforcement.create_key(body.get("description", "")))


def iam_session(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("name",)):
        return refused
    return _json(iam_enforcement.create_session(body["name"], body.get("policies", []), body.get("fixed")))


def fault(request: Request) -> Response:
    body = request.get_json(force=True)
    if refused := _missing(body, ("action", "status", "errorCode")):
        return refused
    with STATE.lock:
        STATE.faults.setdefault(body["action"], []).append(
            {"status": int(body["status"]), "errorCode": body["errorCode"],
             "remaining": int(body.get("count", 1)), "after": int(body.get("after", 0))}
        )
    return _json({"armed": True})


ROUTES: dict[tuple[str, str], Callable[[Request], Response]] = {
    ("GET", "/_shipgate/calls"): calls,
    ("GET", "/_shipgate/requests"): requests,
    ("POST", "/_shipgate/reset"): reset,
    ("POST", "/_shipgate/ecr/scan-findings"): scan_findings,
    ("POST", "/_shipgate/codepipeline/jobs"): codepipeline_job,
    ("POST", "/_shipgate/codedeploy/lifecycle"): codedeploy_lifecycle,
    ("POST", "/_shipgate/codedeploy/rollbacks"): codedeploy_rollback,
    ("POST", "/_shipgate/ecs/service-revisions"): ecs_service_revision,
    ("POST", "/_shipgate/iam/functions"): iam_functions,
    ("POST", "/_shipgate/iam/users"): iam_user,
    ("POST", "/_shipgate/templates/resolve"): template_resolve,
    ("POST", "/_shipgate/iam/service-roles"): iam_service_role,
    ("POST", "/_shipgate/iam/sessions"): iam_session,
    ("POST", "/_shipgate/kms/keys"): kms_key,
    ("POST", "/_shipgate/faults"): fault,
}


def control(request: Request) -> Response:
    """Answers a control request, or 404 naming what it asked for."""
    if request.method == "GET" and request.path.startswith(BLOBS):
        return ecr_blob(request)
    handler = ROUTES.get((request.method, request.path))
    if handler is None:
        return _json({"error": f"no such control path {request.method} {request.path}"}, 404)
    return handler(request)
