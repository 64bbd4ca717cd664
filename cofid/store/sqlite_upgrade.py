"""Bringing an existing SQLite database up to the current table definitions.

SQLite cannot ALTER a column's type, default or constraints, so instead of per-version
steps the upgrade compares each table's stored CREATE TABLE (sqlite_master) with what
cofid/store/tables.py compiles to and rebuilds every table that differs, as SQLite's
documentation prescribes (lang_altertable.html, "other kinds of table schema changes"):
foreign keys off, one transaction, rename the old table away, create the table exactly as
a fresh install does, copy the rows, drop the old table, recreate the indexes, check the
foreign keys. A later migration that adds or changes a column therefore needs no SQLite
code: a new column takes its server default (or NULL) in the copied rows.

The copy passes values through unchanged except into ExactMoney columns: a database made
before that type holds NUMERIC REALs, which are rewritten as the exact text the type
stores (from the float's shortest spelling, as ExactMoney reads such values). A value
that cannot be stored (too large for DECIMAL(20,6)) stops the upgrade and leaves the
database as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from cofid.store import tables as t
from cofid.store.column_types import ExactMoney, Millis, utcnow

_OLD_SUFFIX = "__before_upgrade"
_COPY_CHUNK = 1000


def table_sql(table: sa.Table, dialect: Dialect) -> str:
    """The CREATE TABLE that a fresh install runs, as sqlite_master stores it."""
    return str(CreateTable(table).compile(dialect=dialect)).strip()


def index_sql(index: sa.Index, dialect: Dialect) -> str:
    return str(CreateIndex(index).compile(dialect=dialect)).strip()


def upgrade_sqlite(engine: Engine, target: int) -> list[int]:
    """Rebuild what differs, create what is missing, record the versions up to `target`;
    return those versions (empty when another process got there first)."""
    pooled = engine.raw_connection()
    raw = pooled.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    saved_isolation = raw.isolation_level
    foreign_keys = raw.execute("PRAGMA foreign_keys").fetchone()[0]
    # The pragmas take effect only outside a transaction, hence the raw connection with
    # its own BEGIN/COMMIT. legacy_alter_table: renaming a table away must not rewrite
    # the REFERENCES of the tables that point at it (they must keep naming the new one).
    raw.isolation_level = None
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("PRAGMA legacy_alter_table=ON")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            applied = _upgrade_in_transaction(raw, engine.dialect, target)
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")
        return applied
    finally:
        raw.execute("PRAGMA legacy_alter_table=OFF")
        raw.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        raw.isolation_level = saved_isolation
        pooled.close()


def _upgrade_in_transaction(raw: sqlite3.Connection, dialect: Dialect, target: int) -> list[int]:
    version = raw.execute('SELECT MAX(version) FROM "schemaVersion"').fetchone()[0] or 0
    if version >= target:
        return []
    stored = dict(raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    rebuilt = []
    for table in t.metadata.sorted_tables:
        if table.name not in stored:
            raw.execute(table_sql(table, dialect))
        elif stored[table.name].strip() != table_sql(table, dialect):
            _rebuild(raw, dialect, table)
            rebuilt.append(table.name)
        _sync_indexes(raw, dialect, table)
    for name in rebuilt:
        bad = raw.execute(f'PRAGMA foreign_key_check("{name}")').fetchall()
        if bad:
            raise RuntimeError(f"upgrade of {name}: {len(bad)} rows break a foreign key")
    stamp = Millis.dialect_impl(dialect).bind_processor(dialect)
    applied_at = stamp(utcnow()) if stamp else utcnow()
    applied = list(range(version + 1, target + 1))
    raw.executemany(
        'INSERT INTO "schemaVersion" (version, "appliedAt") VALUES (?, ?)',
        [(v, applied_at) for v in applied],
    )
    return applied


def _rebuild(raw: sqlite3.Connection, dialect: Dialect, table: sa.Table) -> None:
    old = table.name + _OLD_SUFFIX
    raw.execute(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
    raw.execute(table_sql(table, dialect))
    old_columns = {row[1] for row in raw.execute(f'PRAGMA table_info("{old}")')}
    columns = [c for c in table.columns if c.name in old_columns]
    names = ", ".join(f'"{c.name}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    insert = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
    for chunk in _chunks(raw.execute(f'SELECT {names} FROM "{old}" ORDER BY rowid')):
        raw.executemany(insert, [_convert(table, columns, row, dialect) for row in chunk])
    raw.execute(f'DROP TABLE "{old}"')  # its indexes go with it; _sync_indexes adds them


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[Any]]:
    while rows := cursor.fetchmany(_COPY_CHUNK):
        yield rows


def _convert(table: sa.Table, columns: list[sa.Column], row: Any, dialect: Dialect) -> tuple:
    out = list(row)
    for i, column in enumerate(columns):
        if isinstance(column.type, ExactMoney) and out[i] is not None:
            try:
                out[i] = column.type.process_bind_param(out[i], dialect)
            except (ValueError, ArithmeticError) as e:
                raise ValueError(f"{table.name}.{column.name}: {e}") from None
    return tuple(out)


def _sync_indexes(raw: sqlite3.Connection, dialect: Dialect, table: sa.Table) -> None:
    """The named indexes of `table` exactly as defined: stale ones dropped, missing ones
    created (the unique constraints' sqlite_autoindex_* come with CREATE TABLE)."""
    wanted = {i.name: index_sql(i, dialect) for i in table.indexes}
    have = dict(
        raw.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            (table.name,),
        )
    )
    for name, sql in have.items():
        if wanted.get(name) != sql.strip():
            raw.execute(f'DROP INDEX "{name}"')
    for name, sql in wanted.items():
        if have.get(name, "").strip() != sql:
            raw.execute(sql)
