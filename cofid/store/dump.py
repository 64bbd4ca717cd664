"""A normalized dump of the seed's tables: what two runs must agree on, ids aside.

`normalized_dump(url)` reads every table of `cofid.store.tables.SEED_TABLES`, and cofi's
tradeVerdict (the verdicts must survive a crash exactly as the rows they derive from) and
recordingDigest (each recording's digest written once, whatever the crashes), and returns
{table name: rows}, each row a plain dict, rows sorted deterministically, so that the dump
of a crashed-and-resumed run can be compared with the dump of an uninterrupted one (in a
separate database), on SQLite and on MySQL/MariaDB alike.

Normalization:

- Surrogate ids go: a row's own `id` is dropped; a batch id becomes the batch's natural key
  "<batchDate>#<batchNumber>"; a call id becomes "<batch key>/<audioName>".
- Timestamps go (createdAt, updatedAt, completedAt, timestamp, created_at, decidedAt,
  storedAt), and so does
  processing_logs.duration_ms: they depend on the clock, not on what was done.
- Decimals become plain strings ("1500.5"), floats are rounded to 4 places (MySQL FLOAT is
  single precision), JSON values stay as parsed.
- processing_logs keeps only "success" and "failed" rows, as (batch, file, stage, status,
  attempt, error_message). "retry" rows are left out: a retry row is posted when an attempt
  fails, outside any file's result transaction, and a process killed after a failed attempt
  and restarted makes that attempt again — so a crashed run legitimately logs more retries
  than an uninterrupted one (the attempts really happened). The success / failed row of a
  file-stage commits with its result, exactly once.
- batchExecutionLog keeps only the multiset of (batch, stage, eventType, status, fileName)
  of file_complete, error and stage_complete events. stage_progress events are emitted by
  count and by elapsed time, and file_start events once per attempt (before the result
  commits), so their numbers depend on timing and on where a crash fell; stage_start is
  written when the first file of a run enters a stage, so a resumed run that finds the
  stage InProgress writes it again; info events are per run. None of these are results.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cofid.store import tables as t
from cofid.store.db import read_once

TIMESTAMP_COLUMNS = frozenset(
    {"createdAt", "updatedAt", "timestamp", "created_at", "completedAt", "decidedAt", "storedAt"}
)
DUMPED_TABLES = (*t.SEED_TABLES, t.trade_verdict, t.recording_digest)
KEPT_EVENT_TYPES = ("file_complete", "error", "stage_complete")
KEPT_LOG_STATUSES = ("success", "failed")

Dump = dict[str, list[dict[str, Any]]]


def _value(v: Any) -> Any:
    if isinstance(v, Decimal):
        s = format(v.normalize(), "f")
        return s
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)  # a JSON column read back as text by some drivers
        except ValueError:
            return v
    return v


def _sort(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def normalized_dump(url: str) -> Dump:
    return read_once(url, dump_connection)


def dump_connection(conn: sa.Connection) -> Dump:
    bs, c = t.batch_status, t.call
    batch_key = {
        r.id: f"{r.batchDate.isoformat()}#{r.batchNumber}"
        for r in conn.execute(sa.select(bs.c.id, bs.c.batchDate, bs.c.batchNumber))
    }
    call_key = {
        r.id: f"{batch_key.get(r.batchId, r.batchId)}/{r.audioName}"
        for r in conn.execute(sa.select(c.c.id, c.c.batchId, c.c.audioName))
    }
    out: Dump = {}
    for table in DUMPED_TABLES:
        rows = []
        for r in conn.execute(sa.select(table)):
            m = dict(r._mapping)
            m.pop("id", None)
            for col in TIMESTAMP_COLUMNS:
                m.pop(col, None)
            for col in ("batchId", "batch_id"):
                if col in m:
                    m[col] = batch_key.get(m[col], m[col])
            for col in ("callId", "call_id"):
                if col in m:
                    m[col] = call_key.get(m[col], m[col]) if m[col] is not None else None
            rows.append({k: _value(v) for k, v in m.items()})
        if table is t.processing_logs:
            rows = [
                {k: r[k] for k in ("batch_id", "file_name", "stage_name", "status", "attempt",
                                   "error_message")}
                for r in rows
                if r["status"] in KEPT_LOG_STATUSES
            ]
        elif table is t.batch_execution_log:
            rows = [
                {k: r[k] for k in ("batchId", "stage", "eventType", "status", "fileName")}
                for r in rows
                if r["eventType"] in KEPT_EVENT_TYPES
            ]
        out[table.name] = _sort(rows)
    return out


def diff_dumps(a: Dump, b: Dump, limit: int = 20) -> list[str]:
    """Human-readable differences (rows only in a: '-', only in b: '+'), for assertion messages."""
    lines: list[str] = []
    for name in sorted(set(a) | set(b)):
        ra = [json.dumps(r, sort_keys=True, default=str) for r in a.get(name, [])]
        rb = [json.dumps(r, sort_keys=True, default=str) for r in b.get(name, [])]
        rest = list(rb)
        only_a = []
        for x in ra:
            if x in rest:
                rest.remove(x)
            else:
                only_a.append(x)
        lines += [f"{name} - {x}" for x in only_a] + [f"{name} + {x}" for x in rest]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])
