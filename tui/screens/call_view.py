"""One trade's verdict and its call: reason, field by field booked vs heard, the evidence
segments, then the call (GetCall): status, transcript with times, what LLM1 extracted,
the trades booked against it and the audit answers.

Everything from the daemon is shown as text (tui/text.py), never as markup."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.text import plain
from tui.verdict_model import VERDICT_STYLE, CallDetail, VerdictRow


def verdict_text(v: VerdictRow) -> Text:
    parts: list[Text | str] = [
        Text("Trade ", "bold"),
        plain(v.trade_id, "bold"),
        f"  batch {v.batch_id}  ",
        plain(v.verdict, VERDICT_STYLE.get(v.verdict, "")),
        "\nreason: ",
        plain(v.reason),
    ]
    if v.fields:
        parts.append(Text("\n\nfield        booked          heard           agree", "bold"))
    for f in v.fields:
        parts += [
            "\n",
            plain(f"{f.field:<12} {f.booked or '—':<15} {f.heard or '—':<15} "),
            Text("yes" if f.agree else "NO", "green" if f.agree else "bold red"),
            plain(f"  {f.note}" if f.note else ""),
        ]
    if v.evidence:
        parts.append(Text("\n\nevidence", "bold"))
    for s in v.evidence:
        parts += [f"\n[{s.start:7.1f} – {s.end:7.1f}] ", plain(s.text)]
    return Text.assemble(*parts)


def call_text(c: CallDetail) -> Text:
    parts: list[Text | str] = [
        Text("Call ", "bold"),
        plain(c.audio_name, "bold"),
        f"  {c.duration_s:.1f} s  ",
        plain(c.lang),
        "  ",
        plain(c.status),
    ]
    if c.failed_stage:
        parts += ["\nfailed: ", plain(f"{c.failed_stage}: {c.failure_reason}", "red")]
    sections = [
        (
            "transcript",
            [
                Text.assemble(
                    f"[{s.start:7.1f} – {s.end:7.1f}] ",
                    plain(f"{s.speaker}: " if s.speaker else ""),
                    plain(s.text),
                )
                for s in c.transcript
            ],
        ),
        ("extracted trades (LLM1)", [plain(x) for x in c.extracted]),
        ("booked trades mapped to the call", [plain(m) for m in c.mapped]),
        ("audit answers", [Text.assemble(plain(q), " → ", plain(a)) for q, a in c.answers]),
    ]
    for title, lines in sections:
        parts += ["\n\n", Text(f"{title} ({len(lines)})", "bold")]
        for line in lines:
            parts += ["\n  ", line]
    return Text.assemble(*parts)


class CallScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("r", "reaudit", "Reaudit…")]

    def __init__(self, verdict: VerdictRow) -> None:
        super().__init__(id="call-view")
        self.verdict = verdict

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="call-scroll"):
            yield Static(verdict_text(self.verdict), id="call-verdict")
            yield Static(id="call-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#call-scroll").focus()
        if self.verdict.audio_name:
            self.load()
        else:
            self.query_one("#call-detail", Static).update(
                Text("\nNo call: the trade maps to no recorded call.", "yellow")
            )

    def action_reaudit(self) -> None:
        """Re-run chosen stages of this call, after a confirmation (tui.actions)."""
        from tui.actions import ask_reaudit

        if self.verdict.audio_name:
            ask_reaudit(self.app, self.verdict.audio_name)

    @work(exclusive=True, group="call")
    async def load(self) -> None:
        detail = self.query_one("#call-detail", Static)
        try:
            c = await self.app.client.get_call(  # type: ignore[attr-defined]
                self.verdict.audio_name, self.verdict.batch_id
            )
        except Exception as exc:  # noqa: BLE001 - shown; the screen stays usable
            from tui.client import describe_error

            detail.update(plain(describe_error(exc), "red"))
            return
        detail.update(Text.assemble("\n", call_text(c)))
