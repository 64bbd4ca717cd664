"""Pure checks of request fields: optional fields, batch directories, dates, call statuses
and the ListBatches / ListCalls page tokens (no I/O, no trio; errors are ApiError for the
client).

A page token is opaque to clients and signed (:mod:`cofid.api.page_tokens`: an
HMAC-SHA256 under a per-daemon key): the last row's key (ListBatches: (batchDate,
batchNumber); ListCalls: call id), the RPC it belongs to and a digest of the filters it
was issued for, so a token is refused with other filters, by another RPC, by a restarted
daemon or after any change, instead of silently paging through a different list. Every
refusal is INVALID_ARGUMENT with :data:`TOKEN_REFUSED`, never INTERNAL.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from google.protobuf.message import Message

from cofid.api import page_tokens
from cofid.api.bridge import invalid
from cofid.domain.model import CallStatus
from cofid.service.intake import shown

TOKEN_REFUSED = "page_token was not issued by this server for these filters"
MAX_KEYSET = 2**63 - 1  # ids and batch numbers are BIGINT at most


def optional(msg: Message, name: str) -> Any:
    """The value of proto3 optional field ``name``, or None when it is not set."""
    return getattr(msg, name) if msg.HasField(name) else None


def check_batch_directory(d: str) -> None:
    """StartBatch's directory as written: non-empty, absolute, normalised. Whether it is
    inside a batch root is decided on resolved paths, by the service's intake rules
    (cofid.service.intake.directory_problem)."""
    if not d:
        raise invalid("directory is empty")
    if not os.path.isabs(d):
        raise invalid(f"directory '{shown(d)}' is not absolute")
    if os.path.normpath(d) != d:
        raise invalid(f"directory '{shown(d)}' is not normalised "
                      f"(expected '{shown(os.path.normpath(d))}')")


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
    return page_tokens.sign({"r": "ListBatches", "d": last["batch_date"].isoformat(),
                             "n": last["batch_number"], "f": key})


def _keyset(value: Any) -> int:
    """A keyset number from a payload: an int (not a bool, float or string) in range."""
    if type(value) is not int or not 0 <= value <= MAX_KEYSET:
        raise ValueError
    return value


def read_page_token(token: str, key: str) -> tuple[date, int]:
    raw = page_tokens.verify(token)
    try:
        if raw is None or raw.get("r") != "ListBatches" or raw.get("f") != key:
            raise ValueError
        d = raw["d"]
        if type(d) is not str or len(d) != 10:
            raise ValueError
        return date.fromisoformat(d), _keyset(raw["n"])
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
    return page_tokens.sign({"r": "ids", "c": last_call_id, "f": key})


def read_calls_page_token(token: str, key: str) -> int:
    """The call id a ListCalls page continues after (any id-keyed list whose ``key``
    names its RPC and filters may use this pair)."""
    raw = page_tokens.verify(token)
    try:
        if raw is None or raw.get("r") != "ids" or raw.get("f") != key:
            raise ValueError
        c = _keyset(raw["c"])
        if c <= 0:
            raise ValueError
        return c
    except (ValueError, KeyError, TypeError):
        raise invalid(TOKEN_REFUSED) from None
