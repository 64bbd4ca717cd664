"""Executing write sets: field names -> the seed's tables and columns, one group per
transaction, events numbered and inserted with the rows they describe.

The engine's writer (cofid/engine/writer.py) decides *when* a group commits; this module
is *how*: it is the only place a write set (cofid.domain.ops) becomes SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cofid.domain.events import Event
from cofid.domain.ops import Delete, Insert, Op, Update
from cofid.store import tables as t
from cofid.store.db import execute_seed_ops as _execute_seed_ops

# A batch-level step: runs inside a group's transaction, returns the events it caused.
Step = Callable[[Connection], list[Event]]


def utcnow() -> datetime:
    """The one clock of stored timestamps: UTC, naive (the seed's DATETIME columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_seed_op(op: Op) -> Op:
    """The same operation addressed by the seed's table and column names."""
    table = t.table_of(op.table).name
    if isinstance(op, Insert):
        return Insert(table, tuple(t.to_columns(op.table, row) for row in op.rows))
    key = t.column_of(op.table, op.key_column).name
    if isinstance(op, Delete):
        return Delete(table, key, op.key_value)
    return Update(table, key, op.key_value, t.to_columns(op.table, op.values))


def execute_ops(conn: Connection, ops: Iterable[Op]) -> None:
    """Execute field-named ops of one or many write sets (three merged phases, see
    cofid.domain.ops)."""
    _execute_seed_ops(conn, [to_seed_op(op) for op in ops])


class PendingWrite(Protocol):
    """One queued unit of a group: a write set and its events, or a batch-level step."""

    ops: list[Op]
    events: list[Event]
    step: Step | None
    result: list[Event]


class EventIds:
    """Hands out event ids in commit order (only the writer's groups use it)."""

    def __init__(self, next_id: int = 1) -> None:
        self.next_id = next_id

    def number(self, events: Sequence[Event]) -> None:
        now = utcnow()
        for e in events:
            if not e.id:
                e.id = self.next_id
                self.next_id += 1
            if e.timestamp is None:
                e.timestamp = now


def event_committed(engine: Engine, event_id: int) -> bool:
    tbl = t.batch_execution_log
    with engine.connect() as conn:
        return conn.execute(sa.select(tbl.c.id).where(tbl.c.id == event_id)).first() is not None


def commit_group(engine: Engine, group: Sequence[PendingWrite], ids: EventIds) -> None:
    """Commit every unit of `group` in one transaction; runs in a worker thread."""
    ops: list[Op] = []
    events: list[Event] = []
    known = [e for item in group for e in item.events if e.id]
    if known and event_committed(engine, known[0].id):
        # Database.run retried us after a lost connection, and the COMMIT had in fact
        # gone through: the group is durable, doing it again would write it twice.
        return
    with engine.begin() as conn:
        for item in group:
            ops.extend(to_seed_op(op) for op in item.ops)
            events.extend(item.events)
            if item.step is not None:
                item.result = item.step(conn)
                events.extend(item.result)
        ids.number(events)
        if events:
            rows = tuple(e.row() for e in events)
            ops.append(to_seed_op(Insert("batch_execution_log", rows)))
        _execute_seed_ops(conn, ops)

