"""One pipeline stage: status badge, progress bar, done/failed/total and files per minute."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widget import Widget

from tui.model import COMPLETE, IN_PROGRESS, StageCard
from tui.rates import stage_rate

SHORT = {"file_distribution": "Distribution", "callmetadata": "Call meta",
         "trademetadata": "Trade meta"}
BADGE = {COMPLETE: ("✔ Complete", "green"), IN_PROGRESS: ("▶ Running", "yellow")}


def bar(fraction: float, width: int) -> Text:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    style = "green" if fraction >= 1.0 else "dodger_blue2"
    return Text.assemble(("━" * filled, style), ("━" * (width - filled), "grey35"))


class StageCardWidget(Widget, can_focus=True):
    """Focus or click a card to show its last 20 events below."""

    class Selected(Message):
        def __init__(self, stage: str) -> None:
            super().__init__()
            self.stage = stage

    def __init__(self, stage: str) -> None:
        super().__init__(id=f"card-{stage}", classes="stage-card")
        self.stage = stage
        self.card: StageCard | None = None
        self.now: datetime | None = None

    def show(self, card: StageCard, now: datetime | None) -> None:
        self.card, self.now = card, now
        self.border_title = card.title if self.size.width >= 20 or not self.size.width else (
            SHORT.get(card.stage, card.title))
        text, colour = (("○ off", "grey50") if card.disabled
                        else BADGE.get(card.status, ("· Pending", "grey50")))
        self.border_subtitle = f"[{colour}]{text}[/]"
        for cls in ("-pending", "-running", "-complete", "-failing"):
            self.remove_class(cls)
        self.add_class("-pending" if card.disabled else {
            COMPLETE: "-complete", IN_PROGRESS: "-running"}.get(card.status, "-pending"))
        if card.failed:
            self.add_class("-failing")
        self.refresh()

    def render(self) -> Text:
        c = self.card
        width = max(4, self.size.width - 2)
        if c is None:
            return Text("")
        if c.disabled:  # the plan skips it: no numbers that could pass for a finished stage
            return Text("off for this batch", style="grey50")
        pct = f"{c.fraction * 100:3.0f}%"
        lines = [
            Text.assemble(bar(c.fraction, max(1, width - len(pct) - 1)), " ", pct),
            Text.assemble((f"✔{c.done}", "green"), " ",
                          (f"✘{c.failed}", "red" if c.failed else "grey50"),
                          (f" ↻{c.retries}" if c.retries else "", "dark_orange"), f" /{c.total}"),
            Text(f"{stage_rate(c, self.now):.1f} files/min", style="grey70"),
        ]
        if self.size.height >= 4:
            lines.append(Text(f"skipped {c.skipped}", style="grey50"))
        if self.size.height >= 5 and c.recent:
            last = c.recent[-1]
            lines.append(Text(f"{last.event_type} {last.file_name}".strip(), style="grey50",
                              overflow="ellipsis", no_wrap=True))
        return Text("\n").join(lines)

    def on_focus(self) -> None:
        self.post_message(self.Selected(self.stage))

    def on_click(self) -> None:
        self.focus()
