"""What a failure event shows of the request that failed: `details["request"]` of a
remote backend's error, built by `failed_request` only (cofid.engine.reporting makes it the
error event's payload; the Event message's contract in protos/cofi/v1/cofi.proto).

- "url": scheme://host[:port]/path (`public_url`: never a user, password, query or
  fragment, so neither `user:pass@` nor `?api_key=` reaches an event, a log row or a
  message);
- "model": the model asked;
- "status": the HTTP status (absent when no reply came: timeout, refused connection);
- "message": the server's message, or ours for a reply the model got wrong: one line,
  control characters removed, at most MESSAGE_LIMIT characters;
- "reply", for a reply the model got wrong (HTTP 2xx): its text, control characters but
  newline and tab removed, at most REPLY_LIMIT characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cofid.domain.ports import BackendError

REPLY_LIMIT = 2000  # characters of a server's reply kept in an error's details
MESSAGE_LIMIT = 500

# C0 / C1 controls, DEL, and the bidi overrides / isolates that reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def public_url(url: str) -> str:
    """`url` as scheme://host[:port]/path: no user, password, query or fragment."""
    try:
        p = urlsplit(url)
        port = p.port
    except ValueError:
        return "(unparsable URL)"
    host = p.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return urlunsplit((p.scheme, f"{host}:{port}" if port else host, p.path, "", ""))


def one_line(text: str, limit: int) -> str:
    """`text` on one line, control characters removed, at most `limit` characters."""
    return " ".join(_CONTROLS.sub(" ", text).split())[:limit]


def clean_text(text: str, limit: int) -> str:
    """`text` with control characters but newline and tab removed, at most `limit`."""
    return _CONTROLS_BUT_LINES.sub("", text.replace("\r\n", "\n"))[:limit]


def failed_request(
    url: str,
    *,
    model: str | None,
    status: int | None = None,
    message: str = "",
    reply: str | None = None,
) -> dict[str, Any]:
    """The summary of a request that failed (module docstring): what a failure event's
    payload shows."""
    summary: dict[str, Any] = {"url": public_url(url)}
    if model:
        summary["model"] = one_line(model, 200)
    if status is not None:
        summary["status"] = status
    summary["message"] = one_line(message, MESSAGE_LIMIT)
    if reply is not None:
        summary["reply"] = clean_text(reply, REPLY_LIMIT)
    return summary


def describe(exc: BackendError, url: str, *, model: str | None, status: int | None = None,
             reply: str | None = None) -> BackendError:
    """`exc` with its failed request summary (kept when one is there already)."""
    if "request" not in exc.details:
        exc.details["request"] = failed_request(
            url, model=model, status=status, message=str(exc), reply=reply
        )
    return exc


@contextmanager
def describing(url: str, *, model: str | None, status: int | None = None,
               reply: str | None = None) -> Iterator[None]:
    """Every BackendError raised inside gets its failed request summary (`describe`)."""
    try:
        yield
    except BackendError as exc:
        describe(exc, url, model=model, status=status, reply=reply)
        raise


def reply_text(body: Any) -> str:
    """A transcription reply's text (else the reply as JSON), for `describing`."""
    text = body.get("text") if isinstance(body, Mapping) else None
    return text if isinstance(text, str) else json.dumps(body, default=str)[:REPLY_LIMIT]
