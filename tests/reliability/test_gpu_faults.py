"""GPU faults over real HTTP: error rates, hangs, dropped connections, malformed replies,
and a host that dies and comes back. The batch completes and every file is accounted for."""

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.backends.probe import probe_config
from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig, serve_simworker
from cofid.store import tables as t

N_FILES = 20


def write_calls(directory):
    directory.mkdir()
    rng = np.random.default_rng(5)
    for i in range(N_FILES):
        seconds = 2.0 if i % 10 == 0 else 7.0
        sf.write(directory / f"c{i:02}.wav", (rng.standard_normal(int(8000 * seconds)) * 0.05).astype("float32"), 8000)


def config(tmp_path, urls, db_url, attempts, cooldown_s=0.3):
    return parse_config({
        "database": {"url": db_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": f"gpu-{i}", "url": u, "slots": 2} for i, u in enumerate(urls)],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote",
                     "remote": {"timeout_s": 0.8, "connect_timeout_s": 0.5,
                                "failure_threshold": 3, "cooldown_s": cooldown_s}},
        "pipelines": {"batch": {"denoise": False, "ivr": False}},
        "stages": {"retry": {"attempts": attempts, "backoff_s": 0.01, "max_backoff_s": 0.05}},
    })


def account(url):
    e = sa.create_engine(url)
    with e.connect() as c:
        status = c.execute(sa.select(t.batch_status.c.status)).scalar_one()
        rows = c.execute(sa.select(t.call.c.audioName, t.call.c.status, t.file_distribution.c.failedStage,
                                   t.file_distribution.c.failureReason).select_from(
            t.call.join(t.file_distribution, t.file_distribution.c.file == t.call.c.audioName))).all()
        failed_logs = c.execute(sa.select(t.processing_logs.c.file_name, t.processing_logs.c.stage_name)
                                .where(t.processing_logs.c.status == "failed")).all()
        retries = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                            .where(t.processing_logs.c.status == "retry")).scalar()
    e.dispose()
    return status, rows, failed_logs, retries


FAULTS = {
    "errors_15pct": dict(fail_rate=0.15),
    "hangs_5pct": dict(hang_rate=0.05),
    "dropped_10pct": dict(drop_rate=0.10),
    "malformed_15pct": dict(malformed_rate=0.15),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_batch_completes_and_accounts_for_every_file_under_faults(tmp_path, sqlite_url, fault):
    write_calls(tmp_path / "batch")
    async with trio.open_nursery() as nursery:
        workers = [await nursery.start(serve_simworker, SimConfig(seed=10 + i, time_scale=0.0, **FAULTS[fault]))
                   for i in range(3)]
        cfg = config(tmp_path, [w.url for w in workers], sqlite_url, attempts=5)
        async with open_app(cfg) as app:
            run = await app.run_batch(await app.prepare_batch(tmp_path / "batch"))
        nursery.cancel_scope.cancel()
    status, rows, failed_logs, retries = account(sqlite_url)
    assert status == "Completed"
    assert sum(w.faults.total() for w in workers) > 0, "the fault was never injected"
    assert retries > 0
    for name, call_status, failed_stage, reason in rows:
        # Every file ends processed, or failed with a reason.
        assert call_status in ("Complete", "ShortCall") or (failed_stage and reason), (name, call_status)
    failed_files = {r[0] for r in rows if r[2]}
    assert {f for f, _s in failed_logs} == failed_files
    for stage, c in run.counters.items():
        assert c.done + c.failed + c.skipped == N_FILES, stage


async def test_a_host_that_dies_and_comes_back_gets_work_again(tmp_path, sqlite_url):
    write_calls(tmp_path / "batch")
    async with trio.open_nursery() as nursery:
        workers = [await nursery.start(serve_simworker, SimConfig(seed=20 + i, time_scale=0.02))
                   for i in range(2)]
        await workers[0].die()
        cfg = config(tmp_path, [w.url for w in workers], sqlite_url, attempts=6)
        async with open_app(cfg) as app:
            batch_id = await app.prepare_batch(tmp_path / "batch")

            async def revive():
                while workers[1].requests["stt"] < 3:
                    await trio.sleep(0.01)
                await workers[0].come_back()

            nursery.start_soon(revive)
            await app.run_batch(batch_id)
            gpu0 = app.pool.by_name["gpu-0"]
            assert gpu0.healthy and gpu0.done > 0, "the revived host never got work back"
        nursery.cancel_scope.cancel()
    status, rows, _failed, _retries = account(sqlite_url)
    assert status == "Completed"
    assert all(r[2] is None for r in rows)


async def test_a_dead_hosts_probes_do_not_use_up_the_files_retries(tmp_path, sqlite_url):
    """Issue 19: an unhealthy host gets a real file's request as its breaker's probe when
    the healthy hosts are full; while it stays down, that failed request is the host's
    test, not one of the file's tries. With one try per file, every file still completes
    on the healthy host, and the failed probes are in processing_logs as retries."""
    write_calls(tmp_path / "batch")
    async with trio.open_nursery() as nursery:
        workers = [await nursery.start(serve_simworker, SimConfig(seed=30 + i, time_scale=0.02))
                   for i in range(2)]
        await workers[0].die()
        cfg = config(tmp_path, [w.url for w in workers], sqlite_url, attempts=1, cooldown_s=0.02)
        # As `cofid serve` starts: its start probe finds the dead host and opens its breaker,
        # so every request the host gets is a probe.
        probed = await probe_config(cfg)
        assert [r.status for r in probed if r.gpu == "gpu-0"] == ["error"]
        async with open_app(cfg, probe_results=probed) as app:
            batch_id = await app.prepare_batch(tmp_path / "batch")
            await app.run_batch(batch_id)
            gpu0 = app.pool.by_name["gpu-0"]
            assert not gpu0.healthy and gpu0.requests_failed >= 3, "the dead host was never probed"
        nursery.cancel_scope.cancel()
    status, rows, failed, retries = account(sqlite_url)
    assert status == "Completed" and failed == []
    assert all(r[2] is None for r in rows)
    assert retries >= 3


async def test_with_every_host_down_files_fail_after_their_tries_instead_of_waiting(tmp_path, sqlite_url):
    """The other side of the rule: with no healthy host a probe is the file's try as
    before, so a batch on dead hosts ends with its files failed (after two tries each),
    not waiting forever."""
    write_calls(tmp_path / "batch")
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, SimConfig(seed=40, time_scale=0.02))
        await worker.die()
        cfg = config(tmp_path, [worker.url], sqlite_url, attempts=2, cooldown_s=0.0)
        async with open_app(cfg) as app:
            batch_id = await app.prepare_batch(tmp_path / "batch")
            with trio.fail_after(60):
                await app.run_batch(batch_id)
        nursery.cancel_scope.cancel()
    _status, rows, failed, retries = account(sqlite_url)
    assert len(failed) == N_FILES and all(r[2] == "lid" for r in rows)
    assert retries == N_FILES  # the first of each file's two tries
