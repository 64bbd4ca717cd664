"""Issue 15.1 on the daemon's own path (serve_main: StartBatch, Reaudit, UploadAudit), on
SQLite and on MariaDB with the server zone at +05:30: every time cofid stores, in every
table (the seed's, task, tradeVerdict, recordingDigest, schemaVersion), is UTC and inside
the run. tests/store/test_tables_truth.py proves the same for an in-process batch."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from cofid.store import tables as t
from cofid.store.writes import utcnow
from cofid.testing.batches import write_fixture_batch
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import wav_bytes

# The columns that say when cofid wrote something (the CSVs' call and trade times are
# business data, not clocks).
STAMPS = {"createdAt", "updatedAt", "completedAt", "timestamp", "created_at", "decidedAt",
          "storedAt", "appliedAt"}
# Tables every run here writes (transcript has no stamp): each must have rows, stamps set.
WRITTEN = {"batchStatus", "fileDistribution", "call", "lidStatus",
           "callConversation", "auditAnswer", "processing_logs", "batchExecutionLog",
           "task", "tradeVerdict", "recordingDigest", "schemaVersion"}


def _as_datetime(v):
    return datetime.fromisoformat(v) if isinstance(v, str) else v


async def test_every_stored_time_is_utc_on_the_daemon_path(start_server, tmp_path, zoned_db_url):
    t0 = utcnow() - timedelta(milliseconds=5)
    h = await start_server(zoned_db_url)
    d = tmp_path / "fixture"
    write_fixture_batch(d)
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    assert (await h.wait_task(ref.task_id, timeout=60)).state == "completed"
    ra = await h.call(
        "Reaudit", pb.ReauditRequest(audio_names=["call_01_long.wav"], stages=["stt", "llm2"])
    )
    assert (await h.wait_task(ra.task_id)).state == "completed"
    up = await h.upload({"clock.wav": wav_bytes(freq=440)})
    assert (await h.wait_task(up.task_id)).state == "completed"
    t1 = utcnow() + timedelta(milliseconds=5)

    def read(c):
        out = {}
        for table in t.metadata.sorted_tables:
            cols = [col for col in table.c if col.name in STAMPS]
            if cols:
                out[table.name] = [dict(r._mapping) for r in c.execute(sa.select(*cols))]
        return out

    got = await h.query(read)
    assert set(got) >= WRITTEN, set(got)
    for name in WRITTEN:
        assert got[name], name
        for row in got[name]:
            for col, v in row.items():
                assert v is not None, (name, col)
                assert t0 <= _as_datetime(v) <= t1, (name, col, v, t0, t1)
    for row in got["task"]:
        assert row["createdAt"] <= row["updatedAt"], row
    for row in got["batchStatus"]:
        assert row["createdAt"] <= row["completedAt"], row  # a duration is never negative
