"""ListTasks and ResumeTask: the handlers' bodies, called by the servicer.

ListTasks pages on (createdAt, task id), newest first. Its page token is signed by the
same helper as every other page token (:mod:`cofid.api.page_tokens`) and names its RPC
and a digest of its filters, so a token from another RPC, for other filters, from a
restarted daemon or altered in any way is INVALID_ARGUMENT with
:data:`cofid.api.validate.TOKEN_REFUSED`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from cofid.api import convert, page_tokens
from cofid.api.bridge import invalid
from cofid.api.validate import TOKEN_REFUSED
from cofid.service.tasks import FINAL as FINAL_STATES
from cofid.service.tasks import KINDS, QUEUED, RUNNING
from protos.cofi.v1 import cofi_pb2 as pb

DEFAULT_PAGE, MAX_PAGE = 50, 500
STATES = (QUEUED, RUNNING, *FINAL_STATES)
MAX_TASK_ID = 64  # task.id is VARCHAR(36); longer is no task of ours

ServiceCall = Callable[..., Any]  # servicer.ServiceCalls: refusals become status codes


def _values(given: Iterable[str], known: tuple[str, ...], what: str) -> tuple[str, ...]:
    out = []
    for v in given:
        if v not in known:
            raise invalid(f"unknown task {what} {v[:40]!r} (known: {', '.join(known)})")
        out.append(v)
    return tuple(sorted(set(out)))


def filter_key(states: tuple[str, ...], kinds: tuple[str, ...]) -> str:
    raw = json.dumps(["tasks", states, kinds])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def page_token(last: pb.Task, key: str) -> str:
    return page_tokens.sign(
        {"r": "ListTasks", "t": last.created_at.ToJsonString(), "i": last.task_id, "f": key}
    )


def read_page_token(token: str, key: str) -> tuple[datetime, str]:
    raw = page_tokens.verify(token)
    try:
        if raw is None or raw.get("r") != "ListTasks" or raw.get("f") != key:
            raise ValueError
        t, i = raw["t"], raw["i"]
        if type(t) is not str or type(i) is not str or len(i) > MAX_TASK_ID:
            raise ValueError
        stamp = pb.Task().created_at
        stamp.FromJsonString(t)
        return stamp.ToDatetime(), i  # naive UTC, as the task table stores it
    except (ValueError, KeyError, TypeError):
        raise invalid(TOKEN_REFUSED) from None


def list_tasks(request: pb.ListTasksRequest, call: ServiceCall, service: Any) -> pb.ListTasksReply:
    states = _values(request.states, STATES, "state")
    kinds = _values(request.kinds, KINDS, "kind")
    if request.page_size < 0:
        raise invalid(f"page_size must be ≥ 0, got {request.page_size}")
    size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
    key = filter_key(states, kinds)
    after = read_page_token(request.page_token, key) if request.page_token else None
    views, more = call(service.list_tasks, states, kinds, size, after)
    reply = pb.ListTasksReply(tasks=[convert.task_view(v) for v in views])
    if more and reply.tasks:
        reply.next_page_token = page_token(reply.tasks[-1], key)
    return reply


def resume_task(request: pb.ResumeTaskRequest, call: ServiceCall, service: Any) -> pb.TaskRef:
    if not request.task_id:
        raise invalid("task_id is empty")
    if len(request.task_id) > MAX_TASK_ID:
        raise invalid(f"task_id is longer than {MAX_TASK_ID} characters")
    return convert.task_ref(call(service.resume_task, request.task_id))
