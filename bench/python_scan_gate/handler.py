"""scan-gate in Python 3.11 + boto3: the baseline Shipgate's benchmark compares with.

The same inputs (an `ECR Image Scan` / `Inspector2 Scan` EventBridge event),
the same AWS calls (the last-known-good policy from S3, every page of
DescribeImageScanFindings, a conditional PutObject of the verdict, PutEvents)
and the same decision rules (SPEC 3.2) as functions/scan-gate, written the way
a team would write it in Python. It exists to be measured, not deployed.
"""

import datetime as dt
import fnmatch
import hashlib
import json
import os

import boto3
from botocore.config import Config

_config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
_endpoint = os.environ.get("AWS_ENDPOINT_URL")
S3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}, retries=_config.retries), endpoint_url=_endpoint)
ECR = boto3.client("ecr", config=_config, endpoint_url=_endpoint)
EVENTS = boto3.client("events", config=_config, endpoint_url=_endpoint)
BUCKET = os.environ["SHIPGATE_CONFIG_BUCKET"]
BUS = os.environ["SHIPGATE_EVENT_BUS"]

SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]


def _get_json(key):
    try:
        obj = S3.get_object(Bucket=BUCKET, Key=key)
    except S3.exceptions.NoSuchKey:
        return None, None
    return json.loads(obj["Body"].read()), obj.get("ETag")


def _policy(repository):
    for key in (f"policies/{repository}/appsec.lkg.json", "policies/default/appsec.lkg.json"):
        lkg, _ = _get_json(key)
        if lkg is not None:
            return key, lkg
    return None, None


def _findings(registry, repository, digest):
    pages, token = [], None
    while True:
        kwargs = {"registryId": registry, "repositoryName": repository, "imageId": {"imageDigest": digest}, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = ECR.describe_image_scan_findings(**kwargs)
        pages.append(page)
        token = page.get("nextToken")
        if not token:
            return pages


def _glob(pattern, text):
    return fnmatch.fnmatchcase(text, pattern)


def _evaluate(policy, repository, pages, now):
    scan = policy["scan"]
    status = pages[0].get("imageScanStatus", {}).get("status", "")
    counts = {s: 0 for s in SEVERITIES}
    verdict = {"verdict": "PASS", "status": status, "counts": counts, "violations": [], "excepted": [], "not_fixable": 0}
    active = []
    for e in scan.get("exceptions", []):
        repos = e.get("repositories") or []
        if repos and not any(_glob(g, repository) for g in repos):
            continue
        expires = dt.datetime.fromisoformat(e["expires"]).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        if now < expires:
            active.append([e, False])
    if status in ("IN_PROGRESS", "PENDING"):
        verdict["verdict"] = "PENDING"
        return verdict
    if status not in ("COMPLETE", "ACTIVE"):
        if scan["required"]:
            verdict["verdict"] = "FAIL"
            verdict["violations"].append(f"scan status is {status or 'missing'}")
        return verdict
    unknown = scan["unknown_severity_as"]
    for page in pages:
        block = page.get("imageScanFindings", {})
        items = [(f.get("name", ""), f.get("severity", ""), [a.get("value") for a in f.get("attributes", []) if a.get("key") == "package_name"], False)
                 for f in block.get("findings", [])]
        for f in block.get("enhancedFindings", []):
            d = f.get("packageVulnerabilityDetails", {})
            items.append((d.get("vulnerabilityId", ""), f.get("severity", ""), [p.get("name") for p in d.get("vulnerablePackages", [])],
                          f.get("fixAvailable") == "NO"))
        for vid, severity, packages, unfixable in items:
            severity = severity.upper() if severity.upper() in SEVERITIES else unknown
            hit = next((a for a in active if a[0]["id"].lower() == vid.lower()
                        and (a[0].get("package") is None or a[0]["package"] in packages)), None)
            if hit:
                hit[1] = True
                verdict["excepted"].append({"id": vid, "exception": hit[0]["id"]})
                continue
            if scan["only_fixable"] and unfixable:
                verdict["not_fixable"] += 1
                continue
            counts[severity] += 1
    for severity, limit in scan["thresholds"].items():
        if counts.get(severity, 0) > limit:
            verdict["violations"].append(f"{counts[severity]} {severity} findings, more than the {limit} allowed")
    if scan.get("fail_on_stale_exceptions"):
        verdict["violations"].extend(f"exception {a[0]['id']} matches no finding" for a in active if not a[1])
    if verdict["violations"]:
        verdict["verdict"] = "FAIL"
    return verdict


def handler(event, context):
    detail = event["detail"]
    repository = detail["repository-name"].split(":repository/")[-1]
    digest = detail["image-digest"]
    now = dt.datetime.now(dt.timezone.utc)
    key, lkg = _policy(repository)
    pages = _findings(event.get("account"), repository, digest)
    completed = pages[0].get("imageScanFindings", {}).get("imageScanCompletedAt")
    scanned_at = completed.timestamp() if completed else dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    if lkg is None:
        verdict = {"verdict": "FAIL", "violations": ["no policy"]}
        sha = None
    else:
        verdict = _evaluate(lkg["document"]["policy"], repository, pages, now)
        sha = lkg["sha256"]
    record = {"repository": repository, "digest": digest, "scanned_at": scanned_at, "policy_key": key,
              "policy_sha256": sha, "verdict": verdict, "announced": False}
    verdict_key = f"verdicts/{repository}/{digest}.json"
    stored = False
    for _ in range(8):
        current, etag = _get_json(verdict_key)
        if current is not None and not (scanned_at > current["scanned_at"]
                                        or (scanned_at == current["scanned_at"] and sha != current.get("policy_sha256"))):
            break
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            S3.put_object(Bucket=BUCKET, Key=verdict_key, Body=json.dumps(record).encode(), ContentType="application/json", **condition)
            stored = True
            break
        except S3.exceptions.ClientError as e:
            if e.response["Error"]["Code"] not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
    if stored:
        EVENTS.put_events(Entries=[{"EventBusName": BUS, "Source": "shipgate", "DetailType": "Shipgate Scan Verdict",
                                    "Detail": json.dumps({"repository": repository, "digest": digest, "verdict": verdict["verdict"]})}])
        record["announced"] = True
        S3.put_object(Bucket=BUCKET, Key=verdict_key, Body=json.dumps(record).encode(), ContentType="application/json")
    return {"repository": repository, "digest": digest, "verdict": verdict["verdict"], "stored": stored,
            "id": hashlib.sha256(digest.encode()).hexdigest()[:8]}
