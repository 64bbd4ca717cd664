"""Operator actions, each behind a confirmation (tui.screens.confirm): reaudit chosen
stages of a call, cancel the dashboard batch's task. They send the operator token
(--operator-token-file or $COFI_OPERATOR_TOKEN, tui.config), never the viewer's: without
one the key says so in one line (NEED_OPERATOR) and nothing is sent; a token the daemon
refuses for the action (a viewer token given as the operator's) is said in one line
("auth refused (viewer token?)"), in the words the banner uses (tui.health.explain_auth).
Results and refusals are toasts."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui.client import explain_link, explain_refusal, is_auth_error
from tui.screens.confirm import ConfirmScreen, ReauditScreen
from tui.text import plain_str

NEED_OPERATOR = (
    "{what} needs an operator token: --operator-token-file PATH or $COFI_OPERATOR_TOKEN; "
    "nothing sent"
)


def _why(app: Any, exc: BaseException) -> str:
    """One line for a failed action: the operator token's refusal, or the link's."""
    s = app.settings
    if is_auth_error(exc):
        return explain_refusal(exc, s.operator_token is not None, s.operator_token_source)
    return explain_link(exc, s.target, s.operator_token_source)


def _no_operator_token(app: Any, what: str) -> bool:
    """Without an operator token: say so in one line (nothing is sent) and True."""
    if app.settings.operator_token is not None:
        return False
    app.notify(NEED_OPERATOR.format(what=what), severity="warning", markup=False)
    return True


def ask_reaudit(app: Any, audio_name: str) -> None:
    if _no_operator_token(app, "Reaudit"):
        return

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
    if _no_operator_token(app, "Cancel"):
        return

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
