"""The LLM stages' inputs: batch-level facts are read once per batch, and a batch without
call metadata or mapped trades costs its files no read (no query, no thread hop)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from cofid.domain.questions import QuestionSet
from cofid.store import repo
from cofid.store import tables as t
from cofid.store.db import Database
from cofid.store.migrate import upgrade
from cofid.store.stage_inputs import StoreStageInputs


class CountingDatabase(Database):
    reads = 0

    async def read(self, fn):
        self.reads += 1
        return await super().read(fn)


def _no_question_set(_p: int, _c: int) -> QuestionSet:
    raise AssertionError("not asked here")


async def _setup(db_url: str, *, call_metadata: bool, mapped_trade: bool):
    db = CountingDatabase(db_url)
    await db.run(upgrade, db.engine)

    def make(conn):
        bid = repo.create_batch(conn, batch_date=date(2026, 12, 3), source="batch",
                                source_dir=None, process_id=1, category_mapping_id=1,
                                pipeline={}, batch_number=None)
        repo.distribute(conn, bid, [(f"f{i}.wav", f"/x/f{i}.wav", "g0") for i in range(3)],
                        process_id=1, category_mapping_id=1)
        if call_metadata:
            conn.execute(sa.insert(t.call_metadata).values(
                batchId=bid, audioName="f1.wav", clientCode="C9", agentId="A1",
                callStartTime=datetime(2026, 12, 3, 9, 0), callEndTime=datetime(2026, 12, 3, 9, 5)))
        if mapped_trade:
            conn.execute(sa.insert(t.trade_metadata).values(
                batchId=bid, tradeId="T1", clientCode="C9", symbol="INFY", side="buy",
                quantity=10, price=100, tradeTime=datetime(2026, 12, 3, 9, 1),
                audioName="f1.wav"))
        return bid

    bid = await db.write(make)
    files = await db.read(lambda c: repo.load_files(c, bid))
    db.reads = 0
    return db, files


async def test_a_batch_without_csvs_reads_nothing_per_file(db_url):
    db, files = await _setup(db_url, call_metadata=False, mapped_trade=False)
    inputs = StoreStageInputs(db, _no_question_set)
    for f in files:
        got = await inputs.read(f, ["call_metadata", "trades"])
        assert got == {"call_metadata": None, "trades": []}
        assert await inputs.batch_triaged(f.batch_id) is False
    assert db.reads == 1  # the batch's facts, once
    db.dispose()


async def test_a_batch_with_metadata_reads_each_files_rows(db_url):
    db, files = await _setup(db_url, call_metadata=True, mapped_trade=True)
    inputs = StoreStageInputs(db, _no_question_set)
    got = [await inputs.read(f, ["call_metadata", "trades"]) for f in files]
    assert db.reads == 1 + 3  # the facts once, then one read per file
    assert got[0] == {"call_metadata": None, "trades": []}
    assert got[1]["call_metadata"]["client_code"] == "C9"
    assert [tr["trade_id"] for tr in got[1]["trades"]] == ["T1"]
    assert got[2] == {"call_metadata": None, "trades": []}
    db.dispose()


async def test_call_metadata_without_mapped_trades_reads_only_the_metadata(db_url):
    db, files = await _setup(db_url, call_metadata=True, mapped_trade=False)
    inputs = StoreStageInputs(db, _no_question_set)
    got = await inputs.read(files[1], ["call_metadata", "trades"])
    assert got["trades"] == [] and got["call_metadata"]["agent_id"] == "A1"
    # The transcript is always the file's own read.
    tr = await inputs.read(files[1], ["transcript"])
    assert tr == {"transcript": []}
    assert db.reads == 1 + 2
    db.dispose()
