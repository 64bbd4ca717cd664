"""A site's database made by an older release (version 1, 2 or 3) ends, after `upgrade`,
with exactly the schema a fresh install gets, its rows kept, and the tables and columns
version 4 adds (recordingDigest, lidStatus.detectedLanguage) there and working.

The older schemas are fixtures (tests/store/fixtures/): v1_mysql.sql is the released
sql/migrations/0001_initial.sql, v1_sqlite.sql and v3_sqlite.sql the sqlite_master text
those releases' create_all wrote. On MariaDB version N is version 1 with the released
migrations up to N applied. No release made a SQLite database at version 2 (versions 2
and 3 shipped together); it is version 1 with 0002's table as v3_sqlite.sql spells it.
On MariaDB "fresh" is checked twice: every migration applied to an empty database, and
metadata.create_all of cofid/store/tables.py, so a migration that forgets a change to the
definitions fails here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cofid.domain.evidence_bundle import FileDigest
from cofid.store import batches as batch_rows
from cofid.store import tables as t
from cofid.store.column_types import utcnow
from cofid.store.db import create_engine
from cofid.store.migrate import MIGRATIONS_DIR, migrations, split_statements, upgrade

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


def _statements(fixture: str) -> list[str]:
    return split_statements((FIXTURES / fixture).read_text(encoding="utf-8"))


def _sqlite_statements(version: int) -> list[str]:
    """The sqlite_master text of a database at `version` (see the module docstring)."""
    if version == 1:
        return _statements("v1_sqlite.sql")
    if version == 3:
        return _statements("v3_sqlite.sql")
    assert version == 2
    verdict = [s for s in _statements("v3_sqlite.sql") if '"tradeVerdict"' in s]
    assert len(verdict) == 2  # the table and its index
    return _statements("v1_sqlite.sql") + verdict


def _create_at(url: str, version: int) -> None:
    """What the released `cofid db upgrade` of `version` left: its tables and rows."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if url.startswith("sqlite"):
            statements = _sqlite_statements(version)
        else:
            statements = _statements("v1_mysql.sql")
            for v, path in migrations():
                if 1 < v <= version:
                    statements += split_statements(path.read_text(encoding="utf-8"))
        for stmt in statements:
            conn.exec_driver_sql(stmt)
        for v in range(1, version + 1):
            conn.exec_driver_sql(f"INSERT INTO schemaVersion (version) VALUES ({v})")
    engine.dispose()


def _fill_v1(url: str, version: int = 1) -> None:
    """Rows as version 1 wrote them: explicit event ids (version 1 assigned them), server
    default timestamps on some rows, money through NUMERIC(20, 6) — or, in a SQLite
    database of version 3, as the exact text that version's ExactMoney writes."""
    exact_text = url.startswith("sqlite") and version >= 3
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO batchStatus (id, batchDate, batchNumber, status, createdAt)"
            f" VALUES (1, '2026-11-30', 1, 'Completed', {_lit(T0)})"
        )
        run("INSERT INTO batchStatus (id, batchDate, batchNumber) VALUES (2, '2026-12-01', 1)")
        run("INSERT INTO `call` (id, batchId, audioName, status) VALUES (1, 1, 'a.wav', 'Done')")
        for i, ((qty, price), (exact_qty, exact_price)) in enumerate(MONEY, start=1):
            if exact_text:
                qty, price = f"'{exact_qty}'", f"'{exact_price}'"
            run(
                "INSERT INTO tradeMetadata (batchId, tradeId, clientCode, symbol, side,"
                f" quantity, price, tradeTime) VALUES (1, 'T{i}', 'C1', 'INFY', 'BUY',"
                f" {qty}, {price}, '2026-11-30 09:00:0{i}')"
            )
            run(
                "INSERT INTO callConversation (callId, tradeIndex, quantity, price, createdAt)"
                f" VALUES (1, {i}, {qty}, {price}, {_lit(T0)})"
            )
        run(
            "INSERT INTO callConversation (callId, tradeIndex, quantity, price)"
            " VALUES (1, 9, NULL, NULL)"
        )
        run(
            "INSERT INTO lidStatus (id, batchId, callId, audioName, language, confidence,"
            f" audioDuration, createdAt) VALUES (1, 1, 1, 'a.wav', 'other', 0.8, 61.5, {_lit(T0)})"
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


def _rows(url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the version 1 tables, money read as the exact type reads it: of the
    columns `columns` names per table, else of every defined column the database has."""
    engine = sa.create_engine(url)
    insp = sa.inspect(engine)
    with engine.connect() as conn:
        rows = {}
        for name in V1_TABLES:
            table = t.metadata.tables[name]
            have = {c["name"] for c in insp.get_columns(name)}
            wanted = columns[name] if columns else [c.name for c in table.c if c.name in have]
            pk = list(table.primary_key.columns)
            stmt = sa.select(*(table.c[c] for c in wanted)).order_by(*pk)
            rows[name] = [tuple(r) for r in conn.execute(stmt)]
    engine.dispose()
    return rows


def _columns(url: str) -> dict[str, list[str]]:
    """The defined columns of the version 1 tables that the database has, in order."""
    engine = sa.create_engine(url)
    insp = sa.inspect(engine)
    out = {
        name: [c.name for c in t.metadata.tables[name].c
               if c.name in {x["name"] for x in insp.get_columns(name)}]
        for name in V1_TABLES
    }
    engine.dispose()
    return out


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


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_database_upgrades_to_the_fresh_schema(server, version):
    old_url = server()
    _create_at(old_url, version)
    _fill_v1(old_url, version)
    # Read through the definitions: on SQLite ExactMoney reads version 1's REALs as well.
    old_columns = _columns(old_url)
    assert "detectedLanguage" not in old_columns["lidStatus"]
    probe = sa.create_engine(old_url)
    assert not sa.inspect(probe).has_table("recordingDigest")
    probe.dispose()
    before = _rows(old_url)

    engine = create_engine(old_url, pool_size=1)
    assert upgrade(engine) == list(range(version + 1, t.SCHEMA_VERSION + 1))
    assert upgrade(engine) == []
    engine.dispose()
    _assert_version_4_schema(old_url)

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

    # Every row as it was (read as the old columns); schemaVersion gains the versions
    # applied; a column added since is NULL in the rows it found.
    kept = _rows(old_url, old_columns)
    assert kept["schemaVersion"][:version] == before.pop("schemaVersion")
    assert {k: v for k, v in kept.items() if k != "schemaVersion"} == before
    after = _rows(old_url)
    _assert_v1_rows(after)
    lid_cols = list(t.lid_status.c.keys())
    assert [r[lid_cols.index("detectedLanguage")] for r in after["lidStatus"]] == [None]
    if old_url.startswith("sqlite"):
        _assert_money_stored_exactly(old_url)
    _assert_new_rows_work(old_url)
    _assert_version_4_rows_work(old_url)


def _assert_version_4_schema(url: str) -> None:
    """The table and the column version 4 adds, as the server reports them."""
    engine = sa.create_engine(url)
    insp = sa.inspect(engine)
    assert insp.has_table("recordingDigest")
    cols = insp.get_columns("recordingDigest")
    assert [(c["name"], c["nullable"]) for c in cols] == [
        ("batchId", False), ("audioName", False), ("sha256", False), ("sizeBytes", False),
        ("storedAt", False),
    ]
    assert insp.get_pk_constraint("recordingDigest")["constrained_columns"] == [
        "batchId", "audioName"]
    assert [fk["referred_table"] for fk in insp.get_foreign_keys("recordingDigest")] == [
        "batchStatus"]
    lid = {c["name"]: c for c in insp.get_columns("lidStatus")}
    assert lid["detectedLanguage"]["nullable"] is True
    assert getattr(lid["detectedLanguage"]["type"], "length", None) == 16
    assert list(lid)[-1] == "detectedLanguage"
    engine.dispose()


def _assert_version_4_rows_work(url: str) -> None:
    """cofid's recordingDigest write (insert-if-absent: a second digest for the same file
    changes nothing), another writer's row without storedAt (the UTC server default, a
    plain engine: no session pinned), and a lidStatus row with its detected language."""
    first = FileDigest(5, "a" * 64)
    engine = create_engine(url, pool_size=1)
    before = utcnow() - timedelta(milliseconds=1)
    with engine.begin() as conn:
        batch_rows.record_digests(conn, 1, {"a.wav": first})
    with engine.begin() as conn:
        batch_rows.record_digests(conn, 1, {"a.wav": FileDigest(6, "b" * 64)})
    after = utcnow() + timedelta(milliseconds=1)
    engine.dispose()
    plain = sa.create_engine(url)
    with plain.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO recordingDigest (batchId, audioName, sha256, sizeBytes)"
            f" VALUES (2, 'b.wav', '{'c' * 64}', 7)"
        )
        conn.exec_driver_sql(
            "INSERT INTO lidStatus (batchId, callId, audioName, language, audioDuration,"
            " detectedLanguage) VALUES (1, 1, 'a.wav', 'other', 61.5, 'fr')"
        )
    with plain.connect() as conn:
        rd = t.recording_digest
        got = conn.execute(sa.select(rd).order_by(rd.c.batchId, rd.c.audioName)).all()
        lid = conn.execute(
            sa.select(t.lid_status.c.detectedLanguage).order_by(t.lid_status.c.id)
        ).scalars().all()
    plain.dispose()
    assert [tuple(r)[:4] for r in got] == [(1, "a.wav", "a" * 64, 5), (2, "b.wav", "c" * 64, 7)]
    assert before <= got[0].storedAt <= after
    assert abs(got[1].storedAt - utcnow()) < timedelta(minutes=1)
    assert lid == [None, "fr"]


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
