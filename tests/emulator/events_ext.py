"""EventBridge as AWS answers where moto does not: the PutEvents size limit."""

from __future__ import annotations

import json
from typing import Any

from moto.events.responses import EventsHandler

from state import fail

# "The total entry size must be less than 256KB", each entry counted as
# "Calculating Amazon EventBridge PutEvents event entry size" says:
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
# A request over it is refused whole, as AWS answers it
# (awslabs/aws-service-catalog-puppet#563 quotes the error).
ENTRIES_LIMIT = 256 * 1024

_original_put_events = EventsHandler.put_events


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it: `Time` is 14 bytes; `Source`,
    `DetailType`, `Detail` and each of `Resources` their UTF-8 bytes."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len((entry.get(key) or "").encode())
    size += sum(len((r or "").encode()) for r in entry.get("Resources") or [])
    return size


def put_events(self: EventsHandler) -> str:
    params = json.loads(self.body or "{}")
    if sum(entry_size(e) for e in params.get("Entries") or []) >= ENTRIES_LIMIT:
        message = "Total size of the entries in the request is over the limit."
        fail("events", "PutEvents", {"entries": len(params.get("Entries") or [])}, "ValidationException", message)
    return str(_original_put_events(self))
