"""Pure checks of request fields: optional fields, batch directories, dates, call statuses
and the ListBatches / ListCalls page tokens (no I/O, no trio; errors are ApiError for the
client).

A page token is opaque to clients: url-safe base64 of the last row's key (ListBatches:
(batchDate, batchNumber); ListCalls: call id) and a digest of the filters it was issued
for, so a token is refused with other filters (or by the other RPC) instead of silently
paging through a different list.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from google.protobuf.message import Message

from cofid.api.bridge import invalid
from cofid.domain.model import CallStatus

TOKEN_REFUSED = "page_token was not issued by this server for these filters"


def optional(msg: Message, name: str) -> Any:
    """The value of proto3 optional field ``name``, or None when it is not set."""
    return getattr(msg, name) if msg.HasField(name) else None


def check_batch_directory(d: str, roots: Iterable[str]) -> None:
    """StartBatch's directory: non-empty, absolute, normalised, inside a batch root."""
    if not d:
        raise invalid("directory is empty")
    if not os.path.isabs(d):
        raise invalid(f"directory {d!r} is not absolute")
    if os.path.normpath(d) != d:
        raise invalid(f"directory {d!r} is not normalised (expected {os.path.normpath(d)!r})")
    roots = [os.path.normpath(r) for r in roots]
    if roots and not any(d == r or d.startswith(r.rstrip("/") + "/") for r in roots):
        raise invalid(f"directory {d!r} is outside the batch roots ({', '.join(roots)})")


def check_positive_ids(**ids: int | None) -> None:
    for name, v in ids.items():
        if v is not None and v <= 0:
            raise invalid(f"{name} must be > 0, got {v}")


def parse_date(value: str, what: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def filter_key(date_from: str | None, date_to: str | None, size: int) -> str:
    return hashlib.sha256(f"{date_from}|{date_to}|{size}".encode()).hexdigest()[:12]


def page_token(last: Mapping[str, Any], key: str) -> str:
    """The token of a ListBatches page ending at batch record ``last``."""
    raw = json.dumps({"d": last["batch_date"].isoformat(), "n": last["batch_number"],
                      "f": key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_page_token(token: str, key: str) -> tuple[date, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["f"] != key:
            raise ValueError
        return date.fromisoformat(raw["d"]), int(raw["n"])
    except (ValueError, KeyError, TypeError):
        raise invalid(TOKEN_REFUSED) from None


def check_call_statuses(statuses: Iterable[str]) -> list[str]:
    """ListCalls' status filter: known call.status values, sorted, without repeats."""
    known = {s.value for s in CallStatus}
    for value in statuses:
        if value not in known:
            raise invalid(
                f"unknown call status {value!r} (known: {', '.join(s.value for s in CallStatus)})"
            )
    return sorted(set(statuses))


def calls_filter_key(batch_id: int, statuses: list[str]) -> str:
    raw = json.dumps(["calls", batch_id, statuses])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def calls_page_token(last_call_id: int, key: str) -> str:
    raw = json.dumps({"c": last_call_id, "f": key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def read_calls_page_token(token: str, key: str) -> int:
    """The call id a ListCalls page continues after."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["f"] != key or type(raw["c"]) is not int or raw["c"] <= 0:
            raise ValueError
        return raw["c"]
    except (ValueError, KeyError, TypeError):
        raise invalid(TOKEN_REFUSED) from None
