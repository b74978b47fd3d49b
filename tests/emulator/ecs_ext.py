"""ECS `DescribeServiceRevisions`, which moto lacks, for seeded revisions."""

from __future__ import annotations

import json
from typing import Any

from state import STATE


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


