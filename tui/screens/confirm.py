"""Confirmations for operator actions: nothing is sent to the daemon until the operator
says yes. ConfirmScreen answers True / False; ReauditScreen the chosen stages (or None)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static

REAUDIT_STAGES = ("lid", "stt", "llm1", "llm2")  # what ReauditRequest.stages accepts


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "no", "No"), Binding("y", "yes", "Yes")]

    def __init__(self, question: Text, yes: str) -> None:
        super().__init__(classes="confirm")
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.yes, variant="error", id="confirm-yes")
                yield Button("Keep it", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class ReauditScreen(ModalScreen[list[str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, audio_name: str) -> None:
        super().__init__(classes="confirm")
        self.audio_name = audio_name

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(
                Text.assemble(
                    "Reaudit ",
                    (self.audio_name, "bold"),
                    " — re-run these stages (every batch's call of that name):",
                ),
                id="confirm-question",
            )
            yield SelectionList[str](*[(s.upper(), s) for s in REAUDIT_STAGES], id="reaudit-stages")
            with Horizontal(id="confirm-buttons"):
                yield Button("Reaudit", variant="warning", id="confirm-yes")
                yield Button("Cancel", id="confirm-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "confirm-yes":
            self.dismiss(None)
            return
        chosen = list(self.query_one(SelectionList).selected)
        if not chosen:
            self.notify("Choose at least one stage", severity="warning")
            return
        self.dismiss([s for s in REAUDIT_STAGES if s in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)
