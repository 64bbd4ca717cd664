"""Issue 15: the seed's five monitoring queries give the right answers, run verbatim.

On a finished batch (every file through) and on a partly failed one (the fixture's corrupt
call fails denoise), on SQLite and on MariaDB with the server zone at +05:30. The queries
are the seed's text (tests/store/test_schema.py), with the batch id filled in; the reader's
connection is a plain one, not cofid's. The business zone is Asia/Kolkata, so the server's
CURDATE() in a reader's session (+05:30) is the business day cofid wrote as batchDate —
what the README tells readers. SQLite has no CURDATE(): there the same day is
date('now', '+330 minutes').
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cofid.config import parse_config
from cofid.plans.batch import business_day
from cofid.service.app import open_app
from cofid.store.writes import utcnow
from cofid.testing.batches import fake_config, write_fixture_batch
from tests.store.test_schema import SEED_MONITORING_QUERIES

ZONE = "Asia/Kolkata"
AUDIO = ("denoise", "ivr", "lid", "stt")  # the stages the fake fails once for *_flaky*


def seed_query(n: int, batch_id: int, dialect: str) -> str:
    sql = SEED_MONITORING_QUERIES[n].replace("batchId = 1", f"batchId = {batch_id}")
    sql = sql.replace("batch_id = '1'", f"batch_id = '{batch_id}'")
    if dialect == "sqlite":
        sql = sql.replace("CURDATE()", "date('now', '+330 minutes')").replace("`call`", '"call"')
    return sql


def run_seed_query(url: str, n: int, batch_id: int) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(sa.text(seed_query(n, batch_id, engine.dialect.name)))
            ]
    finally:
        engine.dispose()


async def run(url: str, tmp_path: Path, *, with_failure: bool) -> tuple[int, dict]:
    batch_dir = tmp_path / "batch"
    exp = write_fixture_batch(batch_dir)
    if not with_failure:  # the finished batch: the corrupt call is not part of it
        name = next(n for n in exp["files"] if exp["calls"][n]["failed_stage"])
        (batch_dir / name).unlink()
        csv_path = batch_dir / "callMetadata.csv"
        csv_path.write_text(
            "".join(
                line for line in csv_path.read_text().splitlines(True) if not line.startswith(name)
            )
        )
        exp["files"].remove(name)
        del exp["calls"][name]
    raw = fake_config(url, tmp_path / "data")
    # A progress event for every file (deterministic counts), the business zone.
    raw["stages"].update({"progress_every_s": 0.0, "default_zone": ZONE})
    async with open_app(parse_config(raw)) as app:
        batch_id = await app.prepare_batch(batch_dir)
        await app.run_batch(batch_id)
    return batch_id, exp


def expected_progress(exp: dict) -> Counter:
    """(stage, eventType, status) -> count, from what each file does at each stage."""
    calls, files = exp["calls"], exp["files"]
    n = len(files)
    c: Counter = Counter()
    c[("file_distribution", "stage_start", "processing")] = 1
    c[("file_distribution", "file_start", "processing")] = n
    c[("file_distribution", "file_complete", "success")] = n
    c[("file_distribution", "stage_complete", "success")] = 1
    for s in ("callmetadata", "trademetadata", "triaging"):
        c[(s, "stage_complete", "success")] = 1
    for stage in ("denoise", "ivr", "lid", "stt", "llm1", "llm2"):
        done = failed = gated = attempts = 0
        for name in files:
            call = calls[name]
            if call["failed_stage"]:
                if stage == call["failed_stage"]:
                    failed, attempts = failed + 1, attempts + 1
                continue
            if stage == "stt" and not call["stt_done"]:
                gated += 1  # ShortCall / UnsupportedLanguage: no model call
                continue
            if stage in ("llm1", "llm2") and not call["llm_done"]:
                continue
            done += 1
            attempts += 2 if name in exp["flaky"] and stage in AUDIO else 1
        c[(stage, "stage_start", "processing")] = 1
        c[(stage, "file_start", "processing")] = attempts
        c[(stage, "file_complete", "success")] = done + gated
        if failed:
            c[(stage, "error", "failed")] = failed
        c[(stage, "stage_progress", "processing")] = done + failed + gated
        c[(stage, "stage_complete", "partial" if failed else "success")] = 1
    # batchStatus.status's walk: dbInsertDone … llm2Done, then the run's end (Completed).
    c[("pipeline", "info", "success")] = 9
    return +c


@pytest.mark.parametrize("with_failure", [False, True], ids=["finished", "partly_failed"])
async def test_the_five_monitoring_queries(zoned_db_url, tmp_path, with_failure):
    before = utcnow() - timedelta(milliseconds=1)
    batch_id, exp = await run(zoned_db_url, tmp_path, with_failure=with_failure)
    after = utcnow() + timedelta(milliseconds=1)
    calls, files = exp["calls"], exp["files"]

    # 1. Check Batch Progress: today's batch (CURDATE() in the reader's session), done.
    [progress] = run_seed_query(zoned_db_url, 0, batch_id)
    assert {**progress, "batchDate": str(progress["batchDate"])} == {
        "id": batch_id,
        "batchDate": str(business_day(ZONE, utcnow())),
        "batchNumber": 1,
        "status": "Completed",
        "dbInsertionStatus": "Complete",
        "denoiseStatus": "Complete",
        "ivrStatus": "Complete",
        "lidStatus": "Complete",
        "sttStatus": "Complete",
        "llm1Status": "Complete",
        "llm2Status": "Complete",
        "totalFiles": len(files),
    }

    # 2. Check File Distribution Status: each file's flags.
    got = run_seed_query(zoned_db_url, 1, batch_id)
    audio = {n: 0 if calls[n]["failed_stage"] else 1 for n in files}
    assert sorted(got, key=lambda r: r["file"]) == [
        {
            "file": n,
            "denoiseDone": audio[n],
            "ivrDone": audio[n],
            "lidDone": audio[n],
            "sttDone": int(calls[n]["stt_done"]),
            "llm1Done": int(calls[n]["llm_done"]),
            "llm2Done": int(calls[n]["llm_done"]),
        }
        for n in sorted(files)
    ]

    # 3. Check Call Processing Status: nothing Pending in a finished batch; the failed
    # call says Failed (the failure contract).
    got3 = {r["status"]: r["count"] for r in run_seed_query(zoned_db_url, 2, batch_id)}
    assert got3 == {
        "Complete": 4,
        "ShortCall": 1,
        "UnsupportedLanguage": 1,
        **({"Failed": 1} if with_failure else {}),
    }

    # 4. Check Errors: the failed stage, once, with a UTC time inside the run.
    got4 = run_seed_query(zoned_db_url, 3, batch_id)
    if not with_failure:
        assert got4 == []
    else:
        [err] = got4
        assert (err["stage_name"], err["error_count"]) == ("denoise", 1)
        last = err["last_error"]
        if isinstance(last, str):  # SQLite: the DATETIME's text
            from datetime import datetime

            last = datetime.fromisoformat(last)
        assert before <= last <= after

    # 5. Check Stage Progress: every (stage, eventType, status) count.
    got5 = {
        (r["stage"], r["eventType"], r["status"]): r["count"]
        for r in run_seed_query(zoned_db_url, 4, batch_id)
    }
    assert got5 == dict(expected_progress(exp))
