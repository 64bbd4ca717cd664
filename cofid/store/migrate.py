"""Schema creation and versioned migrations (`cofid db upgrade`, also run at daemon start).

sql/migrations/NNNN_name.sql are the MySQL/MariaDB migrations, applied in order. Version 1
is the whole schema as cofid.store.tables defines it (a test keeps the file equal to what
`mysql_ddl()` generates). SQLite, the embedded default, gets the same tables from the
definitions directly. schemaVersion records what was applied, so running it twice changes
nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateIndex, CreateTable

from cofid.store import tables as t

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def mysql_ddl() -> str:
    """The MySQL DDL of the current definitions, deterministic, one statement per block."""
    dialect = mysql.dialect()
    parts = []
    for table in t.metadata.sorted_tables:
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
        if engine.dialect.name == "sqlite":
            if version < t.SCHEMA_VERSION:
                t.metadata.create_all(conn)
                for v in range(version + 1, t.SCHEMA_VERSION + 1):
                    conn.execute(sa.insert(t.schema_version).values(version=v))
                    applied.append(v)
            return applied
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


def _already_applied(conn: Connection, stmt: str) -> bool:
    insp = sa.inspect(conn)
    if m := _CREATE_TABLE.match(stmt):
        return insp.has_table(m.group(1))
    if m := _CREATE_INDEX.match(stmt):
        name, table = m.groups()
        return insp.has_table(table) and any(i["name"] == name for i in insp.get_indexes(table))
    return False
