"""A site's database made by the released version 1 ends, after `upgrade`, with exactly the
schema a fresh install gets, its rows kept.

The version 1 schemas are fixtures (tests/store/fixtures/): v1_mysql.sql is the released
sql/migrations/0001_initial.sql, v1_sqlite.sql the sqlite_master text that release's
create_all wrote. On MariaDB "fresh" is checked twice: every migration applied to an empty
database, and metadata.create_all of cofid/store/tables.py, so a migration that forgets a
change to the definitions fails here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cofid.store import tables as t
from cofid.store.column_types import utcnow
from cofid.store.db import create_engine
from cofid.store.migrate import MIGRATIONS_DIR, split_statements, upgrade

FIXTURES = Path(__file__).parent / "fixtures"
V1_TABLES = [x.name for x in t.metadata.sorted_tables if x.info.get("schema_version", 1) == 1]
T0 = datetime(2026, 11, 30, 9, 15, 0, 123000)

# Money as version 1 stored it, and the exact value an upgraded database must hold.
MONEY = [
    # (quantity, price) written, (quantity, price) read back after the upgrade
    ((1500, 2.5), (Decimal("1500.000000"), Decimal("2.500000"))),
    ((0.1, 99999.123456), (Decimal("0.100000"), Decimal("99999.123456"))),
    ((7, 1234567.5), (Decimal("7.000000"), Decimal("1234567.500000"))),
]


@pytest.fixture(params=["sqlite", "mariadb", "mariadb_zoned"])
def server(request, tmp_path):
    """A function that makes an empty database and returns its URL."""
    if request.param == "sqlite":
        counter = iter(range(100))
        return lambda: f"sqlite:///{tmp_path / f'db{next(counter)}.sqlite'}"
    return request.getfixturevalue(request.param).create_database


def _create_v1(url: str) -> None:
    """What the released `cofid db upgrade` left: the version 1 tables and its row."""
    fixture = "v1_sqlite.sql" if url.startswith("sqlite") else "v1_mysql.sql"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for stmt in split_statements((FIXTURES / fixture).read_text(encoding="utf-8")):
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql("INSERT INTO schemaVersion (version) VALUES (1)")
    engine.dispose()


def _fill_v1(url: str) -> None:
    """Rows as version 1 wrote them: explicit event ids (version 1 assigned them), server
    default timestamps on some rows, money through NUMERIC(20, 6)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO batchStatus (id, batchDate, batchNumber, status, createdAt)"
            f" VALUES (1, '2026-11-30', 1, 'Completed', {_lit(T0)})"
        )
        run("INSERT INTO batchStatus (id, batchDate, batchNumber) VALUES (2, '2026-12-01', 1)")
        run("INSERT INTO `call` (id, batchId, audioName, status) VALUES (1, 1, 'a.wav', 'Done')")
        for i, ((qty, price), _) in enumerate(MONEY, start=1):
            run(
                "INSERT INTO tradeMetadata (batchId, tradeId, clientCode, symbol, side,"
                f" quantity, price, tradeTime) VALUES (1, 'T{i}', 'C1', 'INFY', 'BUY',"
                f" {qty!r}, {price!r}, '2026-11-30 09:00:0{i}')"
            )
            run(
                "INSERT INTO callConversation (callId, tradeIndex, quantity, price, createdAt)"
                f" VALUES (1, {i}, {qty!r}, {price!r}, {_lit(T0)})"
            )
        run(
            "INSERT INTO callConversation (callId, tradeIndex, quantity, price)"
            " VALUES (1, 9, NULL, NULL)"
        )
        for event_id, status in ((1, "processing"), (2, "success"), (7, "failed")):
            run(
                "INSERT INTO batchExecutionLog (id, batchId, timestamp, stage, eventType,"
                f" status, metadata) VALUES ({event_id}, 1, {_lit(T0)}, 'stt',"
                f" 'stage_complete', '{status}', '{{\"n\": {event_id}}}')"
            )
    engine.dispose()


def _lit(value: datetime) -> str:
    return f"'{value.isoformat(sep=' ')}'"


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the version 1 tables, money read as the exact type reads it."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = {}
        for name in V1_TABLES:
            table = t.metadata.tables[name]
            pk = list(table.primary_key.columns)
            rows[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*pk))]
    engine.dispose()
    return rows


def _schema(url: str) -> dict[str, Any]:
    """Everything a schema is, as the server reports it."""
    engine = sa.create_engine(url)
    insp = sa.inspect(engine)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The stored DDL: types, defaults, constraints and indexes, character for character.
            out["sqlite_master"] = sorted(
                conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master").all()
            )
        else:
            out["show_create"] = {
                name: _show_create(conn.exec_driver_sql(f"SHOW CREATE TABLE `{name}`").one()[1])
                for name in insp.get_table_names()
            }
    for name in sorted(insp.get_table_names()):
        out[name] = {
            "columns": [{k: str(v) for k, v in c.items()} for c in insp.get_columns(name)],
            "pk": insp.get_pk_constraint(name),
            "fks": sorted(insp.get_foreign_keys(name), key=repr),
            "indexes": sorted(insp.get_indexes(name), key=repr),
            "uniques": sorted(insp.get_unique_constraints(name), key=repr),
            "checks": sorted(insp.get_check_constraints(name), key=repr),
        }
    engine.dispose()
    return out


def _show_create(text: str) -> tuple[list[str], list[str]]:
    """SHOW CREATE TABLE but for the next AUTO_INCREMENT value and the order of the plain
    indexes (create_all creates them in no fixed order), as (the rest, the KEY lines)."""
    lines = [line.rstrip(",") for line in re.sub(r" AUTO_INCREMENT=\d+", "", text).splitlines()]
    keys = sorted(line for line in lines if line.startswith("  KEY "))
    return [line for line in lines if not line.startswith("  KEY ")], keys


def test_version_1_is_history():
    """The released migration never changes: sites ran it as it is."""
    released = (FIXTURES / "v1_mysql.sql").read_text(encoding="utf-8")
    assert (MIGRATIONS_DIR / "0001_initial.sql").read_text(encoding="utf-8") == released


def test_a_version_1_database_upgrades_to_the_fresh_schema(server):
    old_url = server()
    _create_v1(old_url)
    _fill_v1(old_url)
    # Read through the definitions: on SQLite ExactMoney reads version 1's REALs as well.
    before = _rows(old_url)

    engine = create_engine(old_url, pool_size=1)
    assert upgrade(engine) == list(range(2, t.SCHEMA_VERSION + 1))
    assert upgrade(engine) == []
    engine.dispose()

    fresh_url = server()
    fresh = create_engine(fresh_url, pool_size=1)
    assert upgrade(fresh) == list(range(1, t.SCHEMA_VERSION + 1))
    fresh.dispose()
    assert _schema(old_url) == _schema(fresh_url)
    if not old_url.startswith("sqlite"):
        defined_url = server()
        defined = sa.create_engine(defined_url)
        t.metadata.create_all(defined)
        defined.dispose()
        assert _schema(old_url) == _schema(defined_url)

    after = _rows(old_url)
    # Every row as it was; schemaVersion gains the versions applied.
    assert after["schemaVersion"][:1] == before.pop("schemaVersion")
    assert {k: v for k, v in after.items() if k != "schemaVersion"} == before
    _assert_v1_rows(after)
    if old_url.startswith("sqlite"):
        _assert_money_stored_exactly(old_url)
    _assert_new_rows_work(old_url)


def _assert_money_stored_exactly(url: str) -> None:
    """Version 1's REALs are now the text ExactMoney stores, not read-time conversions."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table in ("tradeMetadata", "callConversation"):
            stored = conn.exec_driver_sql(
                f'SELECT quantity, price FROM "{table}" WHERE quantity IS NOT NULL ORDER BY id'
            ).all()
            assert stored == [(f"{q}", f"{p}") for _, (q, p) in MONEY], table
    engine.dispose()


def _assert_v1_rows(rows: dict[str, list[tuple[Any, ...]]]) -> None:
    expected_money = [m for _, m in MONEY]
    tm = t.trade_metadata.c
    cols = list(t.trade_metadata.c.keys())
    got = [
        (r[cols.index(tm.quantity.name)], r[cols.index(tm.price.name)])
        for r in rows["tradeMetadata"]
    ]
    assert got == expected_money
    assert all(type(v) is Decimal for pair in got for v in pair)
    cols = list(t.call_conversation.c.keys())
    conv = [
        (
            r[cols.index("tradeIndex")],
            r[cols.index("quantity")],
            r[cols.index("price")],
            r[cols.index("createdAt")],
        )
        for r in rows["callConversation"]
    ]
    assert conv[:3] == [(i, q, p, T0) for i, (q, p) in enumerate(expected_money, start=1)]
    assert conv[3][:3] == (9, None, None)
    cols = list(t.batch_execution_log.c.keys())
    assert [
        (r[0], r[cols.index("status")], r[cols.index("timestamp")], r[cols.index("metadata")])
        for r in rows["batchExecutionLog"]
    ] == [
        (1, "processing", T0, {"n": 1}),
        (2, "success", T0, {"n": 2}),
        (7, "failed", T0, {"n": 7}),
    ]
    cols = list(t.batch_status.c.keys())
    assert [(r[0], r[cols.index("status")]) for r in rows["batchStatus"]] == [
        (1, "Completed"),
        (2, "Pending"),
    ]
    assert rows["batchStatus"][0][cols.index("createdAt")] == T0
    assert [r[0] for r in rows["schemaVersion"]] == list(range(1, t.SCHEMA_VERSION + 1))


def _assert_new_rows_work(url: str) -> None:
    """Another writer's INSERT without an id or a timestamp, and cofid's own, both with
    the status version 1 refused; the server default is UTC whatever the session zone (a
    plain engine: no session pinned)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO batchExecutionLog (batchId, stage, eventType, status)"
            " VALUES (1, 'llm2', 'stage_complete', 'partial')"
        )
        conn.execute(
            sa.insert(t.batch_execution_log).values(
                batchId=2, stage="stt", eventType="stage_complete", status="partial"
            )
        )
        conn.execute(
            sa.insert(t.trade_metadata).values(
                batchId=2,
                tradeId="T9",
                clientCode="C2",
                symbol="TCS",
                side="SELL",
                quantity=Decimal("99999999999999.999999"),
                price=Decimal("0.000001"),
                tradeTime=T0,
            )
        )
    with engine.connect() as conn:
        bel = t.batch_execution_log
        new = conn.execute(
            sa.select(bel.c.id, bel.c.batchId, bel.c.status, bel.c.timestamp)
            .where(bel.c.id > 7)
            .order_by(bel.c.id)
        ).all()
        money = conn.execute(
            sa.select(t.trade_metadata.c.quantity, t.trade_metadata.c.price).where(
                t.trade_metadata.c.tradeId == "T9"
            )
        ).one()
    engine.dispose()
    assert [(r.id, r.batchId, r.status) for r in new] == [(8, 1, "partial"), (9, 2, "partial")]
    assert abs(new[0].timestamp - utcnow()) < timedelta(hours=1)
    assert tuple(money) == (Decimal("99999999999999.999999"), Decimal("0.000001"))
