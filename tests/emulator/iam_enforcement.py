"""Make the local AWS say no where AWS says no.

moto can authorise every call against the caller's identity policies
(`INITIAL_NO_AUTH_ACTION_COUNT`), but on its own it differs from AWS in ways
that would let a too-narrow template pass here and fail on AWS, or the
reverse. This module teaches it what AWS does:

* **Resources.** moto checks most services' calls against resource `*`, so a
  grant on a specific ARN never matched and a grant on `*` always did. Which
  resources a call is authorised against comes from AWS's Service
  Authorization Reference as data (`iam_reference.py`): an action with no
  resource type against `*` only, an action with two required types against
  both. The resolvers below say only which ARN of each type a request names.
* **Conditions.** moto evaluates only `StringEquals` and treats a condition
  that does not hold as an explicit deny. AWS evaluates the operators below,
  and a statement whose condition does not hold simply does not apply
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
  `s3:prefix` is the context of `s3:ListBucket` (ListObjects' `prefix`).
* **S3's missing key.** Without `s3:ListBucket` on the bucket, S3 answers a
  GET or HEAD of a missing key with 403 AccessDenied, not 404 NoSuchKey
  ("If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP
  status code 403", https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
  moto answers 404 either way.
* **Enhanced findings.** With enhanced scanning, `DescribeImageScanFindings`
  also needs `inspector2:ListFindings`
  (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced.html,
  "IAM permissions").
* **Signatures** are not re-verified (see `_check_signature`): the caller
  is identified by its access key, which must belong to a known identity.
* **Denials on JSON services** come back from moto as an XML body, which no
  SDK reads as an error code; they become `AccessDeniedException` JSON.

Provisioning runs as an administrator created at start (`ADMIN_KEY_ID`);
functions run as IAM users holding exactly their role's policies from
`infra/template.yaml` (see `template_iam.py`). Users rather than roles:
moto's AssumeRole crashes on a trust policy with only a `Service` principal,
and a user's policies are evaluated the same way.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto import settings
from moto.codedeploy.models import codedeploy_backends
from moto.codedeploy.responses import CodeDeployResponse
from moto.codepipeline.responses import CodePipelineResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse
from moto.ecr.responses import ECRResponse
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.responses import EventsHandler
from moto.iam import access_control
from moto.iam.models import Policy, iam_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sns.responses import SNSResponse

import iam_reference
from aws_account import ACCOUNT, REGION
from patching import add_hook, replace

ADMIN_USER = "shipgate-admin"
ADMIN_KEY_ID = "AKIASHIPGATEADMIN001"
ADMIN_SECRET = "shipgate-local-admin-secret"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def enable() -> None:
    """Every call from now on is authorised; installs AWS's rules above."""
    replace(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    replace(access_control.IAMRequestBase, "check_action_permitted", _check_action_permitted)
    replace(access_control.IAMRequestBase, "check_signature", _check_signature)
    # moto authorises a request against `_determine_resource()` when the
    # response class has one (`BaseResponse.call_action`), else against "*".
    for response_class, resolver in RESOURCES.items():
        add_hook(response_class, "_determine_resource", resolver, consulted_by=BaseResponse.call_action)
    create_admin()


def create_admin() -> None:
    create_user(ADMIN_USER, [ADMIN_POLICY], [], ADMIN_KEY_ID, ADMIN_SECRET)


def create_user(
    name: str,
    policies: list[dict[str, Any]],
    managed_policy_arns: list[str],
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> dict[str, str]:
    """An IAM user holding `policies` inline and the managed policies moto
    knows; its access key, fixed when given. Replaces a user of that name."""
    backend = iam_backends[ACCOUNT]["aws"]
    if name in backend.users:
        user = backend.users.pop(name)
        user.policies.clear()
        user.access_keys.clear()
    backend.create_user(region_name=REGION, user_name=name)
    for i, policy in enumerate(policies):
        # SAM writes inline policies without a Version, which IAM reads as
        # 2008-10-17 (no policy variables: none are used); moto wants one.
        backend.put_user_policy(name, f"policy{i}", json.dumps({"Version": "2012-10-17", **policy}))
    known = {p.arn for p in backend.managed_policies.values()}
    for arn in managed_policy_arns:
        # Logging and tracing policies: Shipgate makes no such call here.
        if arn in known:
            backend.attach_user_policy(arn, name)
    key = backend.create_access_key(name)
    if access_key_id:
        key.access_key_id = access_key_id
    if secret_access_key:
        key.secret_access_key = secret_access_key
    return {"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key}


# --- Evaluation -------------------------------------------------------------


def _documents(policies: list[Any]) -> list[dict[str, Any]]:
    out = []
    for policy in policies:
        if isinstance(policy, Policy):
            version = next(v for v in policy.versions if v.is_default)
            document = version.document
        elif isinstance(policy, str):
            document = policy
        else:
            document = policy["policy_document"]
        out.append(json.loads(document) if isinstance(document, str) else document)
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringLike": lambda expected, actual: _wildcard(expected, actual),
    "StringNotLike": lambda expected, actual: not _wildcard(expected, actual),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": lambda expected, actual: _wildcard(expected, actual),
}


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, entries in condition.items():
        if_exists = operator.endswith("IfExists")
        test = OPERATORS.get(operator.removesuffix("IfExists"))
        if test is None:
            # An operator this emulator does not know: the statement does not
            # apply, so a grant that depends on it is never given by mistake.
            return False
        for key, expected in entries.items():
            actual = context.get(key)
            if actual is None:
                if if_exists:
                    continue
                return False
            negated = operator.startswith(("StringNot", "ArnNot"))
            checks = [test(e, actual) for e in _as_list(expected)]
            if not (all(checks) if negated else any(checks)):
                return False
    return True


def evaluate(policies: list[Any], action: str, resource: str, context: dict[str, str]) -> str:
    """`allow`, `deny` (an explicit Deny applies) or `implicit` (nothing allows)."""
    allowed = False
    for document in _documents(policies):
        for statement in _as_list(document.get("Statement", [])):
            if "NotAction" in statement:
                concerned = not any(_wildcard(a, action, False) for a in _as_list(statement["NotAction"]))
            else:
                concerned = any(_wildcard(a, action, False) for a in _as_list(statement.get("Action", [])))
            if not concerned:
                continue
            if "NotResource" in statement:
                matches = not any(_wildcard(r, resource) for r in _as_list(statement["NotResource"]))
            else:
                matches = any(_wildcard(r, resource) for r in _as_list(statement.get("Resource", [])))
            if not matches or not _condition_holds(statement.get("Condition", {}), context):
                continue
            if statement.get("Effect") == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit"


def _request_context(action: str, path: str) -> dict[str, str]:
    context: dict[str, str] = {}
    if action == "s3:ListBucket":
        query = parse_qs(urlparse(path).query)
        context["s3:prefix"] = query.get("prefix", [""])[0]
    unknown = set(context) - iam_reference.condition_keys(action)
    assert not unknown, f"{action} takes no condition key {unknown} (Service Authorization Reference)"
    return context


def _named_by_moto(action: str, resource: str) -> dict[str, str]:
    """The resource moto itself names (S3's bucket or object ARN; `*` for a
    service without a resolver), by resource type."""
    if resource == "*":
        return {}
    if resource.startswith("arn:aws:s3:::"):
        return {"object" if "/" in resource.removeprefix("arn:aws:s3:::") else "bucket": resource}
    service = action.partition(":")[0]
    for resource_type in iam_reference.resource_types(action):
        if iam_reference.parse_arn(service, resource_type, resource) is not None:
            return {resource_type: resource}
    raise iam_reference.UnnamedResource(f"{action}: {resource} is none of the action's resource types")


def authorise(policies: list[Any], action: str, named: dict[str, str], context: dict[str, str]) -> str:
    """`allow` when every resource `action` is authorised against (per the
    reference) is allowed and none denied; else `deny` or `implicit`."""
    results = [evaluate(policies, action, arn, context) for arn in iam_reference.resources(action, named)]
    if "deny" in results:
        return "deny"
    return "allow" if all(r == "allow" for r in results) else "implicit"


def _check_signature(self: Any) -> None:
    # moto recomputes a signature from a query string and a form body it has
    # already decoded (`prefix=policies/`, SNS message attributes), so signed
    # ListObjectsV2 and Publish calls mismatch. The signer under test is AWS's
    # own SDK: the caller is identified by its access key (an unknown key is
    # refused), and the signature is not verified again.
    return


def _check_action_permitted(self: Any, resource: str | dict[str, str]) -> None:
    if self._action == "sts:GetCallerIdentity":
        return
    policies = self._access_key.collect_policies()
    context = _request_context(self._action, self._path)
    try:
        named = resource if isinstance(resource, dict) else _named_by_moto(self._action, resource)
        decision = authorise(policies, self._action, named, context)
    except iam_reference.UnnamedResource as gap:
        # Provisioning runs as the administrator, whose grant is `*` on `*`:
        # the resource cannot change its answer. A function's call must be
        # authorised as AWS would, so a gap here is the emulator's to fix.
        if self._access_key.arn != f"arn:aws:iam::{ACCOUNT}:user/{ADMIN_USER}":
            raise JsonRESTError("EmulatorIamGap", str(gap)) from gap
        decision = evaluate(policies, self._action, "*", context)
    if decision != "allow":
        self._raise_access_denied()


def caller_permitted(headers: Any, action: str, named: dict[str, str], context: dict[str, str]) -> bool:
    """Whether the caller who signed `headers` may do `action` on the
    resources `named` (by resource type)."""
    credential = headers.get("Authorization", "").partition("Credential=")[2].split("/", 1)[0]
    try:
        key = access_control.create_access_key(ACCOUNT, "aws", credential, dict(headers))
    except access_control.CreateAccessKeyFailure:
        return False
    return authorise(key.collect_policies(), action, named, context) == "allow"


def require(self: Any, action: str, named: dict[str, str], message: str) -> None:
    """Refuses the current call with AccessDeniedException unless the caller
    may also do `action` on `named` (for calls AWS authorises against two
    actions)."""
    if settings.INITIAL_NO_AUTH_ACTION_COUNT == float("inf"):
        return
    if not caller_permitted(self.headers, action, named, {}):
        raise JsonRESTError("AccessDeniedException", message)


# --- The resource each call is authorised against ----------------------------


def _params(self: Any) -> dict[str, Any]:
    try:
        return json.loads(self.body or "{}")
    except (TypeError, ValueError):
        return {}


def _arn(service: str, region: str, resource_type: str, **parts: str) -> str:
    return iam_reference.arn(service, resource_type, Region=region, Account=ACCOUNT, **parts)


# Each resolver names, by the reference's resource type, the resources a
# request is about; `iam_reference.resources` picks those its action is
# authorised against. A type an action requires and no resolver names fails
# the call (EmulatorIamGap).


def _sns_resource(self: SNSResponse) -> dict[str, str]:
    topic = self._get_param("TopicArn") or self._get_param("TargetArn")
    return {"topic": topic} if topic else {}


def _events_resource(self: EventsHandler) -> dict[str, str]:
    entries = _params(self).get("Entries") or [{}]
    bus = entries[0].get("EventBusName") or _params(self).get("EventBusName") or "default"
    return {"event-bus": bus if bus.startswith("arn:") else _arn("events", self.region, "event-bus", EventBusName=bus)}


def _ecr_resource(self: ECRResponse) -> dict[str, str]:
    params = _params(self)
    repository = params.get("repositoryName")
    if not repository:
        return {}
    account = params.get("registryId") or ACCOUNT
    return {
        "repository": iam_reference.arn(
            "ecr", "repository", Region=self.region, Account=account, RepositoryName=repository
        )
    }


def _codepipeline_resource(self: CodePipelineResponse) -> dict[str, str]:
    name = _params(self).get("name") or _params(self).get("pipelineName")
    return {"pipeline": _arn("codepipeline", self.region, "pipeline", PipelineName=name)} if name else {}


def _codedeploy_resource(self: CodeDeployResponse) -> dict[str, str]:
    params = _params(self)
    application = params.get("applicationName")
    group = params.get("deploymentGroupName")
    deployment_id = params.get("deploymentId")
    if deployment_id:
        # A deployment is authorised against its deployment group.
        deployment = codedeploy_backends[ACCOUNT][self.region].deployments.get(deployment_id)
        if deployment is None:
            # Unknown to CodeDeploy: no group of its own, so only a grant
            # that covers every group lets the caller hear that.
            application, group = "*", "*"
        else:
            application, group = deployment.application_name, deployment.deployment_group_name
    named = {}
    if application:
        named["application"] = _arn("codedeploy", self.region, "application", ApplicationName=application)
    if application and group:
        named["deploymentgroup"] = _arn(
            "codedeploy", self.region, "deploymentgroup", ApplicationName=application, DeploymentGroupName=group
        )
    return named


def _ecs_resource(self: EC2ContainerServiceResponse) -> dict[str, str]:
    if self._get_action() != "DescribeServiceRevisions":
        return {}
    revisions = _params(self).get("serviceRevisionArns") or []
    parts = iam_reference.parse_arn("ecs", "service-revision", revisions[0]) if revisions else None
    if parts is None:
        return {}
    # A revision is also authorised against its service, named by its ARN.
    service = iam_reference.arn(
        "ecs", "service", Region=parts["Region"], Account=parts["Account"],
        ClusterName=parts["ClusterName"], ServiceName=parts["ServiceName"],
    )
    return {"service-revision": revisions[0], "service": service}


def _secrets_resource(self: SecretsManagerResponse) -> dict[str, str]:
    secret_id = _params(self).get("SecretId")
    if not secret_id:
        return {}
    backend = secretsmanager_backends[ACCOUNT][self.region]
    try:
        return {"Secret": backend.get_secret_value(secret_id, None, None)["ARN"]}  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - an unknown secret: moto answers after authorisation
        if secret_id.startswith("arn:"):
            return {"Secret": secret_id}
        return {"Secret": _arn("secretsmanager", self.region, "Secret", SecretId=secret_id)}


RESOURCES = {
    SNSResponse: _sns_resource,
    EventsHandler: _events_resource,
    ECRResponse: _ecr_resource,
    CodePipelineResponse: _codepipeline_resource,
    CodeDeployResponse: _codedeploy_resource,
    EC2ContainerServiceResponse: _ecs_resource,
    SecretsManagerResponse: _secrets_resource,
}


# --- Responses AWS gives and moto does not ----------------------------------


def _s3_object(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(bucket, key) of a path-style S3 object request, signed for S3."""
    if "/s3/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    parts = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return None
    return parts[0], parts[1]


def is_s3_object_write(environ: dict[str, Any]) -> bool:
    """A PUT, POST or DELETE of one S3 object (not of a bucket)."""
    return environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE") and _s3_object(environ) is not None


def s3_object_action(environ: dict[str, Any]) -> str | None:
    """`GetObject`, `PutObject` or `DeleteObject` for a plain object request
    (no sub-resource such as `?tagging`; the Rust SDK adds `x-id=<action>`)."""
    if _s3_object(environ) is None:
        return None
    query = [p.split("=", 1)[0] for p in environ.get("QUERY_STRING", "").split("&") if p]
    if any(name != "x-id" for name in query):
        return None
    return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(environ.get("REQUEST_METHOD", ""))


def missing_key_without_list_bucket(environ: dict[str, Any], status: str) -> bool:
    """A GET or HEAD of a missing key by a caller who may not list it: S3
    answers 403 AccessDenied, not 404."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or not status.startswith("404"):
        return False
    target = _s3_object(environ)
    if target is None:
        return False
    bucket, key = target
    headers = {"Authorization": environ.get("HTTP_AUTHORIZATION", "")}
    if "HTTP_X_AMZ_SECURITY_TOKEN" in environ:
        headers["X-Amz-Security-Token"] = environ["HTTP_X_AMZ_SECURITY_TOKEN"]
    return not caller_permitted(
        headers, "s3:ListBucket", {"bucket": f"arn:aws:s3:::{bucket}"}, {"s3:prefix": unquote(key)}
    )


S3_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


def json_access_denied(body: bytes) -> bytes:
    """moto's XML AccessDenied, as the JSON a JSON-protocol service sends."""
    text = body.decode("utf-8", "replace")
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    return json.dumps(
        {"__type": "AccessDeniedException", "message": message.group(1) if message else "Access Denied"}
    ).encode()


def create_session(name: str, policies: list[dict[str, Any]], fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Temporary credentials of a role holding `policies`, as STS AssumeRole
    gives them (CodePipeline hands a job its artifact credentials this way);
    `fixed` keys (accessKeyId, secretAccessKey, sessionToken) replace the
    generated ones, so a sample event's credentials can be made real."""
    from moto.sts.models import sts_backends

    backend = iam_backends[ACCOUNT]["aws"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN_USER}"},
                       "Action": "sts:AssumeRole"}],
    }
    if name not in {r.name for r in backend.roles.values()}:
        backend.create_role(name, json.dumps(trust), "/", None, "", [], None)
    for i, policy in enumerate(policies):
        backend.put_role_policy(name, f"policy{i}", json.dumps(policy))
    role = sts_backends[ACCOUNT]["aws"].assume_role(
        region_name=REGION,
        role_session_name=f"{name}-session",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
        policy="",
        duration=3600,
        external_id="",
    )
    if fixed:
        role.access_key_id = fixed.get("accessKeyId", role.access_key_id)
        role.secret_access_key = fixed.get("secretAccessKey", role.secret_access_key)
        role.session_token = fixed.get("sessionToken", role.session_token)
    return {
        "accessKeyId": role.access_key_id,
        "secretAccessKey": role.secret_access_key,
        "sessionToken": role.session_token,
    }


def create_service_role(name: str, principal: str) -> str:
    """A role `principal` (`codepipeline.amazonaws.com`) may assume, which
    moto's CreatePipeline insists on; its ARN."""
    backend = iam_backends[ACCOUNT]["aws"]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}]}
    if name not in {r.name for r in backend.roles.values()}:
        backend.create_role(name, json.dumps(trust), "/", None, "", [], None)
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


# --- Customer managed keys ---------------------------------------------------
#
# Reading or writing data encrypted with a customer managed KMS key needs the
# key as well as the data: S3 SSE-KMS ("you must have kms:Decrypt ... to
# download, kms:GenerateDataKey to upload", https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html),
# Secrets Manager (kms:Decrypt for GetSecretValue with a customer managed key,
# https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html),
# SNS with server-side encryption (publishers need kms:GenerateDataKey* and
# kms:Decrypt, https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
# moto stores the key ids and checks none of it.


def create_key(description: str) -> dict[str, str]:
    from moto.kms.models import kms_backends

    key = kms_backends[ACCOUNT][REGION].create_key(
        None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description, None
    )
    return {"keyId": key.id, "arn": key.arn}


def _key_arn(key_id: str | None, region: str) -> str | None:
    if not key_id:
        return None
    if key_id.startswith("arn:"):
        return key_id
    return _arn("kms", region, f"key/{key_id}")


def kms_requirement(environ: dict[str, Any], action: str | None, body: bytes) -> tuple[list[str], str] | None:
    """The KMS actions and key this request needs beyond its own permission,
    or None. Only customer managed keys (a key id was given) count."""
    from moto.s3.models import s3_backends
    from moto.sns.models import sns_backends

    method = environ.get("REQUEST_METHOD")
    target = _s3_object(environ)
    query = set(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    # An object read or write: no subresource (?acl, ?tagging, ...), only the
    # SDK's operation hint and a version.
    if target and query <= {"x-id", "versionId"}:
        bucket_name, key = target
        backend = s3_backends[ACCOUNT]["aws"]
        bucket = backend.buckets.get(bucket_name)
        if bucket is None:
            return None
        if method == "PUT" and bucket.encryption:
            default = bucket.encryption["Rule"]["ApplyServerSideEncryptionByDefault"]
            arn = _key_arn(default.get("KMSMasterKeyID"), REGION)
            return (["kms:GenerateDataKey"], arn) if default.get("SSEAlgorithm") == "aws:kms" and arn else None
        if method in ("GET", "HEAD"):
            stored = bucket.keys.get(unquote(key))
            # A delete marker (the key's current version after a DELETE in a
            # versioned bucket) has no encryption: the read is a 404.
            if getattr(stored, "encryption", None) == "aws:kms":
                arn = _key_arn(stored.kms_key_id, REGION)
                return (["kms:Decrypt"], arn) if arn else None
        return None
    if action == "GetSecretValue":
        secret_id = json.loads(body or b"{}").get("SecretId", "")
        secrets = secretsmanager_backends[ACCOUNT][REGION]
        if secret_id in secrets.secrets:
            arn = _key_arn(getattr(secrets.secrets[secret_id], "kms_key_id", None), REGION)
            return (["kms:Decrypt"], arn) if arn else None
        return None
    if method == "POST" and b"Action=Publish" in body:
        params = parse_qs(body.decode("utf-8", "replace"))
        topic_arn = (params.get("TopicArn") or [""])[0]
        topics = sns_backends[ACCOUNT][REGION].topics
        topic = topics.get(topic_arn)
        arn = _key_arn(topic.kms_master_key_id, REGION) if topic is not None else None
        return (["kms:GenerateDataKey", "kms:Decrypt"], arn) if arn else None
    return None


def kms_refusal(environ: dict[str, Any], action: str | None, body: bytes) -> tuple[str, bytes, str] | None:
    """(status, body, content type) refusing the request, when the caller
    may not use the key its data is encrypted with."""
    needed = kms_requirement(environ, action, body)
    if needed is None:
        return None
    actions, key_arn = needed
    headers = {"Authorization": environ.get("HTTP_AUTHORIZATION", "")}
    missing = [a for a in actions if not caller_permitted(headers, a, {"key": key_arn}, {})]
    if not missing:
        return None
    message = f"not authorized to perform: {missing[0]} on resource: {key_arn}"
    if _s3_object(environ):
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        )
        return "403 Forbidden", text.encode(), "application/xml"
    if action:
        return "400 Bad Request", json.dumps({"__type": "AccessDeniedException", "message": message}).encode(), \
            "application/x-amz-json-1.1"
    text = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>KMSAccessDenied</Code>"
        f"<Message>{message}</Message></Error></ErrorResponse>"
    )
    return "400 Bad Request", text.encode(), "text/xml"
