"""Operator actions, each behind a confirmation (tui.screens.confirm): reaudit chosen
stages of a call, cancel the dashboard batch's task. They need an operator token; a
viewer's is refused and said so in one line ("auth refused (viewer token?)"), in the
words the banner uses (tui.health.explain_auth). Results and refusals are toasts."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui.client import explain_link, explain_refusal, is_auth_error
from tui.screens.confirm import ConfirmScreen, ReauditScreen
from tui.text import plain_str


def _why(app: Any, exc: BaseException) -> str:
    s = app.settings
    if is_auth_error(exc):
        return explain_refusal(exc, s.token is not None, s.token_source)
    return explain_link(exc, s.target, s.token_source)


def ask_reaudit(app: Any, audio_name: str) -> None:
    async def send(stages: list[str]) -> None:
        try:
            task_id = await app.client.reaudit([audio_name], stages)
        except Exception as exc:  # noqa: BLE001 - said in a toast; nothing else changes
            app.notify(
                plain_str(f"Reaudit not started: {_why(app, exc)}"), severity="error", markup=False
            )
            return
        app.notify(
            plain_str(f"Reaudit of {audio_name} ({', '.join(stages)}): task {task_id}"),
            markup=False,
        )

    def chosen(stages: list[str] | None) -> None:
        if stages:
            app.run_worker(send(stages), group="actions")

    app.push_screen(ReauditScreen(audio_name), chosen)


def ask_cancel(app: Any, batch_id: int) -> None:
    async def find_and_confirm() -> None:
        try:
            task_id = await app.client.batch_task(batch_id)
        except Exception as exc:  # noqa: BLE001
            app.notify(
                plain_str(f"No task to cancel: {_why(app, exc)}"), severity="error", markup=False
            )
            return
        if task_id is None:
            app.notify(f"Batch {batch_id} has no queued or running task", severity="warning")
            return

        async def cancel() -> None:
            try:
                state = await app.client.cancel_task(task_id)
            except Exception as exc:  # noqa: BLE001
                app.notify(
                    plain_str(f"Not cancelled: {_why(app, exc)}"), severity="error", markup=False
                )
                return
            app.notify(plain_str(f"Task {task_id}: {state}"), markup=False)

        def answered(yes: bool | None) -> None:
            if yes:
                app.run_worker(cancel(), group="actions")

        question = Text.assemble(
            "Cancel task ",
            (task_id, "bold"),
            f" of batch {batch_id}? Files in flight finish or stop; the batch can be resumed.",
        )
        app.push_screen(ConfirmScreen(question, "Cancel the task"), answered)

    app.run_worker(find_and_confirm(), group="actions")
