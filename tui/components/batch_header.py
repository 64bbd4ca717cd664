"""The batch line (date, number, source, files, elapsed, ETA) and the connection badge."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from tui.model import BatchModel, format_duration

CONN = {"connected": ("● connected", "green"), "connecting": ("◌ connecting", "yellow"),
        "reconnecting": ("◌ reconnecting", "yellow"), "auth-failed": ("✘ not allowed", "red")}


class BatchHeader(Static):
    def show(self, model: BatchModel | None, now: datetime | None, conn: str,
             conn_detail: str, follow: bool) -> None:
        label, colour = CONN.get(conn, (conn, "yellow"))
        right = Text.assemble((label, f"bold {colour}"), (f" {conn_detail}" if conn_detail
                                                          else "", "grey70"),
                              ("  ⟳ following" if follow else "", "cyan"))
        if model is None:
            self.update(Text.assemble(("No batch yet", "bold"), "  ", right))
            return
        i = model.info
        status = "Completed" if model.completed else (i.status or "—")
        eta = "done" if model.completed else format_duration(model.eta(now))
        line1 = Text.assemble(
            (f"Batch {i.batch_date or '?'} #{i.batch_number or '?'}", "bold"),
            (f" id {model.batch_id}", "grey70"), " · ", (i.source or "—", "cyan"),
            f" · {i.total_files} files   ", right)
        line2 = Text.assemble(
            ("elapsed ", "grey70"), format_duration(model.elapsed(now)),
            ("  ETA ", "grey70"), eta, "  ",
            (status, "bold green" if model.completed else "bold yellow"),
            (f"  {len(model.errors)} failed" if model.errors else "", "bold red"))
        self.update(Text.assemble(line1, "\n", line2))
