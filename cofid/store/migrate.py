"""Schema creation and versioned migrations (`cofid db upgrade`, also run at daemon start).

sql/migrations/NNNN_name.sql are the MySQL/MariaDB migrations, applied in order. A released
migration is history and never changes (sites ran it as it was): version 1 is the schema as
the seed implies it, 0002 adds tradeVerdict, 0003 alters version 1's tables; a change to an
existing table is a new file of ALTER TABLE statements, a new table is the CREATE TABLE
`mysql_ddl(version)` prints for the tables whose info["schema_version"] names it.
tests/store/test_upgrade_path.py keeps "every migration applied" equal to what the
definitions create, on MariaDB and on SQLite.

SQLite, the embedded default, gets the tables from the definitions directly: a fresh
database in one create_all, an older one rebuilt table by table where its stored
definition differs (cofid/store/sqlite_upgrade.py). schemaVersion records what was
applied, so running it twice changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from cofid.store import tables as t
from cofid.store.sqlite_upgrade import upgrade_sqlite

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def table_version(table: sa.Table) -> int:
    """The schema version that added `table` (1 unless its info says otherwise)."""
    return int(table.info.get("schema_version", 1))


def mysql_ddl(version: int | None = None) -> str:
    """The MySQL DDL of the current definitions, deterministic, one statement per block:
    of the tables `version` adds (the body of a new migration that creates tables), or of
    every table when None (what all migrations applied amount to)."""
    dialect = mysql.dialect()
    parts = []
    for table in t.metadata.sorted_tables:
        if version is not None and table_version(table) != version:
            continue
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    header = "-- Generated from cofid/store/tables.py by `cofid db ddl`; do not edit by hand.\n"
    return header + "\n\n".join(parts) + "\n"


def migrations() -> list[tuple[int, Path]]:
    found = []
    for p in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION_NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return found


def split_statements(sql: str) -> list[str]:
    """Split a migration file on ';' at line ends (our DDL has no ';' inside strings)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", body) if s.strip().rstrip(";")]


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schemaVersion"):
        return 0
    v = conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar()
    return int(v or 0)


def upgrade(engine: Engine) -> list[int]:
    """Apply what is missing; return the versions applied (empty when up to date)."""
    applied: list[int] = []
    with engine.begin() as conn:
        version = current_version(conn)
        if engine.dialect.name == "sqlite" and version == 0:
            # A fresh database (or one whose first create_all never committed).
            t.metadata.create_all(conn)
            for v in range(1, t.SCHEMA_VERSION + 1):
                conn.execute(sa.insert(t.schema_version).values(version=v))
                applied.append(v)
            return applied
    if engine.dialect.name == "sqlite":
        return upgrade_sqlite(engine, t.SCHEMA_VERSION) if version < t.SCHEMA_VERSION else []
    for v, path in migrations():
        if v <= version:
            continue
        # MySQL commits each DDL statement on its own, so a start killed halfway leaves
        # some tables behind: a statement whose table or index exists is skipped, and the
        # schemaVersion row, written last, says the migration is complete.
        with engine.begin() as conn:
            for stmt in split_statements(path.read_text(encoding="utf-8")):
                if not _already_applied(conn, stmt):
                    conn.exec_driver_sql(stmt)
            conn.execute(sa.insert(t.schema_version).values(version=v))
        applied.append(v)
    return applied


_CREATE_TABLE = re.compile(r"^CREATE TABLE `?(\w+)`?", re.IGNORECASE)
_CREATE_INDEX = re.compile(r"^CREATE (?:UNIQUE )?INDEX `?(\w+)`? ON `?(\w+)`?", re.IGNORECASE)


_ADD_COLUMN = re.compile(r"^ALTER TABLE `?(\w+)`?\s+ADD COLUMN `?(\w+)`?", re.IGNORECASE)


def _already_applied(conn: Connection, stmt: str) -> bool:
    """CREATE TABLE / CREATE INDEX / ALTER TABLE … ADD COLUMN (one column per statement)
    whose object exists. ALTER TABLE … MODIFY restates the whole column: safe to rerun."""
    insp = sa.inspect(conn)
    if m := _ADD_COLUMN.match(stmt):
        table, column = m.groups()
        return insp.has_table(table) and any(c["name"] == column for c in insp.get_columns(table))
    if m := _CREATE_TABLE.match(stmt):
        return insp.has_table(m.group(1))
    if m := _CREATE_INDEX.match(stmt):
        name, table = m.groups()
        return insp.has_table(table) and any(i["name"] == name for i in insp.get_indexes(table))
    return False
