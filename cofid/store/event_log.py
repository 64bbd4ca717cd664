"""batchExecutionLog read side: replaying committed events and the ids around them.

Each function takes a Connection (run it inside Database.read) and returns domain
Events or plain ints; the writer side is the group-commit writer's insert of
``Event.row()``. Ids are the table's AUTO_INCREMENT (cofid's writer commits one group at
a time, so its events' ids follow commit order); rows other writers insert (an ops script,
the old dashboard) are read like cofid's, with whatever columns they left NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.events import Event
from cofid.store import tables as t


class EventSelection(Protocol):
    """Which events a replay returns (cofid.engine.bus.EventFilter has this shape)."""

    @property
    def batch_id(self) -> int: ...  # 0: every batch

    @property
    def stages(self) -> frozenset[str]: ...

    @property
    def event_types(self) -> frozenset[str]: ...

    @property
    def errors_only(self) -> bool: ...


def event_from_row(row: Mapping[str, Any] | sa.Row[Any]) -> Event:
    """A batchExecutionLog row as the domain Event."""
    f = t.to_fields(row)
    return Event(
        id=f["id"],
        batch_id=f["batch_id"],
        timestamp=f["timestamp"],
        stage=f["stage"],
        event_type=f["event_type"],
        file_name=f["file_name"],
        gpu=f["gpu_ip"],
        payload=f["payload"],
        response=f["response"],
        status=f["status"],
        error_message=f["error_message"],
        total_files=f["total_files"],
        processed_files=f["processed_files"],
        metadata=f["metadata"],
    )


def replay(conn: Connection, flt: EventSelection, after_id: int, upto_id: int,
           limit: int) -> list[Event]:
    """Committed events with after_id < id <= upto_id that flt selects, oldest first,
    at most ``limit``."""
    tbl = t.batch_execution_log
    stmt = sa.select(tbl).where(tbl.c.id > after_id, tbl.c.id <= upto_id)
    if flt.batch_id:
        stmt = stmt.where(tbl.c.batchId == flt.batch_id)
    if flt.stages:
        stmt = stmt.where(tbl.c.stage.in_(sorted(flt.stages)))
    if flt.event_types:
        stmt = stmt.where(tbl.c.eventType.in_(sorted(flt.event_types)))
    if flt.errors_only:
        stmt = stmt.where(sa.or_(tbl.c.eventType == "error", tbl.c.status == "failed"))
    return [event_from_row(r) for r in conn.execute(stmt.order_by(tbl.c.id).limit(limit))]


def max_event_id(conn: Connection) -> int:
    """The newest committed event's id (0: none yet)."""
    return int(conn.execute(sa.select(sa.func.max(t.batch_execution_log.c.id))).scalar() or 0)


def min_event_id(conn: Connection) -> int:
    """The oldest event still retained (0: none)."""
    return int(conn.execute(sa.select(sa.func.min(t.batch_execution_log.c.id))).scalar() or 0)
