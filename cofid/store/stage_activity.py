"""What a batch's stages have recorded doing: per-stage attempt counts and times.

Read from processing_logs (one row per attempt: success, retry or failed; written in the
same transaction as the file's state), so the figures survive a daemon restart and are
the same for every client that reopens the batch. One grouped query on the
(batch_id, status, stage_name) index. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.store import tables as t


@dataclass(frozen=True)
class StageActivity:
    """One stage of one batch, over its processing_logs rows."""

    successes: int = 0
    failures: int = 0  # files that failed after their retries
    retries: int = 0  # attempts that failed and were tried again
    first_at: datetime | None = None  # oldest success / failed row (naive UTC)
    last_at: datetime | None = None  # newest success / failed row
    last_success_at: datetime | None = None

    def files_per_minute(self) -> float:
        """Finished files (success or failed) per minute between the first and the newest
        finished row; 0 with fewer than two rows or no time between them."""
        n = self.successes + self.failures
        if n < 2 or self.first_at is None or self.last_at is None:
            return 0.0
        secs = (self.last_at - self.first_at).total_seconds()
        return 60.0 * (n - 1) / secs if secs > 0 else 0.0


def batch_activity(conn: Connection, batch_id: int) -> dict[str, StageActivity]:
    """stage name -> its activity; stages without a row are absent."""
    pl = t.processing_logs
    rows = conn.execute(
        sa.select(
            pl.c.stage_name,
            pl.c.status,
            sa.func.count(),
            sa.func.min(pl.c.created_at),
            sa.func.max(pl.c.created_at),
        )
        .where(pl.c.batch_id == batch_id)
        .group_by(pl.c.stage_name, pl.c.status)
    ).all()
    acc: dict[str, dict[str, tuple[int, datetime | None, datetime | None]]] = {}
    for stage, status, n, lo, hi in rows:
        acc.setdefault(str(stage), {})[str(status)] = (int(n), lo, hi)
    out: dict[str, StageActivity] = {}
    for stage, by in acc.items():
        ok, fail, retry = (by.get(k, (0, None, None)) for k in ("success", "failed", "retry"))
        firsts = [x for x in (ok[1], fail[1]) if x is not None]
        lasts = [x for x in (ok[2], fail[2]) if x is not None]
        out[stage] = StageActivity(
            successes=ok[0],
            failures=fail[0],
            retries=retry[0],
            first_at=min(firsts) if firsts else None,
            last_at=max(lasts) if lasts else None,
            last_success_at=ok[2],
        )
    return out
