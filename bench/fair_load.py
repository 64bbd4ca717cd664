"""The fair raw load: every write the pipeline made, replayed with raw, well-batched
statements — the reference bench/throughput.py reports against.

While the pipeline runs, a tap records what it writes, in commit order:

- every file-stage result and event-only post the group-commit writer commits (a write
  set's operations, addressed by the seed's tables and columns, and its events' rows with
  the ids the database gave them), tagged with its stage and file;
- every other data-changing statement (INSERT / UPDATE / DELETE: the batch-level steps
  such as distribution and the batchStatus walk, the question-set sync, task rows), as
  the statement and parameters the driver got, one record per transaction.

The replay then writes the same rows into a fresh database through the DB-API driver
(sqlite3 / PyMySQL), no SQLAlchemy: the statements recorded verbatim as they were, and
the file-stage results **one transaction per 50 files per stage** (denoise's first 50
files, its next 50, ..., then ivr's, ...), each transaction in the pipeline's three
phases: DELETE ... WHERE key IN (...) per table, INSERT per table and column set as
multi-row statements (SQLite: up to 512 rows each; MariaDB: executemany, which PyMySQL
turns into multi-row INSERTs), UPDATEs that set the same values
merged into one WHERE key IN (...), the rest one executemany per column set (on
MySQL/MariaDB, where that is a round trip per row, one UPDATE ... SET c = CASE key WHEN
... END per 200 rows), then the events (their ids given). Values are converted to what the driver takes (the columns'
bind processors: JSON text, SQLite's datetime and money text) before the clock starts.

`compare(src, dst)` reads both databases' tables through the raw driver and says whether
they are equal row for row: every table, every column, ids included, rows in primary-key
order. The exception is the columns SQLAlchemy fills with its clock when a write set
leaves them out (createdAt, updatedAt, created_at, storedAt): the replay fills them with
its own clock, so they are compared for presence (NOT NULL on both sides) only. A table
whose rows are equal only once its surrogate `id` is set aside (written by several stages,
its ids follow the pipeline's interleaving, which a stage-by-stage load does not) is
named in `ids_differ`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cofid.domain.ops import Insert, Op, merge_ops
from cofid.engine import writer as writer_mod
from cofid.store import raw_sql
from cofid.store import tables as t
from cofid.store.writes import to_seed_op

FILES_PER_TXN = 50
DML = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass
class Verbatim:
    statements: list[tuple[str, Any, bool]]  # (sql, parameters, executemany)


@dataclass
class Item:
    stage: str | None
    file: tuple[int, str] | None
    ops: list[Op]  # field-named (converted at replay time, off the clock)
    events: list[Any]  # the committed Events (ids given), made rows at replay time


@dataclass
class Tap:
    """Records what the pipeline writes to the database at `url` (see the module doc)."""

    url: str
    stages: frozenset[str]
    log: list[Verbatim | Item] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    def _pending(self) -> list[tuple[str, Any, bool]]:
        p = getattr(self._local, "pending", None)
        if p is None:
            p = self._local.pending = []
        return p

    # -- SQLAlchemy engine events (class level: the app's engine is made inside open_app)

    def _before(self, conn, _cursor, statement, parameters, _context, executemany) -> None:
        if str(conn.engine.url) != self.url or getattr(self._local, "mode", None) == "group":
            return
        if statement.lstrip()[:7].upper().startswith(DML) and "schemaVersion" not in statement:
            self._pending().append((statement, parameters, executemany))

    def _commit(self, conn) -> None:
        if str(conn.engine.url) != self.url or getattr(self._local, "mode", None) is not None:
            return
        p = self._pending()
        if p:
            self.log.append(Verbatim(list(p)))
            p.clear()

    def _rollback(self, conn) -> None:
        if str(conn.engine.url) == self.url and getattr(self._local, "mode", None) is None:
            self._pending().clear()

    # -- the writer's group commit

    def _commit_group(self, original: Callable[..., None]) -> Callable[..., None]:
        def tapped(engine: Engine, group: Sequence[Any], ids: Any) -> None:
            steps = []
            for item in group:
                for name in ("step", "after"):
                    fn = getattr(item, name)
                    if fn is not None and not getattr(fn, "_tapped", False):
                        setattr(item, name, self._in_step(fn))
                        steps.append((item, name, fn))
            self._local.mode = "group"
            self._pending().clear()
            try:
                original(engine, group, ids)
            except BaseException:
                self._pending().clear()
                raise
            finally:
                self._local.mode = None
                for item, name, fn in steps:
                    setattr(item, name, fn)
            p = self._pending()
            if p:
                self.log.append(Verbatim(list(p)))
                p.clear()
            for item in group:
                self.log.append(self._item(item))

        return tapped

    def _in_step(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def stepped(conn):
            self._local.mode = "step"
            try:
                return fn(conn)
            finally:
                self._local.mode = "group"

        stepped._tapped = True  # type: ignore[attr-defined]
        if hasattr(fn, "merge_key"):  # a mergeable after-step keeps merging
            return fn
        return stepped

    def _item(self, item: Any) -> Item:
        # References only: the tap must cost the measured pipeline as little as it can.
        events = [*item.events, *item.result]
        stage = file = None
        for op in item.ops:
            if isinstance(op, Insert) and op.table == "processing_logs":
                r = op.rows[0]
                stage, file = r["stage_name"], (r["batch_id"], r["file_name"])
                break
        if stage is None and events:
            stage = events[0].stage
            if events[0].file_name is not None:
                file = (events[0].batch_id, events[0].file_name)
        if stage not in self.stages or item.step is not None:
            stage = file = None
        return Item(stage, file, item.ops, events)

    @contextmanager
    def installed(self) -> Iterator[Tap]:
        original = writer_mod.commit_group
        writer_mod.commit_group = self._commit_group(original)  # type: ignore[assignment]
        sa.event.listen(Engine, "before_cursor_execute", self._before)
        sa.event.listen(Engine, "commit", self._commit)
        sa.event.listen(Engine, "rollback", self._rollback)
        try:
            yield self
        finally:
            writer_mod.commit_group = original  # type: ignore[assignment]
            sa.event.remove(Engine, "before_cursor_execute", self._before)
            sa.event.remove(Engine, "commit", self._commit)
            sa.event.remove(Engine, "rollback", self._rollback)


# ---- the replay plan -------------------------------------------------------------------


def plan(log: list[Verbatim | Item], stage_order: Sequence[str]) -> list[list[Verbatim | Item]]:
    """Transactions in replay order: what came before the first file-stage result, the
    batch-level writes made while files streamed, each stage's results 50 files per
    transaction (stages in pipeline order), then what came after the last result."""
    staged = [i for i, e in enumerate(log) if isinstance(e, Item) and e.stage is not None]
    if not staged:
        return [[e] for e in log]
    first, last = staged[0], staged[-1]
    txns: list[list[Verbatim | Item]] = [[e] for e in log[:first]]
    middle = [e for e in log[first : last + 1] if not (isinstance(e, Item) and e.stage)]
    txns += [[e] for e in middle]
    by_stage: dict[str, list[list[Verbatim | Item]]] = {}
    files_in: dict[str, set[tuple[int, str]]] = {}
    for e in log[first : last + 1]:
        if not (isinstance(e, Item) and e.stage):
            continue
        chunks = by_stage.setdefault(e.stage, [[]])
        seen = files_in.setdefault(e.stage, set())
        if e.file is not None and e.file not in seen and len(seen) >= FILES_PER_TXN:
            chunks.append([])
            seen.clear()
        if e.file is not None:
            seen.add(e.file)
        chunks[-1].append(e)
    for s in sorted(by_stage, key=lambda s: stage_order.index(s) if s in stage_order else 99):
        txns += by_stage[s]
    txns += [[e] for e in log[last + 1 :]]
    return txns


# ---- turning ops into driver statements (off the clock) ---------------------------------


class Prepared:
    """A transaction's statements for the raw driver: (sql, params, executemany)."""

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        self.dialect = dialect
        self.q = dialect.identifier_preparer.quote
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._procs: dict[tuple[str, str], Any] = {}
        self._variables = 0
        if dialect.name == "sqlite":
            probe = sqlite3.connect(":memory:")  # the same library the replay's driver uses
            self._variables = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            probe.close()

    def _proc(self, table: str, col: str) -> Any:
        key = (table, col)
        if key not in self._procs:
            c = t.TABLES_BY_NAME[table].c[col]
            self._procs[key] = c.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return self._procs[key]

    def _bind(self, table: str, col: str, v: Any) -> Any:
        p = self._proc(table, col)
        return p(v) if p is not None else v

    def _clock(self, table: str, row: dict[str, Any], *, update: bool) -> dict[str, Any]:
        tbl = t.TABLES_BY_NAME[table]
        out = dict(row)
        for c in tbl.columns:
            d = c.onupdate if update else c.default
            if d is not None and c.name not in out and getattr(d, "is_callable", False):
                out[c.name] = d.arg(None)
        return out

    def transaction(self, entries: list[Verbatim | Item]) -> list[tuple[str, Any, bool]]:
        out: list[tuple[str, Any, bool]] = []
        seed: list[Op] = []
        events: list[dict[str, Any]] = []
        for e in entries:
            if isinstance(e, Verbatim):
                out += e.statements
            else:
                seed += [to_seed_op(op) for op in e.ops]
                events += [t.to_columns("batch_execution_log", ev.row()) for ev in e.events]
        out += self._ops(seed)
        if events:
            out += self._inserts("batchExecutionLog", events)
        return out

    def _ops(self, ops: list[Op]) -> list[tuple[str, Any, bool]]:
        q, m = self.q, self.mark
        out: list[tuple[str, Any, bool]] = []
        merged = merge_ops(ops)
        for (table, col), keys in merged.deletes.items():
            sql = f"DELETE FROM {q(table)} WHERE {q(col)} IN ({', '.join([m] * len(keys))})"
            out.append((sql, tuple(self._bind(table, col, k) for k in keys), False))
        for table, rows in merged.inserts.items():
            out += self._inserts(table, rows)
        singles: dict[tuple[str, str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        for (table, col, pairs), keys in merged.updates.items():
            values = self._clock(table, dict(pairs), update=True)
            names = tuple(values)
            if len(keys) == 1:
                singles.setdefault((table, col, names), []).append(
                    (*(self._bind(table, n, values[n]) for n in names),
                     self._bind(table, col, keys[0])))
                continue
            sets = ", ".join(f"{q(n)} = {m}" for n in names)
            sql = f"UPDATE {q(table)} SET {sets} WHERE {q(col)} IN ({', '.join([m] * len(keys))})"
            params = (*(self._bind(table, n, values[n]) for n in names),
                      *(self._bind(table, col, k) for k in keys))
            out.append((sql, params, False))
        for (table, col, names), params in singles.items():
            if self.dialect.name == "mysql" and len(params) > 1:
                out += self._case_updates(table, col, names, params)
                continue
            sets = ", ".join(f"{q(n)} = {m}" for n in names)
            out.append((f"UPDATE {q(table)} SET {sets} WHERE {q(col)} = {m}", params, True))
        return out

    def _case_updates(self, table: str, col: str, names: tuple[str, ...],
                      params: list[tuple[Any, ...]]) -> list[tuple[str, Any, bool]]:
        """MySQL/MariaDB: rows' different values in one UPDATE ... CASE per 200 rows (an
        executemany of UPDATE is a round trip per row there); a key's last values win."""
        q, m = self.q, self.mark
        last = {p[-1]: p for p in params}
        rows = list(last.values())
        out = []
        for i in range(0, len(rows), 200):
            chunk = rows[i : i + 200]
            sets = ", ".join(f"{q(n)} = CASE {q(col)}{f' WHEN {m} THEN {m}' * len(chunk)} END"
                             for n in names)
            sql = (f"UPDATE {q(table)} SET {sets} WHERE {q(col)} "
                   f"IN ({', '.join([m] * len(chunk))})")
            flat = [v for j in range(len(names)) for r in chunk for v in (r[-1], r[j])]
            out.append((sql, (*flat, *(r[-1] for r in chunk)), False))
        return out

    def _inserts(self, table: str, rows: list[dict[str, Any]]) -> list[tuple[str, Any, bool]]:
        q, m = self.q, self.mark
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for r in rows:
            full = self._clock(table, r, update=False)
            names = tuple(full)
            groups.setdefault(names, []).append(
                tuple(self._bind(table, n, full[n]) for n in names))
        out: list[tuple[str, Any, bool]] = []
        for names, params in groups.items():
            head = f"INSERT INTO {q(table)} ({', '.join(q(n) for n in names)}) VALUES "
            one = f"({', '.join([m] * len(names))})"
            if self.dialect.name != "sqlite":
                out.append((head + one, params, True))  # PyMySQL: multi-row INSERTs
                continue
            # SQLite: multi-row statements, faster than executemany's step per row
            # (cofid.store.raw_sql's module docstring), in as few sizes as the writer's.
            most = raw_sql.rows_fitting(self._variables, len(names), raw_sql.MAX_STATEMENT_ROWS)
            for rows in raw_sql.runs(params, raw_sql.pieces(len(params), most)):
                out.append((head + ", ".join([one] * len(rows)), raw_sql.flat(rows), False))
        return out


def replay(dst: Engine, txns: list[list[Verbatim | Item]]) -> dict[str, Any]:
    """Prepare every transaction's statements, then execute them (timed) on the raw
    driver. Returns wall and CPU seconds of the execution and what it executed."""
    prep = Prepared(dst.dialect)
    prepared = [prep.transaction(tx) for tx in txns]
    sqlite = dst.dialect.name == "sqlite"
    raw = dst.raw_connection()
    statements = 0
    try:
        cur = raw.cursor()
        t0, c0 = time.perf_counter(), time.process_time()
        for stmts in prepared:
            if not stmts:
                continue
            if sqlite:
                cur.execute("BEGIN")  # the pysqlite connection is in autocommit mode here
            for sql, params, many in stmts:
                if many:
                    cur.executemany(sql, params)
                elif params is None:
                    cur.execute(sql)
                else:
                    cur.execute(sql, params)
                statements += 1
            if sqlite:
                cur.execute("COMMIT")
            else:
                raw.commit()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        raw.close()
    return {"wall_s": wall, "cpu_s": cpu, "transactions": sum(1 for p in prepared if p),
            "statements": statements}


# ---- the end-state check ---------------------------------------------------------------

CLOCK_COLUMNS = frozenset(
    c.name for tbl in t.metadata.sorted_tables for c in tbl.columns
    if tbl.name != "batchExecutionLog" and getattr(c.default, "is_callable", False)
)


def _table_rows(engine: Engine, tbl: sa.Table) -> tuple[list[str], list[tuple[Any, ...]]]:
    q = engine.dialect.identifier_preparer.quote
    cols = [c.name for c in tbl.columns]
    order = ", ".join(q(c.name) for c in tbl.primary_key) or "1"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(tbl.name)} ORDER BY {order}")
        return cols, [tuple(r) for r in cur.fetchall()]
    finally:
        raw.close()


def _norm(rs: list[tuple[Any, ...]], clock: set[int], drop: set[int]) -> list[tuple[Any, ...]]:
    return [tuple((v is not None) if i in clock else v for i, v in enumerate(r) if i not in drop)
            for r in rs]


def compare(src: Engine, dst: Engine) -> dict[str, Any]:
    """Whether dst's tables equal src's row for row (see the module doc)."""
    differ: list[str] = []
    ids_differ: list[str] = []
    rows = 0
    for tbl in t.metadata.sorted_tables:
        if tbl.name == "schemaVersion":
            continue
        cols, a = _table_rows(src, tbl)
        _cols, b = _table_rows(dst, tbl)
        rows += len(a)
        clock = {i for i, c in enumerate(cols) if c in CLOCK_COLUMNS}
        if _norm(a, clock, set()) == _norm(b, clock, set()):
            continue
        id_at = {cols.index("id")} if "id" in cols else set()
        if id_at and sorted(_norm(a, clock, id_at), key=repr) == sorted(_norm(b, clock, id_at), key=repr):
            ids_differ.append(tbl.name)
        else:
            differ.append(tbl.name)
    return {"equal": not differ, "tables_differ": differ, "ids_differ": ids_differ,
            "rows_compared": rows,
            "compared": "every table, column and row (ids included, primary-key order); "
                        f"clock columns {sorted(CLOCK_COLUMNS)} for presence only"}


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process (e.g. mariadbd), from /proc/<pid>/stat."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    # fields[0] is the state (field 3); utime, stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
