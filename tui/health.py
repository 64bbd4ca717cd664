"""The health banner's lines, from what the daemon reports (pure: no textual, no grpc).

Each line is a fact, never a guess from missing events:
- the link: "daemon unreachable since HH:MM:SS" (the first failed attempt of this outage)
  or why the daemon refused us ("no token", "wrong token", "auth refused"), in the words
  cofictl uses for the same errors (cofid.ctl.connect.from_rpc_error);
- a stall: the running batch's last_file_finished_at (GetBatch; a processing_logs time,
  so it survives restarts) is more than `stall_after` ago;
- GPUs: ListGpus says fewer than all hosts are healthy.
While the link is down, the stall and GPU lines are not shown: their facts are stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tui.model import BatchModel, GpuInfo, format_time

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Health:
    """The facts the banner is made of; the app keeps them up to date."""

    conn: str = "connecting"  # connecting | connected | reconnecting | auth-failed
    down_since: datetime | None = None
    link_detail: str = ""  # the last failure, already in cofictl's words
    auth_text: str = ""  # set while the daemon refuses our token
    gpus: tuple[GpuInfo, ...] | None = None  # None: not known (yet)


def explain_auth(code: str, details: str, token_present: bool, token_source: str) -> str:
    """One line for an UNAUTHENTICATED / PERMISSION_DENIED answer."""
    if code == "PERMISSION_DENIED":
        return f"auth refused (viewer token?): {details}"
    if not token_present:
        return "no token: the daemon wants one (--token-file, $COFI_TOKEN or ~/.config/cofi/token)"
    return f"wrong token: {details} (token from {token_source})"


def format_age(age: timedelta) -> str:
    secs = max(0, int(age.total_seconds()))
    return f"{secs} s" if secs < 60 else f"{secs // 60} min"


def stalled_for(
    model: BatchModel | None, now: datetime | None, stall_after: timedelta
) -> timedelta | None:
    """How long no file of the running batch has finished, when over `stall_after`."""
    if model is None or now is None or model.completed or not model.snapshotted:
        return None
    ref = model.info.last_file_finished_at or model.info.created_at
    if ref is None:
        return None
    age = now - ref
    return age if age >= stall_after else None


def banner_lines(
    h: Health, model: BatchModel | None, now: datetime | None, stall_after: timedelta
) -> list[tuple[str, str]]:
    """(text, level) lines, most urgent first; empty when all is well."""
    if h.conn == "auth-failed" and h.auth_text:
        return [(h.auth_text, ERROR)]
    if h.conn in ("reconnecting", "connecting") and h.down_since is not None:
        text = f"daemon unreachable since {format_time(h.down_since)}"
        return [(f"{text} — {h.link_detail}" if h.link_detail else text, ERROR)]
    out: list[tuple[str, str]] = []
    if h.conn != "connected":
        return out
    stall = stalled_for(model, now, stall_after)
    if stall is not None:
        out.append((f"no file finished for {format_age(stall)}", ERROR))
    if h.gpus:
        healthy = sum(1 for g in h.gpus if g.healthy)
        if healthy < len(h.gpus):
            sick = ", ".join(g.name for g in h.gpus if not g.healthy)
            out.append(
                (
                    f"{healthy}/{len(h.gpus)} GPUs healthy ({sick} down)",
                    ERROR if healthy == 0 else WARNING,
                )
            )
    return out
