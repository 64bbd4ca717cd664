"""Operator actions behind a confirmation: reaudit chosen stages of a call from the call
view (fake daemon: exactly the request sent, nothing sent on cancel), and cancelling the
batch's task against a real cofid: refused in one line for a viewer token, done with an
operator token.

The actions send the operator token (--operator-token-file / $COFI_OPERATOR_TOKEN), never
the viewer's: without one the keys say so in one line and send nothing; a viewer token
given as the operator's is refused by the real daemon and said as "auth refused (viewer
token?)"."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest
import trio

from protos.cofi.v1 import cofi_pb2 as pb
from tests.tui.conftest import OP, VIEW, run_app, wait_until, write_batch_dir
from tests.tui.fakes import FILES, NOW, SETTINGS, FakeClient
from tests.tui.test_live import rpc
from tests.tui.test_live_health import start_batch
from tui.actions import NEED_OPERATOR
from tui.app import CofiApp
from tui.client import CofiClient
from tui.config import Settings, parse_args
from tui.screens.call_view import CallScreen
from tui.screens.confirm import ConfirmScreen, ReauditScreen
from tui.verdict_model import VerdictRow

OPERATOR = replace(SETTINGS, operator_token="op-fake", operator_token_source="test")


def run_fake(scenario, client: FakeClient, settings: Settings = OPERATOR):
    app = CofiApp(settings, client_factory=lambda s: client, clock=lambda: NOW, gpu_refresh_s=0)

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


def test_without_an_operator_token_the_action_keys_say_so_and_send_nothing():
    client = FakeClient()

    async def scenario(app, pilot):
        await pilot.press("c")  # dashboard: cancel the batch's task
        await pilot.pause(0.3)
        on_dashboard = not isinstance(app.screen, ConfirmScreen)
        app.push_screen(CallScreen(VerdictRow(30, "T1", "mismatch", "a.wav", "qty")))
        await pilot.pause(0.3)
        await pilot.press("r")  # call view: reaudit
        await pilot.pause(0.3)
        return on_dashboard, app.screen, [n.message for n in app._notifications]

    on_dashboard, screen, notes = run_fake(scenario, client, SETTINGS)
    assert on_dashboard and isinstance(screen, CallScreen)  # no confirmation opened
    assert client.actions == []  # nothing sent, not even the task lookup
    assert notes == [NEED_OPERATOR.format(what="Cancel"), NEED_OPERATOR.format(what="Reaudit")]
    assert notes[1] == ("Reaudit needs an operator token: --operator-token-file PATH or "
                        "$COFI_OPERATOR_TOKEN; nothing sent")


def test_the_operator_token_is_read_once_from_its_file_or_the_environment(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("COFI_TOKEN", raising=False)
    monkeypatch.delenv("COFI_OPERATOR_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    view, op = tmp_path / "view.token", tmp_path / "op.token"
    view.write_text("view-123\n")
    op.write_text("  op-456\n")
    view.chmod(0o600)
    op.chmod(0o600)
    s = parse_args(["--target", "unix:/x.sock", "--token-file", str(view),
                    "--operator-token-file", str(op)])
    assert (s.token, s.operator_token) == ("view-123", "op-456")
    assert s.operator_token_source == f"--operator-token-file {op}"
    assert "op-456" not in repr(s) and "view-123" not in repr(s)
    op.write_text("changed")  # read once: the settings keep what was read at start
    assert s.operator_token == "op-456"
    monkeypatch.setenv("COFI_OPERATOR_TOKEN", "op-env")
    s = parse_args(["--target", "unix:/x.sock"])
    assert (s.token, s.operator_token, s.operator_token_source) == (
        None, "op-env", "$COFI_OPERATOR_TOKEN")
    monkeypatch.delenv("COFI_OPERATOR_TOKEN")
    assert parse_args(["--target", "unix:/x.sock"]).operator_token is None
    (tmp_path / "empty").write_text("")
    with pytest.raises(SystemExit):  # refused in one line, as cofictl refuses it
        parse_args(["--target", "unix:/x.sock", "--operator-token-file",
                    str(tmp_path / "empty")])


async def test_cancel_task_needs_confirmation_and_an_operator_token(daemon, tmp_path):
    daemon.fake.latency_s = 0.3  # slow enough to still run when we cancel
    names = [f"x{i:03d}.wav" for i in range(80)]  # still running after four sessions
    batch_id = await start_batch(daemon, write_batch_dir(tmp_path / "batch-x", names))

    def session(operator: str | None, answer: str):
        async def scenario():
            app = CofiApp(
                Settings(daemon.target, VIEW, batch_id, operator_token=operator,
                         operator_token_source="test"),
                backoff=(0.1, 0.5), idle_timeout=5.0,
            )
            async with app.run_test(size=(80, 24), notifications=True) as pilot:
                await wait_until(
                    pilot, lambda: app.model is not None and app.model.snapshotted, what="batch"
                )
                await pilot.press("c")
                if operator is None:
                    await wait_until(pilot, lambda: len(app._notifications) > 0, what="toast")
                    await pilot.pause(0.3)
                    assert not isinstance(app.screen, ConfirmScreen)
                    return [n.message for n in app._notifications]
                await wait_until(
                    pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation"
                )
                await pilot.press(answer)
                await pilot.pause(0.2)
                if answer == "y":
                    # The action's own toast: the batch's cancel event may toast first.
                    await wait_until(
                        pilot,
                        lambda: any(n.message.startswith(("Task ", "Not cancelled"))
                                    for n in app._notifications),
                        timeout=30,
                        what="the action's toast",
                    )
                return [n.message for n in app._notifications]

        return scenario

    assert await run_app(session(None, "y")) == [NEED_OPERATOR.format(what="Cancel")]
    assert await run_app(session(OP, "escape")) == []  # "Keep it": nothing sent
    tasks = await rpc(daemon, "ListTasks", pb.ListTasksRequest(kinds=["batch"]), VIEW)
    task = next(t for t in tasks.tasks if t.batch_id == batch_id)
    assert task.state == "running"
    refused = await run_app(session(VIEW, "y"))  # a viewer token as the operator's
    assert len(refused) == 1 and refused[0].startswith(
        "Not cancelled: auth refused (viewer token?): "
    )
    done = await run_app(session(OP, "y"))
    # the reply's state (cancelled, or running while it stops), beside the batch's own
    # event, which may come first over WatchEvents
    replies = [m for m in done if m.startswith("Task ")]
    assert len(replies) == 1
    assert replies[0] in (f"Task {task.task_id}: cancelled", f"Task {task.task_id}: running")
    with trio.fail_after(30):
        while (
            await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=task.task_id), VIEW)
        ).state != "cancelled":
            await trio.sleep(0.1)


async def test_reaudit_with_a_viewer_token_is_refused_by_the_daemon_in_one_line(daemon, tmp_path):
    names = FILES[:2]
    batch_id = await start_batch(daemon, write_batch_dir(tmp_path / "batch-r", names))

    def session(operator: str | None):
        async def scenario():
            app = CofiApp(
                Settings(daemon.target, VIEW, batch_id, operator_token=operator,
                         operator_token_source="--operator-token-file view.token"),
                backoff=(0.1, 0.5), idle_timeout=5.0,
            )
            async with app.run_test(size=(80, 24), notifications=True) as pilot:
                await wait_until(
                    pilot, lambda: app.model is not None and app.model.snapshotted, what="batch"
                )
                app.push_screen(CallScreen(VerdictRow(batch_id, "T1", "mismatch", names[0], "")))
                await pilot.pause(0.3)
                await pilot.press("r")
                if operator is not None:
                    await wait_until(
                        pilot, lambda: isinstance(app.screen, ReauditScreen), what="stages"
                    )
                    app.screen.query_one("#reaudit-stages").select("llm2")
                    await pilot.click("#confirm-yes")
                await wait_until(
                    pilot, lambda: len(app._notifications) > 0, timeout=30, what="toast"
                )
                await pilot.pause(0.2)
                return [n.message for n in app._notifications]

        return scenario

    assert await run_app(session(None)) == [NEED_OPERATOR.format(what="Reaudit")]
    refused = await run_app(session(VIEW))
    assert len(refused) == 1 and refused[0].startswith(
        "Reaudit not started: auth refused (viewer token?): "
    ), refused
    tasks = await rpc(daemon, "ListTasks", pb.ListTasksRequest(kinds=["reaudit"]), VIEW)
    assert list(tasks.tasks) == []  # neither session started one


async def test_the_client_sends_the_operator_token_only_with_the_actions(daemon):
    """Against the real daemon: the viewer token reads, the actions send the operator's
    (a viewer-only client is refused Reaudit; one with an operator token is not)."""

    async def calls():
        viewer_only = CofiClient(daemon.target, VIEW)
        both = CofiClient(daemon.target, VIEW, operator_token=OP)
        try:
            await both.list_gpus()  # reads go with the viewer token
            try:
                await viewer_only.reaudit(["nope.wav"], ["llm2"])
                refused = None
            except grpc.aio.AioRpcError as exc:
                refused = exc.code()
            try:
                await both.reaudit(["nope.wav"], ["llm2"])
                answered = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                answered = exc.code()
            return refused, answered
        finally:
            await viewer_only.close()
            await both.close()

    refused, answered = await trio.to_thread.run_sync(lambda: asyncio.run(calls()))
    # no operator token: no authorization at all (UNAUTHENTICATED); with it, the request
    # reaches the handler (an unknown call is NOT_FOUND / INVALID_ARGUMENT, not an auth error)
    assert refused == grpc.StatusCode.UNAUTHENTICATED
    assert answered not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
