"""Issue 15, items 1–7: what other systems read in the tables is true.

Every test runs a real batch (the fixture batch on the fake backends, in process) on SQLite
and on a MariaDB whose server zone is +05:30 (`zoned_db_url`), then reads the rows back
through a plain connection, as a downstream reader would: one clock (UTC, written by
cofid, the session zone pinned), batchDate in stages.default_zone, batchStatus.status
walking the seed's values, the distribution visible, batchExecutionLog.id AUTO_INCREMENT
with gap-free streams, updatedAt moving, stage_complete statuses, and the failure contract.
The seed's five monitoring queries are in tests/store/test_seed_queries.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.domain.events import Event
from cofid.service.app import open_app
from cofid.service.reaudit import resolve, run_reaudit
from cofid.store import event_log
from cofid.store import tables as t
from cofid.store.writes import utcnow
from cofid.testing.batches import fake_config, write_fixture_batch
from tests.conftest import SERVER_ZONE

# Values a downstream reader takes from the rows: every timestamp column of the run.
STAMPED = {
    "batchStatus": ("createdAt", "completedAt"),
    "fileDistribution": ("updatedAt",),
    "call": ("createdAt", "updatedAt"),
    "lidStatus": ("createdAt",),
    "callConversation": ("createdAt",),
    "auditAnswer": ("createdAt",),
    "processing_logs": ("created_at",),
    "batchExecutionLog": ("timestamp",),
    "recordingDigest": ("storedAt",),
}
# Tables without an id column, and the column their rows are read in order of.
ORDER_BY = {"recordingDigest": "audioName"}
SEED_WALK = [
    "dbInsertDone",
    "denoiseDone",
    "ivrDone",
    "lidDone",
    "triagingDone",
    "sttDone",
    "llm1Done",
    "llm2Done",
    "Completed",
]


def config(db_url: str, data_dir: Path, **stages: Any):
    raw = fake_config(db_url, data_dir)
    # One progress event per stage (the first file), whatever the machine's speed.
    raw["stages"].update({"progress_every_s": 3600.0, **stages})
    return parse_config(raw)


def rows(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """A reader's view: its own engine, nothing of cofid's (no pinned zone)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def select(
    url: str,
    table: str,
    *columns: str,
    order_by: str = "id",
    where: sa.ColumnElement[bool] | None = None,
) -> list[dict[str, Any]]:
    """Typed rows of `table` (SQLite returns DATETIME as text through sa.text)."""
    tbl = t.TABLES_BY_NAME[table]
    stmt = sa.select(*(tbl.c[c] for c in columns)).order_by(tbl.c[order_by])
    if where is not None:
        stmt = stmt.where(where)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]
    finally:
        engine.dispose()


async def run_batch_dir(url: str, tmp_path: Path, **stages: Any) -> tuple[int, dict]:
    exp = write_fixture_batch(tmp_path / "batch")
    async with open_app(config(url, tmp_path / "data", **stages)) as app:
        batch_id = await app.prepare_batch(tmp_path / "batch")
        await app.run_batch(batch_id)
    return batch_id, exp


async def test_every_timestamp_is_utc_whatever_the_server_zone(zoned_db_url, tmp_path):
    before = utcnow() - timedelta(milliseconds=1)
    batch_id, _ = await run_batch_dir(zoned_db_url, tmp_path)
    after = utcnow() + timedelta(milliseconds=1)
    for table, columns in STAMPED.items():
        got = select(zoned_db_url, table, *columns, order_by=ORDER_BY.get(table, "id"))
        assert got, table
        for r in got:
            for col in columns:
                assert before <= r[col] <= after, (table, col, r[col], before, after)
    [bs] = select(zoned_db_url, "batchStatus", "createdAt", "completedAt")
    assert timedelta(0) <= bs["completedAt"] - bs["createdAt"] < after - before
    # A writer that leaves the timestamp to the server gets UTC too (the column default
    # is UTC_TIMESTAMP(3), not the session's local CURRENT_TIMESTAMP).
    engine = sa.create_engine(zoned_db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO processing_logs (batch_id, stage_name, status) "
                "VALUES (:b, 'ops', 'failed')"
            ),
            {"b": batch_id},
        )
        if engine.dialect.name == "mysql":
            assert conn.execute(sa.text("SELECT @@session.time_zone")).scalar() == SERVER_ZONE
    engine.dispose()
    [foreign] = select(
        zoned_db_url, "processing_logs", "created_at", where=t.processing_logs.c.stage_name == "ops"
    )
    assert before - timedelta(seconds=1) <= foreign["created_at"] <= utcnow() + timedelta(seconds=1)


async def test_cofid_pins_the_session_zone_to_utc(zoned_db_url, tmp_path):
    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        if app.db.engine.dialect.name != "mysql":
            return  # SQLite's clock is UTC already; nothing to pin
        zone, now = await app.db.read(
            lambda c: tuple(c.execute(sa.text("SELECT @@session.time_zone, NOW(3)")).one())
        )
    assert zone == "+00:00"
    assert abs((now - utcnow()).total_seconds()) < 60


async def test_batch_date_is_the_business_day_of_the_default_zone(zoned_db_url, tmp_path):
    # UTC+14: the business day differs from the UTC one for 14 hours of every day.
    zone = "Pacific/Kiritimati"
    from cofid.plans.batch import business_day

    days = {business_day(zone, utcnow())}
    await run_batch_dir(zoned_db_url, tmp_path, default_zone=zone)
    days.add(business_day(zone, utcnow()))
    [bs] = select(zoned_db_url, "batchStatus", "batchDate")
    assert bs["batchDate"] in days


async def test_status_walks_the_seed_values_in_order(zoned_db_url, tmp_path):
    batch_id, _ = await run_batch_dir(zoned_db_url, tmp_path)
    got = select(
        zoned_db_url,
        "batchExecutionLog",
        "stage",
        "status",
        "metadata",
        where=t.batch_execution_log.c.eventType == "info",
    )
    assert {(r["stage"], r["status"]) for r in got} == {("pipeline", "success")}
    walk = [r["metadata"]["batch_status"] for r in got]
    assert walk == SEED_WALK
    [bs] = rows(zoned_db_url, "SELECT status FROM batchStatus WHERE id = :b", b=batch_id)
    assert bs["status"] == "Completed"


async def test_distribution_is_visible_event_by_event(zoned_db_url, tmp_path):
    batch_id, exp = await run_batch_dir(zoned_db_url, tmp_path)
    got = rows(
        zoned_db_url,
        "SELECT id, eventType, status, fileName, gpuIp, totalFiles, "
        "processedFiles FROM batchExecutionLog WHERE stage = 'file_distribution' "
        "ORDER BY id",
    )
    order = [r["fileName"] for r in got if r["eventType"] == "file_complete"]
    assert sorted(order) == sorted(exp["files"])
    expected = [("stage_start", "processing", None, None, 7, 0)]
    for name in order:
        expected += [
            ("file_start", "processing", name, "cpu", None, None),
            ("file_complete", "success", name, "cpu", None, None),
        ]
    expected.append(("stage_complete", "success", None, None, 7, 7))
    assert [
        (
            r["eventType"],
            r["status"],
            r["fileName"],
            r["gpuIp"],
            r["totalFiles"],
            r["processedFiles"],
        )
        for r in got
    ] == expected
    fd = rows(zoned_db_url, "SELECT file FROM fileDistribution ORDER BY id")
    assert [r["file"] for r in fd] == order  # the events follow the distribution order


async def test_event_ids_auto_increment_and_streams_stay_gap_free(zoned_db_url, tmp_path):
    exp_dir = tmp_path / "batch"
    write_fixture_batch(exp_dir)
    published: list[Event] = []
    foreign_ids: list[int] = []

    def foreign_insert() -> None:
        # Another writer (an ops script, the old dashboard) inserts without an id.
        engine = sa.create_engine(zoned_db_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO batchExecutionLog (batchId, stage, eventType, "
                    "status) VALUES (0, 'ops', 'info', 'success')"
                )
            )
            foreign_ids.append(
                int(conn.execute(sa.text("SELECT MAX(id) FROM batchExecutionLog")).scalar())
            )
        engine.dispose()

    def listen(e: Event) -> None:
        published.append(e)

    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        foreign_insert()  # before cofid's first event
        app.bus.listeners.append(listen)
        batch_id = await app.prepare_batch(exp_dir)
        await trio.to_thread.run_sync(foreign_insert)  # between two of cofid's groups
        await app.run_batch(batch_id)
        replayed = await app.db.read(
            lambda c: event_log.replay(c, _Everything(), 0, app.bus.last_id, 100_000)
        )
    ids = [e.id for e in published]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # commit order, once each
    assert foreign_ids[0] < ids[0] < foreign_ids[1] < ids[-1]
    stored = rows(zoned_db_url, "SELECT id, stage FROM batchExecutionLog ORDER BY id")
    assert [r["id"] for r in stored if r["stage"] != "ops"] == ids  # nothing missed
    assert [r["id"] for r in stored if r["stage"] == "ops"] == foreign_ids
    # A resumed stream (from id 0) reads the log by id: cofid's events and the foreign rows.
    assert [e.id for e in replayed] == [r["id"] for r in stored]
    assert [e.stage for e in replayed if e.id in foreign_ids] == ["ops", "ops"]


class _Everything:
    batch_id = 0
    stages: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    errors_only = False


async def test_updated_at_moves_with_every_status_change_and_reaudit(zoned_db_url, tmp_path):
    exp = write_fixture_batch(tmp_path / "batch")
    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        batch_id = await app.prepare_batch(tmp_path / "batch")
        await trio.sleep(0.005)  # DATETIME(3): let the clock pass a millisecond
        prepared = utcnow()
        await app.run_batch(batch_id)
        await trio.sleep(0.005)
        finished = utcnow()
        calls = select(zoned_db_url, "call", "audioName", "status", "createdAt", "updatedAt")
        fds = select(zoned_db_url, "fileDistribution", "file", "updatedAt")
        # Every call's status changed in the run (Complete, ShortCall, Failed, ...), and
        # every file's flags or failure did: each row says when.
        assert {c["status"] for c in calls} >= {"Complete", "ShortCall", "Failed"}
        for c in calls:
            assert c["createdAt"] < prepared < c["updatedAt"] < finished, c
        for f in fds:
            assert prepared < f["updatedAt"] < finished, f
        target = next(n for n in exp["files"] if exp["calls"][n]["llm_done"])
        req = await resolve(app, [target], ["llm2"])
        await run_reaudit(app, req)
    after = {
        c["audioName"]: c["updatedAt"]
        for c in select(zoned_db_url, "call", "audioName", "updatedAt")
    }
    fd_after = {
        f["file"]: f["updatedAt"]
        for f in select(zoned_db_url, "fileDistribution", "file", "updatedAt")
    }
    assert after[target] > finished and fd_after[target] > finished
    assert {n: v for n, v in after.items() if n != target} == {
        c["audioName"]: c["updatedAt"] for c in calls if c["audioName"] != target
    }
    assert {n: v for n, v in fd_after.items() if n != target} == {
        f["file"]: f["updatedAt"] for f in fds if f["file"] != target
    }


async def test_stage_complete_says_success_partial_or_failed(zoned_db_url, tmp_path):
    batch_dir = tmp_path / "batch"
    write_fixture_batch(batch_dir)
    # Every file corrupt: denoise fails all of them. One refused callMetadata row (the
    # first call's start time is no time): partial, not failed.
    for wav in batch_dir.glob("*.wav"):
        wav.rename(wav.with_name(wav.stem + "_corrupt.wav"))
    csv_path = batch_dir / "callMetadata.csv"
    lines = csv_path.read_text().replace(".wav,", "_corrupt.wav,").splitlines()
    first = lines[1].split(",")
    lines[1] = ",".join([*first[:3], "not-a-time", *first[4:]])
    csv_path.write_text("\n".join(lines) + "\n")
    async with open_app(config(zoned_db_url, tmp_path / "data")) as app:
        batch_id = await app.prepare_batch(batch_dir)
        await app.run_batch(batch_id)
    got = select(
        zoned_db_url,
        "batchExecutionLog",
        "stage",
        "status",
        "metadata",
        where=t.batch_execution_log.c.eventType == "stage_complete",
    )
    by_stage = {r["stage"]: (r["status"], r["metadata"]) for r in got}
    assert by_stage["callmetadata"] == ("partial", {"rows": 6, "errors": 1})
    assert by_stage["trademetadata"][0] == "success"
    assert by_stage["denoise"] == ("failed", {"done": 0, "failed": 7, "skipped": 0})
    # Later stages failed nothing (every file had stopped before them).
    assert by_stage["ivr"] == ("success", {"done": 0, "failed": 0, "skipped": 7})
    statuses = rows(zoned_db_url, "SELECT status, COUNT(*) AS n FROM `call` GROUP BY status")
    assert statuses == [{"status": "Failed", "n": 7}]
