"""The batch's clock offset between the trade system and the call recorder (triaging rule 4).

The trade system and the recorder keep their own clocks; in one batch the trade times run a
constant offset ahead of (or behind) the recorder's, plus a few seconds of jitter per trade.
Most trades are placed while their call is in progress, so the true offset is the shift
that puts the most trades inside a call of their own client:

    offset = argmax over d in [-max_s, +max_s] of #{trades t : t - d in [start, end] of
             some call of t's client whose end is known (stored, or start + duration)}

Calls whose end is only assumed take no part: their assumed end would pull the estimate.
The count is exact, not sampled on a grid: each trade contributes the interval of shifts
[t - end, t - start] for each such call near it, and one sweep over the sorted interval
edges finds the maximum. Of a run of equally good shifts the middle is taken; of several
runs, the one nearest 0. The estimate is 0 when the best shift is no better than no shift,
or when it puts fewer than `min_trades` trades inside calls (too little evidence: a batch of
a handful of trades is never shifted).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol


class KnownEnds(Protocol):
    """One client's calls sorted by start: starts, ends, a running maximum of the ends, and
    whether each end is known (cofid.domain.triaging._ClientCalls)."""

    starts: list[datetime]
    ends: list[datetime]
    max_end: list[datetime]
    end_known: list[bool]


def estimate_offset_s(
    trades: Iterable[tuple[KnownEnds, datetime]], max_s: float, min_trades: int
) -> float:
    """The offset in seconds (trade clock minus recorder clock) to subtract from trade times;
    `trades` are (the client's calls, the trade time) pairs."""
    if max_s <= 0:
        return 0.0
    reach = timedelta(seconds=max_s)
    edges: list[tuple[float, int]] = []  # (shift, +1 opens / -1 closes); opens sort first
    zero_hits = 0
    for calls, t in trades:
        intervals = _shifts_inside(calls, t, reach)
        if not intervals:
            continue
        if len(intervals) > 1:
            intervals = _union(intervals)
        for lo, hi in intervals:
            zero_hits += lo <= 0.0 <= hi
            edges.append((lo if lo > -max_s else -max_s, -1))
            edges.append((hi if hi < max_s else max_s, 1))
    if not edges:
        return 0.0
    # Sorting by (shift, -1 before +1) opens every interval at a shift before any closes.
    edges.sort()
    best, runs = _best_runs(edges)
    if best < min_trades or best <= zero_hits:
        return 0.0
    middle = [(lo + hi) / 2 for lo, hi in runs]
    return min(middle, key=lambda m: (abs(m), m))


def _shifts_inside(calls: KnownEnds, t: datetime, reach: timedelta) -> list[tuple[float, float]]:
    """Shifts d (seconds) that put t - d inside a call with a known end, within ±reach."""
    out: list[tuple[float, float]] = []
    i = bisect_right(calls.starts, t + reach) - 1
    floor = t - reach
    while i >= 0 and calls.max_end[i] >= floor:
        end = calls.ends[i]
        if calls.end_known[i] and end >= floor:
            out.append(((t - end).total_seconds(), (t - calls.starts[i]).total_seconds()))
        i -= 1
    return out


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping calls of one client count a trade once."""
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _best_runs(edges: list[tuple[float, int]]) -> tuple[int, list[tuple[float, float]]]:
    """The highest coverage and every run of shifts [lo, hi] that reaches it."""
    best, depth = 0, 0
    runs: list[tuple[float, float]] = []
    opened: float | None = None
    for shift, kind in edges:
        if kind < 0:
            depth += 1
            if depth > best:
                best, runs, opened = depth, [], shift
            elif depth == best:
                opened = shift
        else:
            if depth == best and opened is not None:
                runs.append((opened, shift))
                opened = None
            depth -= 1
    return best, runs
