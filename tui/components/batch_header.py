"""The batch line (date, number, source, files, elapsed, ETA) and the connection badge."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from tui.model import BatchModel, format_duration
from tui.rates import eta as batch_eta
from tui.rates import human_status

CONN = {"connected": ("● connected", "green"), "connecting": ("◌ connecting", "yellow"),
        "reconnecting": ("◌ reconnecting", "yellow"), "auth-failed": ("✘ not allowed", "red")}


class BatchHeader(Static):
    def show(self, model: BatchModel | None, now: datetime | None, conn: str,
             conn_detail: str, follow: bool, stalled: bool = False) -> None:
        label, colour = CONN.get(conn, (conn, "yellow"))
        right = Text.assemble((label, f"bold {colour}"), (f" {conn_detail}" if conn_detail
                                                          else "", "grey70"),
                              ("  ⟳ following" if follow else "", "cyan"))
        if model is None:
            self.update(Text.assemble(("No batch yet", "bold"), "  ", right))
            return
        i = model.info
        status = human_status(model)
        # no ETA while nothing finishes: a rate from before the stall would be a guess
        eta = ("done" if model.completed else "— (stalled)" if stalled
               else format_duration(batch_eta(model, now)))
        line1 = Text.assemble(
            (f"Batch {i.batch_date or '?'} #{i.batch_number or '?'}", "bold"),
            (f" id {model.batch_id}", "grey70"), " · ", (i.source or "—", "cyan"),
            f" · {i.total_files} files   ", right)
        line2 = Text.assemble(
            ("elapsed ", "grey70"), format_duration(model.elapsed(now)),
            ("  ETA ", "grey70"), eta, "  ",
            (status, "bold green" if model.completed else "bold yellow"),
            (f"  {model.failed_files} failed" if model.failed_files else "", "bold red"),
            (f"  {model.retries} retries" if model.retries else "", "dark_orange"))
        self.update(Text.assemble(line1, "\n", line2))
