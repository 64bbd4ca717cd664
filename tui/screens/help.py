"""`?`: the keys and what the colours mean, over the current screen; any key closes it."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("d", "dashboard"),
    ("←/→", "previous / next stage card"),
    ("a", "all stages' events"),
    ("/", "filter events: file: stage: type: gpu: status: or any text (Esc clears)"),
    ("Enter", "open the event under the cursor (it stays put while events slide in)"),
    ("e", "errors, grouped by stage, GPU and cause"),
    ("g", "GPU hosts"),
    ("b", "batches"),
    ("t", "trades that need a person"),
    ("x", "export the events in view"),
    ("f", "follow the newest batch"),
    ("?", "this help"),
    ("q", "quit"),
)
LEGEND = (
    ("✔ Complete", "green", "stage finished (green border)"),
    ("▶ Running", "yellow", "stage running (yellow border)"),
    ("· Pending", "grey50", "stage not started"),
    ("○ off", "grey50", "the batch's plan skips the stage"),
    ("✘n", "red", "files failed after their retries (red border)"),
    ("↻n", "dark_orange", "attempts retried (not failures)"),
    ("✘ banner", "bold white on dark_red", "stalled, GPUs all down, daemon unreachable, refused"),
    ("⚠ banner", "bold black on dark_orange", "some GPU hosts down"),
    ("▮▯", "dodger_blue2", "a GPU's slots: busy / free; err = failed share of requests"),
)


def help_text() -> Text:
    out = Text.assemble(("Keys\n", "bold"))
    for key, what in KEYS:
        out.append_text(Text.assemble((f"  {key:<6}", "bold cyan"), f"{what}\n"))
    out.append_text(Text.assemble(("\nColours\n", "bold")))
    for sample, style, what in LEGEND:
        out.append_text(
            Text.assemble("  ", (sample, style), " " * max(1, 11 - len(sample)), f"{what}\n")
        )
    out.append_text(Text("\nany key closes", style="grey50"))
    return out


class HelpScreen(ModalScreen[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text(), id="help-text")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss()
