"""Operator actions behind a confirmation: reaudit chosen stages of a call from the call
view (fake daemon: exactly the request sent, nothing sent on cancel), and cancelling the
batch's task against a real cofid: refused in one line for a viewer token, done with an
operator token."""

from __future__ import annotations

import asyncio

import grpc
import trio

from protos.cofi.v1 import cofi_pb2 as pb
from tests.tui.conftest import OP, VIEW, run_app, wait_until, write_batch_dir
from tests.tui.fakes import NOW, SETTINGS, FakeClient
from tests.tui.test_live import rpc
from tests.tui.test_live_health import start_batch
from tui.app import CofiApp
from tui.config import Settings
from tui.screens.call_view import CallScreen
from tui.screens.confirm import ConfirmScreen, ReauditScreen
from tui.verdict_model import VerdictRow


def run_fake(scenario, client: FakeClient):
    app = CofiApp(SETTINGS, client_factory=lambda s: client, clock=lambda: NOW, gpu_refresh_s=0)

    async def main():
        async with app.run_test(size=(100, 30)) as pilot:
            while app.model is None or not app.model.completed or app.gpus is None:
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            return await scenario(app, pilot)

    return asyncio.run(main())


def test_reaudit_sends_only_the_chosen_stages_after_confirmation():
    client = FakeClient()

    async def scenario(app, pilot):
        app.push_screen(CallScreen(VerdictRow(30, "T1", "mismatch", "a[b].wav", "qty")))
        await pilot.pause(0.3)
        await pilot.press("r")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ReauditScreen)
        await pilot.press("escape")  # changed my mind: nothing is sent
        await pilot.pause(0.2)
        sent_after_cancel = list(client.actions)
        await pilot.press("r")
        await pilot.pause(0.3)
        sl = app.screen.query_one("#reaudit-stages")
        sl.select("llm2")
        sl.select("stt")
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: client.actions, what="Reaudit sent")
        await pilot.pause(0.2)
        return sent_after_cancel, [n.message for n in app._notifications], app.screen

    before, notes, screen = run_fake(scenario, client)
    assert before == [] and client.actions == [("Reaudit", ("a[b].wav",), ("stt", "llm2"))]
    assert "Reaudit of a[b].wav (stt, llm2): task task-r1" in notes
    assert isinstance(screen, CallScreen)


def test_refused_reaudit_is_said_in_one_line():
    client = FakeClient()
    client.refuse = grpc.aio.AioRpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="token 'view' has role viewer; Reaudit needs operator",
    )

    async def scenario(app, pilot):
        app.push_screen(CallScreen(VerdictRow(30, "T1", "mismatch", "a.wav", "qty")))
        await pilot.pause(0.3)
        await pilot.press("r")
        await pilot.pause(0.3)
        app.screen.query_one("#reaudit-stages").select("lid")
        await pilot.click("#confirm-yes")
        await wait_until(pilot, lambda: len(app._notifications) > 0, what="toast")
        return [n.message for n in app._notifications]

    notes = run_fake(scenario, client)
    assert notes == [
        "Reaudit not started: auth refused (viewer token?): token 'view' has "
        "role viewer; Reaudit needs operator"
    ]


async def test_cancel_task_needs_confirmation_and_an_operator_token(daemon, tmp_path):
    daemon.fake.latency_s = 0.3  # slow enough to still run when we cancel
    names = [f"x{i:03d}.wav" for i in range(40)]
    batch_id = await start_batch(daemon, write_batch_dir(tmp_path / "batch-x", names))

    def session(token: str, answer: str):
        async def scenario():
            app = CofiApp(
                Settings(daemon.target, token, batch_id), backoff=(0.1, 0.5), idle_timeout=5.0
            )
            async with app.run_test(size=(80, 24), notifications=True) as pilot:
                await wait_until(
                    pilot, lambda: app.model is not None and app.model.snapshotted, what="batch"
                )
                await pilot.press("c")
                await wait_until(
                    pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation"
                )
                await pilot.press(answer)
                await pilot.pause(0.2)
                if answer == "y":
                    await wait_until(
                        pilot, lambda: len(app._notifications) > 0, timeout=30, what="toast"
                    )
                return [n.message for n in app._notifications]

        return scenario

    assert await run_app(session(OP, "escape")) == []  # "Keep it": nothing sent
    tasks = await rpc(daemon, "ListTasks", pb.ListTasksRequest(kinds=["batch"]), VIEW)
    task = next(t for t in tasks.tasks if t.batch_id == batch_id)
    assert task.state == "running"
    refused = await run_app(session(VIEW, "y"))
    assert len(refused) == 1 and refused[0].startswith(
        "Not cancelled: auth refused (viewer token?): "
    )
    done = await run_app(session(OP, "y"))
    # the reply's state (cancelled, or running while it stops), then the batch's own event
    assert done[0] in (f"Task {task.task_id}: cancelled", f"Task {task.task_id}: running")
    with trio.fail_after(30):
        while (
            await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=task.task_id), VIEW)
        ).state != "cancelled":
            await trio.sleep(0.1)
