"""The dashboard's pictures: the whole batch's progress (ProgressBar), its throughput and
its file failures over the run (Sparklines, tui.series), and one cell strip per GPU host
(busy slots, error rate; from ListGpus)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Sparkline, Static

from tui import series
from tui.model import BatchModel, GpuInfo


class BatchPictures(Horizontal):
    def compose(self) -> ComposeResult:
        yield Static("batch ", classes="pic-label")
        yield ProgressBar(total=100, show_eta=False, id="overall")
        yield Static(id="thr-label", classes="pic-label")
        yield Sparkline([], id="throughput", summary_function=max)
        yield Static(id="err-label", classes="pic-label")
        yield Sparkline([], id="errors-trend", summary_function=max)

    def show(self, model: BatchModel | None, now: datetime | None) -> None:
        bar = self.query_one("#overall", ProgressBar)
        if model is None:
            bar.update(progress=0)
            return
        bar.update(progress=round(model.overall_fraction() * 100, 1))
        self.query_one("#throughput", Sparkline).data = series.throughput(model, now)
        self.query_one("#errors-trend", Sparkline).data = series.errors(model, now)
        fpm = series.last_minute(model, now, failures=False)
        epm = series.last_minute(model, now, failures=True)
        self.query_one("#thr-label", Static).update(Text(f" {fpm}/min", style="grey70"))
        self.query_one("#err-label", Static).update(
            Text(f" ✘{epm}/min", style="red" if epm else "grey50")
        )


class GpuStrip(Static):
    """gpu-a ● ▮▮▯▯ 2/4 err 3% · gpu-b ✘ ▯▯▯▯ 0/4 err 45% — names are daemon text."""

    def show(self, gpus: tuple[GpuInfo, ...] | None) -> None:
        if not gpus:
            self.update(Text("GPUs: —", style="grey50"))
            return
        parts: list[Text] = []
        for g in gpus:
            err_style = (
                "red" if g.error_rate >= 0.2 else "dark_orange" if g.error_rate else ("grey50")
            )
            parts.append(
                Text.assemble(
                    (g.name, "bold"),
                    (" ●" if g.healthy else " ✘", "green" if g.healthy else "bold red"),
                    " ",
                    (series.gpu_cells(g), "dodger_blue2"),
                    (f" {g.slots_in_use}/{g.slots}", "grey70"),
                    (f" err {g.error_rate:.0%}", err_style),
                )
            )
        self.update(Text("  ").join(parts))
