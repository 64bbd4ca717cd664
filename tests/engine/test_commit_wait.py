"""A file whose result waits for its commit holds no stage worker: a stage never has more
files after a GPU slot than its workers (slots + 2, so files start in feed order even
when hosts are lost), while the results waiting for a slow commit pile up for the
writer's next group (many files per transaction)."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from cofid.config import parse_config
from cofid.engine import writer as writer_mod
from cofid.engine.gpus import GpuPool
from cofid.service.app import open_app
from cofid.store import tables as t
from cofid.testing.batches import fake_config, write_fixture_batch


async def test_results_waiting_for_their_commit_hold_no_worker(sqlite_url, tmp_path: Path,
                                                               monkeypatch) -> None:
    groups: list[int] = []
    real_commit = writer_mod.commit_group

    def slow_commit(engine, group, ids):  # a busy database: every commit takes 30 ms
        time.sleep(0.03)
        groups.append(len(group))
        real_commit(engine, group, ids)

    monkeypatch.setattr(writer_mod, "commit_group", slow_commit)
    waiting = {"now": 0, "most": 0}
    real_acquire = GpuPool._acquire

    async def counted_acquire(self, priority, preferred, capability):
        waiting["now"] += 1
        waiting["most"] = max(waiting["most"], waiting["now"])
        try:
            return await real_acquire(self, priority, preferred, capability)
        finally:
            waiting["now"] -= 1

    monkeypatch.setattr(GpuPool, "_acquire", counted_acquire)
    batch_dir = tmp_path / "batch"
    write_fixture_batch(batch_dir, extra_calls=40)
    cfg = parse_config(fake_config(sqlite_url, tmp_path / "data"))
    async with open_app(cfg) as app:
        engine = app.engine
        slots = sum(g.total_slots for g in app.pool.gpus)
        assert engine.workers_per_stage == slots + 2
        assert engine.committers_per_stage > engine.workers_per_stage
        batch_id = await app.prepare_batch(batch_dir)
        run = await app.run_batch(batch_id)
    stages = len(run.stages)
    # Never more files after a slot than the stages' workers together ...
    assert 0 < waiting["most"] <= stages * (slots + 2)
    # ... while one group carried more results than a stage has workers.
    assert max(groups) > slots + 2
    engine_ = sa.create_engine(sqlite_url)
    with engine_.connect() as conn:
        statuses = conn.execute(sa.select(t.batch_status.c.status)).scalars().all()
    engine_.dispose()
    assert statuses == ["Completed"]
