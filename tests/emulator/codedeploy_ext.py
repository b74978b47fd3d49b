"""CodeDeploy actions moto lacks or answers unlike AWS: the hook status report,
deployment targets and their lifecycle events, and `GetDeployment`'s timestamps."""

from __future__ import annotations

import json

from moto.codedeploy.models import codedeploy_backends
from moto.codedeploy.responses import CodeDeployResponse

from state import STATE, epoch_seconds, fail


def put_lifecycle_event_hook_execution_status(self: CodeDeployResponse) -> str:
    params = json.loads(self.body or "{}")
    action = "PutLifecycleEventHookExecutionStatus"
    deployment_id = params.get("deploymentId", "")
    hook_id = params.get("lifecycleEventHookExecutionId", "")
    backend = codedeploy_backends[self.current_account][self.region]
    with STATE.lock:
        if deployment_id not in backend.deployments:
            fail(
                "codedeploy",
                action,
                params,
                "DeploymentDoesNotExistException",
                f"The deployment {deployment_id} does not exist with the user or AWS account.",
            )
        if params.get("status") not in ("Succeeded", "Failed"):
            fail("codedeploy", action, params, "InvalidLifecycleEventHookExecutionStatusException",
                  "status must be Succeeded or Failed")
        if hook_id in STATE.finished_hooks:
            fail(
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


def get_deployment(self: CodeDeployResponse) -> str:
    """moto writes timestamps as ISO strings; the JSON protocol (and the SDKs
    that parse it strictly) wants epoch seconds."""
    body = json.loads(_original_get_deployment(self))
    info = body.get("deploymentInfo", {})
    for key in ("createTime", "startTime", "completeTime"):
        if key in info:
            info[key] = epoch_seconds(info[key])
    # A rollback, as CodeDeploy records one: the failed deployment names its
    # rollback, and the rollback (created by CodeDeploy) names what it undoes.
    deployment_id = info.get("deploymentId", "")
    with STATE.lock:
        rolled_back_by = STATE.rollbacks.get(deployment_id)
        rolls_back = next((d for d, r in STATE.rollbacks.items() if r == deployment_id), None)
    if rolled_back_by:
        info["rollbackInfo"] = {"rollbackDeploymentId": rolled_back_by,
                                "rollbackMessage":
                                    f"Deployment {deployment_id} failed; rolled back by {rolled_back_by}"}
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
            fail("codedeploy", "ListDeploymentTargets", params, "DeploymentDoesNotExistException",
                  f"The deployment {deployment_id} does not exist with the user or AWS account.")
        targets = [_target_id(deployment_id)] if deployment_id in STATE.targets else []
    return json.dumps({"targetIds": targets})


def get_deployment_target(self: CodeDeployResponse) -> str:
    params = json.loads(self.body or "{}")
    deployment_id = params.get("deploymentId", "")
    with STATE.lock:
        events = STATE.targets.get(deployment_id)
        if events is None or params.get("targetId") != _target_id(deployment_id):
            fail("codedeploy", "GetDeploymentTarget", params, "DeploymentTargetDoesNotExistException",
                  "The deployment target does not exist")
    return json.dumps({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": {
        "deploymentId": deployment_id, "targetId": _target_id(deployment_id), "status": "InProgress",
        "lifecycleEvents": events}}})
