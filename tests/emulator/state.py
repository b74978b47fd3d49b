"""What the emulator's extensions keep, behind one lock (moto's server is threaded)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, NoReturn

from moto.core.exceptions import JsonRESTError

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


def fail(service: str, action: str, params: dict[str, Any], error: str, message: str) -> NoReturn:
    STATE.record(service, action, params, error)
    raise JsonRESTError(error, message)


def epoch_seconds(value: Any) -> Any:
    """An ISO 8601 time as epoch seconds, which AWS's JSON protocol uses for
    timestamps (moto writes some as ISO strings, which the SDKs refuse);
    anything else as it is."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    return value
