"""The database handle: engine creation, blocking calls off the trio loop, group writes.

SQLAlchemy Core over PyMySQL (MySQL/MariaDB) or the stdlib sqlite3 (embedded default).
Every blocking call runs in a worker thread behind a CapacityLimiter the size of the
connection pool, so no more threads wait on the pool than it has connections. SQLite runs
in WAL mode with a busy timeout; it has one writer at a time, so its limiter is 1.

`inline=True` runs calls on the trio thread instead: the virtual-time benchmark needs it
(MockClock's autojump would otherwise jump while a thread works).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Connection, Engine

from cofid.domain.ops import Op, merge_ops
from cofid.store import raw_sql
from cofid.store import tables as t
from cofid.store.disk_full import is_disk_full
from cofid.store.disk_full import reason as disk_full_reason

log = logging.getLogger(__name__)
T = TypeVar("T")

INSERT_CHUNK = raw_sql.CHUNK  # rows per INSERT statement (cofid.store.raw_sql)


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the configured wait."""


def create_engine(url: str, *, pool_size: int = 5, connect_timeout_s: float = 10.0) -> Engine:
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        memory = not path or path == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            poolclass=sa.pool.StaticPool if memory else sa.pool.QueuePool,
            **({} if memory else {"pool_size": pool_size}),
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN is off).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # IMMEDIATE takes the write lock up front: no deadlock between two writers
            # that both started as readers.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=3600,
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": int(connect_timeout_s), "charset": "utf8mb4"},
    )
    pin_utc(engine)
    return engine


def pin_utc(engine: Engine) -> None:
    """The one clock on MySQL/MariaDB: every connection's session zone is UTC, so NOW(),
    CURRENT_TIMESTAMP and TIMESTAMP columns agree with the UTC values cofid writes
    whatever the server's default-time-zone (an Indian site runs +05:30). cofid writes
    every timestamp itself as well; this covers SQL that asks the server for the time."""
    if engine.dialect.name != "mysql":
        return

    @sa.event.listens_for(engine, "connect")
    def _utc_session(dbapi_conn, _record):  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("SET time_zone = '+00:00'")
        cur.close()


def is_connection_error(exc: BaseException) -> bool:
    """True when the error means the server is gone, not that the statement was wrong."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError):
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args else None
        # 2002/2003: can't connect; 2006: gone away; 2013: lost during query;
        # 1927: connection killed (MariaDB shutdown); 1053: server shutdown in progress.
        return code in (2002, 2003, 2006, 2013, 1927, 1053, 4031)
    return False


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        connect_timeout_s: float = 10.0,
        unavailable_retry_s: float = 300.0,
        inline: bool = False,
        on_unavailable: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, connect_timeout_s=connect_timeout_s)
        self.is_sqlite = url.startswith("sqlite")
        self.inline = inline
        self.limiter = trio.CapacityLimiter(1 if self.is_sqlite else pool_size)
        self.unavailable_retry_s = unavailable_retry_s
        self.on_unavailable = on_unavailable

    def dispose(self) -> None:
        self.engine.dispose()

    # -- running blocking work -----------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, retry_s: float | None = None) -> T:
        """Run fn(*args) off the trio loop; wait and retry while the server is unreachable.

        fn must be safe to run again after a connection error: every caller here either
        reads, or writes in one transaction that a lost connection rolls back (a commit
        whose acknowledgement was lost is the one ambiguous case; callers that care make
        their writes idempotent).
        """
        wait_s = self.unavailable_retry_s if retry_s is None else retry_s
        deadline = time.monotonic() + wait_s
        delay = 0.2
        full_since: float | None = None
        last_said = 0.0
        while True:
            try:
                if self.inline:
                    result = fn(*args)
                else:
                    result = await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
                if full_since is not None:
                    log.warning("database storage has space again after %.0f s; continuing",
                                time.monotonic() - full_since)
                return result
            except Exception as exc:
                if is_disk_full(exc):
                    # No deadline: space comes back when someone frees it, and exiting
                    # would only restart the daemon into the same full disk (see
                    # cofid.store.disk_full). Said at once, then once a minute.
                    now = time.monotonic()
                    if full_since is None or now - last_said >= 60:
                        msg = (f"database storage is full ({disk_full_reason(exc)}); "
                               f"waiting for space, nothing is lost")
                        log.error(msg)
                        if self.on_unavailable:
                            self.on_unavailable(msg)
                        last_said = now
                    full_since = now if full_since is None else full_since
                    await trio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    deadline = time.monotonic() + wait_s  # an outage after it waits anew
                    continue
                if not is_connection_error(exc) or time.monotonic() > deadline:
                    if is_connection_error(exc):
                        raise DatabaseUnavailable(
                            f"database unreachable (waited {wait_s:.0f} s): {getattr(exc, 'orig', exc)}"
                        ) from exc
                    raise
                msg = f"database unreachable ({getattr(exc, 'orig', exc)}); retrying in {delay:.1f} s"
                log.warning(msg)
                if self.on_unavailable:
                    self.on_unavailable(msg)
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        def work() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return await self.run(work)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        return await self.run(work)


# ---- executing ops -------------------------------------------------------------------


def execute_seed_ops(conn: Connection, ops: Iterable[Op], *, fields: bool = False) -> None:
    """Execute the ops of one or many write sets in three merged phases (see domain.ops),
    with the statements of cofid.store.raw_sql (prepared once, values converted as
    SQLAlchemy would). The ops name tables and columns as the seed does, or, with
    `fields`, by their field names (translated once per merged statement, not per row)."""
    merged = merge_ops(ops)
    if fields:
        def table(name: str) -> sa.Table:
            return t.table_of(name)

        def column(tbl: str, name: str) -> str:
            return t.column_of(tbl, name).name
    else:
        def table(name: str) -> sa.Table:
            return t.TABLES_BY_NAME[name]

        def column(tbl: str, name: str) -> str:
            return name
    for (tbl, col), doomed in merged.deletes.items():
        raw_sql.delete_in(conn, table(tbl), column(tbl, col), doomed)
    for tbl, rows in merged.inserts.items():
        raw_sql.insert_rows(conn, table(tbl), rows, partial(column, tbl) if fields else None)
    # Updates that set the same values merge into one WHERE key IN (...); the rest (one
    # row each, e.g. a call's language and duration) go as one executemany per column set.
    singles: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for (tbl, col, pairs), keys in merged.updates.items():
        values = {column(tbl, k): v for k, v in pairs}
        if len(keys) == 1:
            singles.setdefault((tbl, col, tuple(values)), []).append({"_key": keys[0], **values})
            continue
        raw_sql.update_in(conn, table(tbl), column(tbl, col), keys, values)
    for (tbl, col, cols), params in singles.items():
        raw_sql.update_each(conn, table(tbl), column(tbl, col), cols, params)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Multi-row INSERTs, grouped by column set (executemany needs uniform keys)."""
    raw_sql.insert_rows(conn, table, rows)


def read_once(url: str, fn: Callable[[Connection], T]) -> T:
    """Run `fn` on one connection of a short-lived engine (reports and dumps outside a
    running daemon)."""
    engine = sa.create_engine(url)
    pin_utc(engine)
    try:
        with engine.connect() as conn:
            return fn(conn)
    finally:
        engine.dispose()
