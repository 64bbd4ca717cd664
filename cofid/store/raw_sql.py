"""The group writer's statements, prepared once and executed on the DB-API cursor.

The writes of a group commit (cofid.store.db.execute_seed_ops, insert_rows and the event
log's INSERT in cofid.store.writes) are a handful of statement shapes repeated many times:
an INSERT of a table with a column set, an UPDATE setting some columns of rows chosen by a
key, a DELETE by key. Going through SQLAlchemy's compiler and per-row parameter processing
for each of them cost more than the database's own work, so this module spells each shape
once per dialect (quoted names, the driver's placeholder), keeps it, and hands the cursor
the values already converted by the columns' own bind processors — the very conversions
SQLAlchemy applies (JSON text, SQLite's datetime text, cofid's exact money text) — and the
Python-side column defaults SQLAlchemy would add (the utcnow() of createdAt / updatedAt,
onupdate included). What lands in the tables is what SQLAlchemy's statements wrote.

The statements run through `Connection.exec_driver_sql`, inside the caller's transaction.

On SQLite many rows go as one multi-row statement (INSERT ... VALUES (...), (...); UPDATE
... CASE), never as executemany: sqlite3 lets go of the GIL around every row's step and
takes it back after, and with the engine's thread running beside the writer each of those
hand-offs cost more than the row (a 100,000-row insert took 1.9 s of the writer's CPU
beside a busy thread instead of 0.2 s; as multi-row statements 0.19 s). A statement holds
a power of two of rows, so each table has a handful of statement texts, each prepared once
and kept by sqlite3's statement cache. PyMySQL's executemany of an INSERT already sends
multi-row statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

# Rows per statement (and keys per IN list): large enough to amortize round trips, small
# enough for SQLite's 32,766 variables and MySQL's max_allowed_packet with long text.
CHUNK = 1000
RETURNING_CHUNK = 500  # rows per INSERT ... RETURNING (one parameter per column each)
MAX_STATEMENT_ROWS = 512  # rows per multi-row statement on SQLite (a power of two)

T = TypeVar("T")


class _Shapes:
    """One dialect's statement texts and per-column conversions, made on first use."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.quote = dialect.identifier_preparer.quote
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._procs: dict[tuple[str, str], Any] = {}
        self._sql: dict[tuple[Any, ...], str] = {}
        self._defaults: dict[tuple[str, bool], list[tuple[str, Any]]] = {}
        # SQLite: many rows per statement (module docstring); its bound-parameter limit.
        self.multi_row = dialect.name == "sqlite"
        self._variables: int | None = None

    def sizes(self, conn: Connection, n: int, per_row: int, *, chunk: int,
              most: int = MAX_STATEMENT_ROWS) -> Iterator[int]:
        """Row counts of the statements that write `n` rows of `per_row` parameters: on
        SQLite powers of two (`pieces`) of at most `most` rows within the connection's
        parameter limit; elsewhere `chunk` rows at a time."""
        if not self.multi_row:
            return (min(chunk, n - i) for i in range(0, n, chunk))
        if self._variables is None:
            dbapi = conn.connection.dbapi_connection
            getlimit = getattr(dbapi, "getlimit", None)
            # 999: SQLite's own default before 3.32, for a driver that cannot say.
            self._variables = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if getlimit else 999
        return pieces(n, rows_fitting(self._variables, per_row, most))

    def proc(self, col: sa.Column[Any]) -> Any:
        key = (col.table.name, col.name)
        try:
            return self._procs[key]
        except KeyError:
            p = self._procs[key] = col.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            return p

    def defaults(self, table: sa.Table, update: bool) -> list[tuple[str, Any]]:
        """(column, callable) of the Python-side defaults (or onupdates) of `table`."""
        key = (table.name, update)
        if key not in self._defaults:
            out = []
            for c in table.columns:
                d = c.onupdate if update else c.default
                if d is not None and getattr(d, "is_callable", False):
                    out.append((c.name, getattr(d, "arg")))  # noqa: B009 (typed as DefaultGenerator)
                elif d is not None and getattr(d, "is_scalar", False):
                    out.append((c.name, (lambda v: lambda _ctx: v)(getattr(d, "arg"))))  # noqa: B009
            self._defaults[key] = out
        return self._defaults[key]

    def insert(self, table: sa.Table, names: tuple[str, ...], rows: int = 1,
               returning: str | None = None) -> str:
        key = ("i", table.name, names, rows, returning)
        sql = self._sql.get(key)
        if sql is None:
            q = self.quote
            one = f"({', '.join([self.mark] * len(names))})"
            sql = (f"INSERT INTO {q(table.name)} ({', '.join(q(n) for n in names)}) "
                   f"VALUES {', '.join([one] * rows)}")
            if returning:
                sql += f" RETURNING {q(returning)}"
            self._sql[key] = sql
        return sql

    def update_in(self, table: sa.Table, names: tuple[str, ...], key: str, n: int) -> str:
        k = ("u", table.name, names, key, n)
        sql = self._sql.get(k)
        if sql is None:
            q = self.quote
            sets = ", ".join(f"{q(c)} = {self.mark}" for c in names)
            where = f"{q(key)} IN ({', '.join([self.mark] * n)})" if n > 1 else \
                f"{q(key)} = {self.mark}"
            sql = self._sql[k] = f"UPDATE {q(table.name)} SET {sets} WHERE {where}"
        return sql

    def update_case(self, table: sa.Table, names: tuple[str, ...], key: str, varying: int,
                    n: int) -> str:
        k = ("c", table.name, names, key, varying, n)
        sql = self._sql.get(k)
        if sql is None:
            q, m = self.quote, self.mark
            sets = [f"{q(c)} = CASE {q(key)}{f' WHEN {m} THEN {m}' * n} END"
                    for c in names[:varying]]
            sets += [f"{q(c)} = {m}" for c in names[varying:]]
            sql = self._sql[k] = (f"UPDATE {q(table.name)} SET {', '.join(sets)} "
                                  f"WHERE {q(key)} IN ({', '.join([m] * n)})")
        return sql

    def delete_in(self, table: sa.Table, key: str, n: int) -> str:
        k = ("d", table.name, key, n)
        sql = self._sql.get(k)
        if sql is None:
            q = self.quote
            sql = self._sql[k] = (f"DELETE FROM {q(table.name)} WHERE {q(key)} "
                                  f"IN ({', '.join([self.mark] * n)})")
        return sql


_SHAPES: dict[int, _Shapes] = {}


def shapes(dialect: Dialect) -> _Shapes:
    s = _SHAPES.get(id(dialect))
    if s is None or s.dialect is not dialect:
        s = _SHAPES[id(dialect)] = _Shapes(dialect)
    return s


def _converters(sh: _Shapes, table: sa.Table, names: Sequence[str]) -> list[Any]:
    return [sh.proc(table.c[n]) for n in names]


def _convert(row: Sequence[Any], procs: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(v if p is None else p(v) for v, p in zip(row, procs, strict=True))


def _values(sh: _Shapes, table: sa.Table, given: tuple[str, ...], base: list[tuple[Any, ...]]
            ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The column names and driver-ready parameter tuples of rows whose values for the
    columns `given` are `base`, with the Python-side defaults of the columns they leave
    out (evaluated and converted once per call: one transaction, one clock reading)."""
    names, params = _params_of(sh, table, given)
    return names, params(base)


def _params_of(sh: _Shapes, table: sa.Table, given: tuple[str, ...]
               ) -> tuple[tuple[str, ...], Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]]]:
    """The column names and a function making driver-ready parameter tuples of value
    tuples for `given`, the Python-side defaults of the other columns evaluated now, once
    for every call of it."""
    defaults = [(c, fn(None)) for c, fn in sh.defaults(table, False) if c not in given]
    names = given + tuple(c for c, _v in defaults)
    tail = _convert([v for _c, v in defaults], _converters(sh, table, names[len(given):]))
    procs = [(i, p) for i, p in enumerate(_converters(sh, table, given)) if p is not None]

    def params(base: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if not procs:
            return [b + tail for b in base] if tail else base
        out = []
        for b in base:
            vals = list(b)
            for i, p in procs:
                vals[i] = p(vals[i])
            out.append((*vals, *tail))
        return out

    return names, params


def rows_fitting(variables: int, per_row: int, most: int) -> int:
    """The most rows of `per_row` parameters one statement may hold under a limit of
    `variables` parameters: a power of two, at most `most` (rounded down to one)."""
    fits = max(1, min(most, variables // max(1, per_row)))
    return 1 << (fits.bit_length() - 1)


def pieces(n: int, most: int) -> Iterator[int]:
    """`n` rows as statement sizes: `most` (a power of two) while that many are left,
    then the powers of two of the rest, largest first (13 → 8, 4, 1), so a table's
    statements come in a few sizes whatever the counts."""
    while n >= most:
        yield most
        n -= most
    bit = most
    while n:
        bit >>= 1
        if n & bit:
            yield bit
            n -= bit


def runs(items: Sequence[T], sizes: Iterable[int]) -> Iterator[Sequence[T]]:
    """Consecutive slices of `items`, one per size (the sizes add up to len(items))."""
    at = 0
    for k in sizes:
        yield items[at : at + k]
        at += k


def flat(rows: Iterable[Sequence[Any]]) -> tuple[Any, ...]:
    """A multi-row statement's parameters: the rows' values one after another."""
    return tuple(chain.from_iterable(rows))


def _insert_all(conn: Connection, sh: _Shapes, table: sa.Table, names: tuple[str, ...],
                params: Sequence[tuple[Any, ...]]) -> None:
    """INSERT driver-ready rows: multi-row statements on SQLite, else executemany in
    CHUNK batches (PyMySQL makes those multi-row INSERTs itself)."""
    batches = runs(params, sh.sizes(conn, len(params), len(names), chunk=CHUNK))
    if not sh.multi_row:
        for rows in batches:
            conn.exec_driver_sql(sh.insert(table, names), list(rows))
        return
    for rows in batches:
        conn.exec_driver_sql(sh.insert(table, names, len(rows)), flat(rows))


def insert_stream(conn: Connection, table: sa.Table, names: tuple[str, ...],
                  rows: Iterable[tuple[Any, ...]]) -> None:
    """insert_values for value tuples an iterable yields, CHUNK at a time: the same
    statements, one clock reading for the defaults of all, and never every row's
    parameters in memory at once (a 100,000-file distribution)."""
    sh = shapes(conn.dialect)
    cols, params = _params_of(sh, table, names)
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        _insert_all(conn, sh, table, cols, params(chunk))


def _tuples(rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    if len(keys) > 1:
        get = itemgetter(*keys)
        return [get(r) for r in rows]
    return [tuple(r[k] for k in keys) for r in rows]  # itemgetter of one gives no tuple


def insert_values(conn: Connection, table: sa.Table, names: tuple[str, ...],
                  base: list[tuple[Any, ...]]) -> None:
    """INSERT rows given as value tuples for the columns `names` (multi-row statements,
    module docstring)."""
    if not base:
        return
    sh = shapes(conn.dialect)
    names, params = _values(sh, table, names, base)
    _insert_all(conn, sh, table, names, params)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
                name_of: Callable[[str], str] | None = None) -> None:
    """INSERT rows in batches, grouped by column set. Their keys are `table`'s column
    names, or, with `name_of` (key -> column name, asked once per column set), keys it
    maps."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r), []).append(r)
    for keys, group in groups.items():
        cols = keys if name_of is None else tuple(name_of(k) for k in keys)
        insert_values(conn, table, cols, _tuples(group, keys))


def insert_returning_ids(conn: Connection, table: sa.Table, names: tuple[str, ...],
                         base: list[tuple[Any, ...]], id_column: str = "id") -> list[int]:
    """INSERT rows given as value tuples for the columns `names` and return the ids the
    database gave them, in row order: multi-row INSERT ... RETURNING where the dialect
    has it (SQLite 3.35+, MariaDB 10.5+), one INSERT per row otherwise (MySQL: the id of
    each from lastrowid). The ids of one statement's rows rise in row order (SQLite's
    rowid, InnoDB's AUTO_INCREMENT), so the returned ids are sorted before they are
    matched to the rows: RETURNING's own row order is not promised."""
    if not base:
        return []
    sh = shapes(conn.dialect)
    names, params = _values(sh, table, names, base)
    ids: list[int] = []
    if conn.dialect.insert_returning:
        for chunk in runs(params, sh.sizes(conn, len(params), len(names), chunk=RETURNING_CHUNK)):
            sql = sh.insert(table, names, len(chunk), returning=id_column)
            got = sorted(int(r[0]) for r in conn.exec_driver_sql(sql, flat(chunk)))
            if len(got) != len(chunk):
                raise RuntimeError(f"INSERT ... RETURNING gave {len(got)} ids for {len(chunk)} rows")
            ids += got
        return ids
    sql = sh.insert(table, names)
    for p in params:
        result = conn.exec_driver_sql(sql, p)
        ids.append(int(result.lastrowid))
    return ids


def update_in(conn: Connection, table: sa.Table, key: str, keys: Sequence[Any],
              values: dict[str, Any]) -> None:
    """UPDATE table SET values WHERE key IN (keys), in chunks."""
    sh = shapes(conn.dialect)
    full = {**values, **{c: fn(None) for c, fn in sh.defaults(table, True) if c not in values}}
    names = tuple(full)
    head = _convert([full[n] for n in names], _converters(sh, table, names))
    kp = sh.proc(table.c[key])
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        conn.exec_driver_sql(sh.update_in(table, names, key, len(chunk)),
                             (*head, *(_convert(chunk, [kp] * len(chunk)))))


def update_each(conn: Connection, table: sa.Table, key: str, cols: tuple[str, ...],
                params: Sequence[dict[str, Any]]) -> None:
    """One UPDATE per row (values differ), as executemany: params hold `cols` and "_key"."""
    sh = shapes(conn.dialect)
    extra = [(c, fn(None)) for c, fn in sh.defaults(table, True) if c not in cols]
    names = (*cols, *(c for c, _v in extra))
    tail = [v for _c, v in extra]
    procs = [*_converters(sh, table, names), sh.proc(table.c[key])]
    rows = []
    for p in params:
        rows.append(_convert([*(p[c] for c in cols), *tail, p["_key"]], procs))
    if len(rows) > 1:
        _update_case(conn, sh, table, key, names, len(cols), rows)
        return
    conn.exec_driver_sql(sh.update_in(table, names, key, 1), rows[0])


CASE_CHUNK = 200  # rows per multi-row UPDATE ... CASE


def _update_case(conn: Connection, sh: _Shapes, table: sa.Table, key: str,
                 names: tuple[str, ...], varying: int, rows: list[tuple[Any, ...]]) -> None:
    """Many rows' UPDATEs with different values in one statement per 200 rows (a round
    trip each on MySQL/MariaDB, where executemany of an UPDATE is one per row; a step
    each on SQLite, see the module docstring), in power-of-two sizes on SQLite:
    SET col = CASE key WHEN k1 THEN v1 ... END for the first `varying` columns, the rest
    (the onupdate clock) one value for all, WHERE key IN (...). A key given twice keeps
    its last values, as the one-by-one UPDATEs would."""
    last: dict[Any, tuple[Any, ...]] = {}
    for r in rows:
        last[r[-1]] = r
    unique = list(last.values())
    sizes = sh.sizes(conn, len(unique), 2 * varying + 1, chunk=CASE_CHUNK, most=CASE_CHUNK)
    for chunk in runs(unique, sizes):
        sql = sh.update_case(table, names, key, varying, len(chunk))
        params: list[Any] = []
        for j in range(varying):
            for r in chunk:
                params += (r[-1], r[j])
        params += chunk[0][varying:-1]
        params += [r[-1] for r in chunk]
        conn.exec_driver_sql(sql, tuple(params))


def delete_in(conn: Connection, table: sa.Table, key: str, keys: Sequence[Any]) -> None:
    sh = shapes(conn.dialect)
    kp = sh.proc(table.c[key])
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        conn.exec_driver_sql(sh.delete_in(table, key, len(chunk)),
                             _convert(chunk, [kp] * len(chunk)))
