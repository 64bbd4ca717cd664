"""The `task` table: one row per background task (cofid.service.tasks has the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.store import batches
from cofid.store import tables as t


@dataclass
class TaskRecord:
    id: str
    kind: str
    state: str
    batch_id: int | None
    request: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _record(row: sa.Row[Any]) -> TaskRecord:
    f = t.to_fields(row)
    return TaskRecord(id=f["id"], kind=f["kind"], state=f["state"], batch_id=f["batch_id"],
                      request=f["request"] or {}, result=f["result"], error=f["error"],
                      created_at=f["created_at"], updated_at=f["updated_at"])


def insert(conn: Connection, rec: TaskRecord) -> None:
    conn.execute(sa.insert(t.task).values(**t.to_columns("task", {
        "id": rec.id, "kind": rec.kind, "state": rec.state, "batch_id": rec.batch_id,
        "request": rec.request, "result": rec.result, "created_at": rec.created_at,
        "updated_at": rec.updated_at})))


def update(conn: Connection, task_id: str, values: dict[str, Any]) -> None:
    """Set fields (state, batch_id, result, error, updated_at) of one task."""
    conn.execute(sa.update(t.task).where(t.task.c.id == task_id)
                 .values(**t.to_columns("task", values)))


def get(conn: Connection, task_id: str) -> TaskRecord | None:
    r = conn.execute(sa.select(t.task).where(t.task.c.id == task_id)).first()
    return None if r is None else _record(r)


def newest_for_batch(conn: Connection, batch_id: int, kinds: tuple[str, ...]) -> TaskRecord | None:
    tk = t.task
    r = conn.execute(
        sa.select(tk).where(tk.c.batchId == batch_id, tk.c.kind.in_(kinds))
        .order_by(tk.c.createdAt.desc(), tk.c.id).limit(1)).first()
    return None if r is None else _record(r)


def in_states(conn: Connection, states: tuple[str, ...]) -> list[TaskRecord]:
    return [_record(r) for r in conn.execute(sa.select(t.task).where(t.task.c.state.in_(states)))]


def batch_of_directory(conn: Connection, directory: str) -> int | None:
    """The id of the batch a directory became, or None."""
    rec = batches.by_source(conn, directory)
    return None if rec is None else rec.id


def batch_status_of(conn: Connection, batch_id: int) -> str | None:
    """batchStatus.status of a batch, None when there is no such batch."""
    bs = t.batch_status
    r = conn.execute(sa.select(bs.c.status).where(bs.c.id == batch_id)).first()
    return None if r is None else str(r.status)


def page(conn: Connection, states: tuple[str, ...], kinds: tuple[str, ...], limit: int,
         after: tuple[Any, str] | None) -> tuple[list[TaskRecord], bool]:
    """Tasks newest first (createdAt desc, id asc among equals), keyset-paged after
    (createdAt, id) of the previous page's last task; (tasks, whether more follow)."""
    tk = t.task
    q = sa.select(tk)
    if states:
        q = q.where(tk.c.state.in_(states))
    if kinds:
        q = q.where(tk.c.kind.in_(kinds))
    if after is not None:
        at, tid = after
        q = q.where(sa.or_(tk.c.createdAt < at, sa.and_(tk.c.createdAt == at, tk.c.id > tid)))
    rows = conn.execute(q.order_by(tk.c.createdAt.desc(), tk.c.id).limit(limit + 1)).all()
    return [_record(r) for r in rows[:limit]], len(rows) > limit
