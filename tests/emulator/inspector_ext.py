"""Inspector2 `ListFindings` of the seeded scans' enhanced findings, with EPSS."""

from __future__ import annotations

import json
from typing import Any

from moto.inspector2.responses import Inspector2Response

from state import STATE

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
                "resources": [{
                    "type": "AWS_ECR_CONTAINER_IMAGE",
                    "id": f"arn:aws:ecr:{region}:{self.current_account}:repository/{repository}/{digest}",
                    "details": {"awsEcrContainerImage": {"repositoryName": repository, "imageHash": digest}},
                }],
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
