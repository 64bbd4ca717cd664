"""The TUI against a real cofid running a batch: cards reach Complete with the database's
counts, the event modal shows a real payload, and a daemon restart mid-batch loses and
duplicates nothing."""

from __future__ import annotations

import json
import os

import grpc
import sqlalchemy as sa
import trio

from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc
from tests.tui.conftest import OP, VIEW, batch_dir, in_trio, run_app, wait_until
from tui.app import CofiApp
from tui.components.event_table import EventTable
from tui.config import Settings
from tui.model import COMPLETE, STAGES
from tui.screens.event_detail import EventDetailScreen


async def rpc(d, method: str, request, token: str = OP):
    def call():
        with grpc.insecure_channel(d.target) as ch:
            fn = getattr(pb_grpc.CofiStub(ch), method)
            return fn(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)

    return await trio.to_thread.run_sync(call)


async def db_event_ids(d, batch_id: int) -> list[int]:
    tbl = t.batch_execution_log
    return await d.app.db.read(lambda c: list(c.execute(
        sa.select(tbl.c.id).where(tbl.c.batchId == batch_id).order_by(tbl.c.id)).scalars()))


def card_counts(app) -> dict:
    return {s: (c.status, c.total, c.done, c.failed) for s, c in app.model.cards.items()}


def app_for(d, batch_id: int | None = None) -> CofiApp:
    return CofiApp(Settings(d.target, VIEW, batch_id), backoff=(0.1, 0.5), idle_timeout=5.0)


async def test_follows_a_new_batch_to_complete_and_shows_a_real_payload(daemon, tmp_path):
    d = batch_dir(tmp_path, 10)
    names = sorted(p.name for p in d.iterdir())

    async def scenario():
        app = app_for(daemon)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.global_live, what="all-batches stream")
            ref = await in_trio(daemon, lambda: rpc(daemon, "StartBatch",
                                                    pb.StartBatchRequest(directory=str(d))))
            await wait_until(pilot, lambda: app.model is not None, what="follow new batch")
            await wait_until(pilot, lambda: app.model.completed and all(
                c.status == COMPLETE for c in app.model.cards.values()), what="Complete")
            await pilot.pause(0.6)  # the final GetBatch reconciliation and a redraw
            app.screen.refresh_view()
            if os.environ.get("COFI_TUI_SCREENSHOT"):
                app.save_screenshot(os.environ["COFI_TUI_SCREENSHOT"])
            # the STT card, then the newest STT file_complete in the table -> detail modal
            await pilot.click("#card-stt")
            await pilot.pause(0.3)
            assert app.screen.stage == "stt"
            table = app.screen.query_one(EventTable)
            table.focus()
            rows = [table._events[str(k.value)] for k in table.rows]
            idx = next(i for i, e in enumerate(rows) if e.event_type == "file_complete")
            table.move_cursor(row=idx)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, EventDetailScreen),
                             what="detail modal")
            detail = app.screen
            text = detail.query_one("#detail-text").text
            await pilot.press("escape")
            return (ref.task_id, app.model.batch_id, card_counts(app), [e.id for e in app.model.events],
                    detail.event, text, app.model.info)

    task_id, batch_id, cards, ids, ev, text, info = await run_app(scenario)
    task = await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=task_id), VIEW)
    assert task.batch_id == batch_id and task.state == "completed"
    batch = await rpc(daemon, "GetBatch", pb.GetBatchRequest(batch_id=batch_id), VIEW)
    want = {s.stage: (s.status, s.total, s.done, s.failed) for s in batch.stages}
    assert cards == want
    assert cards["stt"] == (COMPLETE, 10, 10, 0)
    calls = await daemon.app.db.read(lambda c: c.execute(sa.select(sa.func.count()).select_from(
        t.call).where(t.call.c.batchId == batch_id)).scalar())
    assert calls == 10 == info.total_files and info.status == "Completed"
    assert ids == await db_event_ids(daemon, batch_id)  # every event, once, in order
    assert ev.stage == "stt" and ev.event_type == "file_complete" and ev.file_name in names
    assert ev.payload and ev.response
    assert json.dumps(json.loads(ev.response), indent=2, ensure_ascii=False) in text
    assert "── payload ──" in text and "── response ──" in text


async def test_daemon_restart_mid_batch_no_gap_no_duplicate(daemon, tmp_path):
    daemon.fake.latency_s = 0.15
    d = batch_dir(tmp_path, 24, prefix="r")
    ref = await rpc(daemon, "StartBatch", pb.StartBatchRequest(directory=str(d)))
    with trio.fail_after(10):
        while not ref.batch_id:
            await trio.sleep(0.05)
            ref = await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)

    async def scenario():
        app = app_for(daemon, ref.batch_id)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.model is not None and len(app.model.events) >= 20,
                             what="first events")
            assert not app.model.completed
            await in_trio(daemon, daemon.shutdown)
            def header_text() -> str:
                return str(app.screen.query_one("#batch-header").render())

            # the state changes at once, the header on the next redraw (every 0.25 s)
            await wait_until(pilot, lambda: app.conn_state == "reconnecting"
                             and "reconnecting" in header_text(), what="reconnecting shown")
            header = header_text()
            await pilot.pause(0.3)  # still responsive while the daemon is down
            await in_trio(daemon, daemon.start)
            await wait_until(pilot, lambda: app.model.completed and all(
                c.status == COMPLETE for c in app.model.cards.values()), timeout=60,
                what="Complete after restart")
            await wait_until(pilot, lambda: app.conn_state == "connected", what="connected")
            await pilot.pause(0.6)
            return [e.id for e in app.model.events], card_counts(app), app.reconnects, header

    ids, cards, reconnects, header = await run_app(scenario)
    assert reconnects >= 1 and "reconnecting" in header
    assert ids == await db_event_ids(daemon, ref.batch_id)
    assert len(ids) == len(set(ids))
    batch = await rpc(daemon, "GetBatch", pb.GetBatchRequest(batch_id=ref.batch_id), VIEW)
    assert cards == {s.stage: (s.status, s.total, s.done, s.failed) for s in batch.stages}
    assert set(cards) == set(STAGES)
    assert cards["llm2"][:3] == (COMPLETE, 24, 24)
