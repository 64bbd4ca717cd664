"""A batch against three cofi-simworker GPU hosts over HTTP, one of which dies mid-batch."""

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig, serve_simworker
from cofid.store import tables as t

N_FILES = 24


def write_calls(directory, n):
    directory.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        seconds = 3.0 if i % 8 == 0 else 8.0  # every eighth call is under 5 s
        sf.write(directory / f"call_{i:03}.wav", (rng.standard_normal(int(8000 * seconds)) * 0.05).astype("float32"), 8000)


def config(tmp_path, urls, db_url):
    return parse_config({
        "database": {"url": db_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": f"gpu-{i}", "url": u, "slots": 2} for i, u in enumerate(urls)],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off", "ivr": "off",
                     "remote": {"timeout_s": 5.0, "connect_timeout_s": 1.0, "failure_threshold": 2,
                                "cooldown_s": 60.0}},
        "pipelines": {"batch": {"denoise": False, "ivr": False}},
        "stages": {"retry": {"attempts": 4, "backoff_s": 0.01, "max_backoff_s": 0.05}},
    })


async def test_batch_completes_when_one_gpu_host_dies_mid_batch(tmp_path, sqlite_url):
    batch = tmp_path / "batch"
    write_calls(batch, N_FILES)
    async with trio.open_nursery() as nursery:
        workers = [await nursery.start(serve_simworker, SimConfig(seed=i, time_scale=0.05, slots=2))
                   for i in range(3)]
        cfg = config(tmp_path, [w.url for w in workers], sqlite_url)
        async with open_app(cfg) as app:
            batch_id = await app.prepare_batch(batch)

            async def kill_when_busy():
                while workers[1].requests.get("chat", 0) + workers[1].requests.get("stt", 0) < 3:
                    await trio.sleep(0.01)
                await workers[1].die()

            nursery.start_soon(kill_when_busy)
            run = await app.run_batch(batch_id)
        nursery.cancel_scope.cancel()

    engine = sa.create_engine(sqlite_url)
    with engine.connect() as c:
        status = c.execute(sa.select(t.batch_status.c.status)).scalar_one()
        calls = dict(c.execute(sa.select(t.call.c.status, sa.func.count()).group_by(t.call.c.status)).all())
        failed = c.execute(sa.select(sa.func.count()).select_from(t.file_distribution)
                           .where(t.file_distribution.c.failedStage.is_not(None))).scalar()
        gpus_used = set(c.execute(sa.select(t.file_distribution.c.gpuIp)).scalars())
        answers = c.execute(sa.select(sa.func.count()).select_from(t.audit_answer)).scalar()
        retries = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                            .where(t.processing_logs.c.status == "retry")).scalar()
    engine.dispose()
    assert status == "Completed"
    # Every file accounted for: each call ended in a final status, none failed — the dead
    # host's files moved to the healthy ones.
    assert failed == 0
    assert calls == {"Complete": N_FILES - 3, "ShortCall": 3}
    assert answers == (N_FILES - 3) * 10
    assert retries >= 1
    assert workers[1].requests.get("stt", 0) + workers[1].requests.get("lid", 0) >= 1
    # gpuIp names the GPU that did each file's latest stage: never the dead one at the end
    # for files that finished after it died; the healthy ones did the rest.
    assert {"gpu-0", "gpu-2"} <= gpus_used
    assert sum(c.done for c in run.counters.values()) > 0


async def test_a_dying_gpu_is_reported_in_events(tmp_path, sqlite_url):
    batch = tmp_path / "batch"
    write_calls(batch, 12)
    async with trio.open_nursery() as nursery:
        workers = [await nursery.start(serve_simworker, SimConfig(seed=i, time_scale=0.0))
                   for i in range(2)]
        await workers[1].die()
        cfg = config(tmp_path, [w.url for w in workers], sqlite_url)
        async with open_app(cfg) as app:
            await app.run_batch(await app.prepare_batch(batch))
        nursery.cancel_scope.cancel()
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as c:
        errors = c.execute(sa.select(t.batch_execution_log.c.gpuIp, t.batch_execution_log.c.errorMessage)
                           .where(t.batch_execution_log.c.eventType == "error",
                                  t.batch_execution_log.c.fileName.is_(None))).all()
        moved = c.execute(sa.select(sa.func.count()).select_from(t.batch_execution_log)
                          .where(t.batch_execution_log.c.metadata.is_not(None),
                                 sa.cast(t.batch_execution_log.c.metadata, sa.Text).like('%moved_from%gpu-1%'))).scalar()
        status = c.execute(sa.select(t.batch_status.c.status)).scalar_one()
    engine.dispose()
    assert status == "Completed"
    assert [g for g, _m in errors] == ["gpu-1"]
    assert "GPU gpu-1 marked unhealthy after 2 failures in a row" in errors[0][1]
    assert moved >= 1
