"""The health banner and the daemon's counters against a real cofid (fake GPU backends):
GPU hosts that stop answering mid-batch show the stall and GPU lines; a daemon restart
mid-batch neither drops nor resets any card's counters (done never goes down, files done
before the restart are not shown as skipped, retries are kept)."""

from __future__ import annotations

import sqlalchemy as sa
import trio

from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.tui.conftest import VIEW, in_trio, run_app, wait_until, write_batch_dir
from tests.tui.test_live import rpc
from tui.app import CofiApp
from tui.config import Settings
from tui.model import COMPLETE


async def start_batch(daemon, d) -> int:
    ref = await rpc(daemon, "StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(20):
        while not ref.batch_id:
            await trio.sleep(0.05)
            ref = await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)
    return ref.batch_id


def banner(app) -> str:
    w = app.screen.query_one("#health-banner")
    return str(w.render()) if w.display else ""


async def test_gpu_hosts_stopping_mid_batch_show_the_stall_and_gpu_banner(daemon, tmp_path):
    daemon.fake.latency_s = 0.1
    names = [f"g{i:03d}.wav" for i in range(30)]
    batch_id = await start_batch(daemon, write_batch_dir(tmp_path / "batch-g", names))

    async def scenario():
        app = CofiApp(
            Settings(daemon.target, VIEW, batch_id),
            backoff=(0.1, 0.5),
            idle_timeout=5.0,
            gpu_refresh_s=0.5,
            stall_after_s=3.0,
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(
                pilot,
                lambda: (
                    app.model is not None
                    and app.model.snapshotted
                    and app.model.cards["ivr"].done >= 2
                ),
                timeout=60,
                what="IVR under way",
            )
            assert banner(app) == ""  # moving and healthy: nothing to say
            daemon.fake.fail_names |= set(names)  # every GPU request fails from now on
            await wait_until(
                pilot,
                lambda: "no file finished for" in banner(app),
                timeout=60,
                what="stall banner",
            )
            await wait_until(
                pilot, lambda: "0/2 GPUs healthy" in banner(app), timeout=60, what="GPU banner"
            )
            text = banner(app)
            header = str(app.screen.query_one("#batch-header").render())
            return text, header, app.model.cards["ivr"].retries

    text, header, retries = await run_app(scenario)
    assert text.startswith("✘ no file finished for ") and "0/2 GPUs healthy" in text
    assert "connected" in header and retries >= 1
    gpus = await rpc(daemon, "ListGpus", pb.ListGpusRequest(), VIEW)
    assert len(gpus.gpus) == 2 and not any(g.healthy for g in gpus.gpus)


async def test_restart_keeps_the_daemons_counters(daemon, tmp_path):
    daemon.fake.latency_s = 0.15
    # _flaky names fail their first attempt at every GPU stage (cofid.backends.fake): retries
    names = [f"k{i:03d}{'_flaky' if i % 4 == 0 else ''}.wav" for i in range(24)]
    batch_id = await start_batch(daemon, write_batch_dir(tmp_path / "batch-k", names))

    async def scenario():
        app = CofiApp(Settings(daemon.target, VIEW, batch_id), backoff=(0.1, 0.5), idle_timeout=5.0)
        seen: list[dict] = []

        def sample() -> None:
            if app.model is not None and app.model.snapshotted:
                seen.append(
                    {
                        s: (c.done, c.failed, c.skipped, c.retries)
                        for s, c in app.model.cards.items()
                    }
                )

        async def until(cond, what, timeout=60.0):
            def check() -> bool:
                sample()
                return cond()

            await wait_until(pilot, check, timeout=timeout, what=what)

        async with app.run_test(size=(160, 48)) as pilot:
            await until(
                lambda: (
                    app.model is not None
                    and app.model.snapshotted
                    and app.model.cards["ivr"].done >= 8
                ),
                "IVR half done",
            )
            await in_trio(daemon, daemon.shutdown)
            await until(lambda: "daemon unreachable since" in banner(app), "unreachable banner")
            before = dict(seen[-1])
            await in_trio(daemon, daemon.start)
            await until(
                lambda: (
                    app.model.completed
                    and all(c.status == COMPLETE for c in app.model.cards.values())
                ),
                "Complete",
            )
            await pilot.pause(0.6)
            sample()
            return before, seen

    before, seen = await run_app(scenario)
    after = seen[-1]
    for stage in before:  # never backwards, never "skipped" for files done before
        series = [s[stage] for s in seen]
        assert all(
            a[0] <= b[0] and a[3] <= b[3] for a, b in zip(series, series[1:], strict=False)
        ), (stage, series)
        assert all(s[2] == 0 for s in series), (stage, series)
    assert before["ivr"][0] >= 8 and after["ivr"][:3] == (24, 0, 0)
    batch = await rpc(daemon, "GetBatch", pb.GetBatchRequest(batch_id=batch_id), VIEW)
    assert after == {s.stage: (s.done, s.failed, s.skipped, s.retries) for s in batch.stages}
    pl = t.processing_logs
    retries = await daemon.app.db.read(
        lambda c: dict(
            c.execute(
                sa.select(pl.c.stage_name, sa.func.count())
                .where(pl.c.batch_id == batch_id, pl.c.status == "retry")
                .group_by(pl.c.stage_name)
            ).all()
        )
    )
    assert {s: v[3] for s, v in after.items() if v[3]} == retries and retries["ivr"] > 0
    last = await daemon.app.db.read(
        lambda c: c.execute(
            sa.select(sa.func.max(pl.c.created_at)).where(
                pl.c.batch_id == batch_id, pl.c.status == "success"
            )
        ).scalar()
    )
    got = batch.last_file_finished_at.ToDatetime()
    assert abs((got - last).total_seconds()) < 0.001
