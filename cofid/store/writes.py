"""Executing write sets: field names -> the seed's tables and columns, one group per
transaction, events numbered and inserted with the rows they describe.

The engine's writer (cofid/engine/writer.py) decides *when* a group commits; this module
is *how*: it is the only place a write set (cofid.domain.ops) becomes SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cofid.domain.events import VALUE_FIELDS, Event
from cofid.domain.ops import Delete, Insert, Op, Update
from cofid.store import tables as t
from cofid.store.column_types import utcnow
from cofid.store.db import execute_seed_ops as _execute_seed_ops
from cofid.store.db import is_connection_error
from cofid.store.raw_sql import RETURNING_CHUNK, insert_returning_ids

# A batch-level step: runs inside a group's transaction, returns the events it caused.
Step = Callable[[Connection], list[Event]]
# What a write set derives from the rows it wrote (a call's trade verdicts): runs in the
# group's transaction after every write set of the group is written. A step with a
# `merge_key` and `merge(other)` (cofid.store.verdicts.VerdictRefresh) is merged with the
# group's steps of the same key, so many files' results share one derived write.
AfterStep = Callable[[Connection], None]


__all__ = ["utcnow"]  # the one clock (cofid.store.column_types), for the service layer


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
    _execute_seed_ops(conn, ops, fields=True)


class PendingWrite(Protocol):
    """One queued unit of a group: a write set and its events, or a batch-level step."""

    ops: list[Op]
    events: list[Event]
    step: Step | None
    result: list[Event]
    after: AfterStep | None


class EventIds:
    """Stamps events (the group's UTC time) and learns the ids the database gave them.

    batchExecutionLog.id is AUTO_INCREMENT (the seed's, so other writers can insert
    without an id); cofid's events get theirs from their INSERT, in the order the writer
    commits them (one group at a time), so cofid's own events are numbered in commit
    order and a stream resumes from an id without a gap in them.
    """

    def __init__(self) -> None:
        self.last_id = 0

    def stamp(self, events: Sequence[Event]) -> None:
        now = utcnow()
        for e in events:
            if e.timestamp is None:
                e.timestamp = now


def event_committed(engine: Engine, event: Event) -> bool:
    """Whether `event`, which got its id in an attempt whose outcome is unknown, is in the
    log: the id and what the row says must both match (an id of a rolled-back attempt can
    be handed out again, by SQLite at least)."""
    tbl = t.batch_execution_log
    with engine.connect() as conn:
        row = conn.execute(sa.select(tbl.c.stage, tbl.c.eventType, tbl.c.timestamp)
                           .where(tbl.c.id == event.id)).first()
    return row is not None and (row.stage, row.eventType) == (event.stage, event.event_type) \
        and _same_instant(row.timestamp, event.timestamp)


def _same_instant(a: Any, b: Any) -> bool:
    # DATETIME(3) keeps milliseconds; the event's own timestamp may have microseconds.
    return a is not None and b is not None and abs((a - b).total_seconds()) < 0.001


def insert_events(conn: Connection, events: Sequence[Event]) -> None:
    """INSERT the events in order and set each one's id to the one it got: one multi-row
    INSERT ... RETURNING per 500 events where the dialect has it (SQLite, MariaDB 10.5+),
    one INSERT per event on MySQL (cofid.store.raw_sql.insert_returning_ids)."""
    # A statement's worth of rows at a time: the rows of a 100,000-file distribution's
    # 200,000 events, all at once, were ~125 MB.
    for at in range(0, len(events), RETURNING_CHUNK):
        chunk = events[at : at + RETURNING_CHUNK]
        ids = insert_returning_ids(conn, t.batch_execution_log, _EVENT_COLUMNS,
                                   [e.values() for e in chunk])
        for e, i in zip(chunk, ids, strict=True):
            e.id = i


_EVENT_COLUMNS = tuple(t.column_of("batch_execution_log", f).name for f in VALUE_FIELDS)


def commit_group(engine: Engine, group: Sequence[PendingWrite], ids: EventIds) -> None:
    """Commit every unit of `group` in one transaction; runs in a worker thread."""
    ops: list[Op] = []
    events: list[Event] = []
    known = _first_numbered(group)
    if known is not None:
        if event_committed(engine, known):
            # Database.run retried us after a lost connection, and the COMMIT had in fact
            # gone through: the group is durable, doing it again would write it twice.
            return
        for item in group:
            for e in item.events:
                e.id = 0  # an id from an attempt that rolled back is not ours
    try:
        _commit(engine, group, ops, events, ids)
    except Exception as exc:
        if not is_connection_error(exc):
            # Rolled back for certain: the ids it got are not ours (the writer retries
            # the group's items one by one, and must not mistake them for committed).
            for e in events:
                e.id = 0
        raise
    if events:
        ids.last_id = max(ids.last_id, events[-1].id)


def _first_numbered(group: Sequence[PendingWrite]) -> Event | None:
    """The group's first event that already has an id (only after an attempt of this
    group whose outcome is unknown), or None: the common case costs one look per event."""
    for item in group:
        for e in item.events:
            if e.id:
                return e
        for e in item.result:
            if e.id:
                return e
    return None


def _commit(engine: Engine, group: Sequence[PendingWrite], ops: list[Op], events: list[Event],
            ids: EventIds) -> None:
    with engine.begin() as conn:
        for item in group:
            ops.extend(item.ops)
            events.extend(item.events)
            if item.step is not None:
                item.result = item.step(conn)
                events.extend(item.result)
        ids.stamp(events)
        _execute_seed_ops(conn, ops, fields=True)
        for step in merged_after_steps([item.after for item in group if item.after]):
            step(conn)
        # After the rows they describe: an event id never precedes its rows.
        if events:
            insert_events(conn, events)


def merged_after_steps(steps: Sequence[AfterStep]) -> list[AfterStep]:
    """One step per merge key (in first-seen order), the others as they are."""
    out: list[AfterStep] = []
    at: dict[Any, int] = {}
    for step in steps:
        key = getattr(step, "merge_key", None)
        if key is None:
            out.append(step)
        elif key in at:
            out[at[key]] = out[at[key]].merge(step)  # type: ignore[attr-defined]
        else:
            at[key] = len(out)
            out.append(step)
    return out
