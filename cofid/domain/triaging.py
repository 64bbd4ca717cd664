"""Map trades to the recorded calls they were placed on (the seed's "Rule Engine Step 1").

Rules:

1. Times are naive UTC. An aware datetime is converted to UTC first, so a caller that
   passes zone-aware values gets the same answer as one that passes naive UTC.
2. A call's window is [start, end]. A call with no end lasts its ``duration_s`` when that is
   known (the audio's length), else ``assumed_duration_s``; with ``end_at_next_call`` such a
   call ends at the latest when the same client's next call starts (one person is on one
   call at a time). An end before the start is read as the start (a zero-length call),
   never as a negative window.
3. A trade may map to a call of the same client only: client codes are compared after
   stripping surrounding spaces, case-insensitively. A blank client code matches nothing.
4. Clock skew: the trade system's clock and the recorder's differ by an offset that is
   constant in a batch. It is estimated from the batch itself (cofid.domain.triaging_skew:
   the shift within ±``max_clock_skew_s`` that puts the most trades inside a call of their
   client whose end is known; 0 with too little evidence, fewer than
   ``skew_min_trades`` such trades) and subtracted from every trade time before rules 5-7.
   ``max_clock_skew_s = 0`` turns the estimate off.
5. A trade qualifies for a call when its (corrected) time lies in the widened window
   [start - margin_before_s, end + margin_after_s], edges included. margin_before covers the
   agent who books while still dialling; margin_after the agent who books after hanging up.
6. Its distance to the call is 0 inside [start, end], else the seconds to the nearer edge.
7. Of the qualifying calls, a call in progress at the trade's time wins (of several, the one
   that started earlier). Otherwise the call that ended last before the trade competes with
   the client's next call: the next call wins only when its distance times
   ``before_start_weight`` is smaller than the ended call's distance (weight 1: the nearer
   edge wins; a larger weight favours the agent booking after hanging up over the one
   booking while dialling); ties go to the call that started earlier, then to the smaller
   audio_name. A trade maps to at most one call; a call may get many trades.
8. A trade that qualifies for no call is left out of the result (it is not an error: clients
   also trade through apps and websites, with no call to record).
9. A trade_id seen twice keeps its first occurrence; later ones are ignored.
10. The result is sorted by trade_id; each mapping carries the batch's clock offset
    (``clock_offset_s``) its distance was measured with.

Every parameter's measured effect: cofid/config/stage_rules.py (TriagingConfig) and the
README's "Trade-to-call mapping" (figures from ``python -m bench.triaging``).

Cost: calls and trades are grouped by client; each client's calls are sorted once by start,
and each trade is placed with two binary searches, so O((calls + trades) log calls); the
skew estimate adds one sort of two edges per trade.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cofid.domain.triaging_skew import estimate_offset_s


@dataclass(frozen=True)
class CallWindow:
    audio_name: str
    client_code: str
    start: datetime
    end: datetime | None
    # The recording's length in seconds, when known: the end of a call stored without one.
    duration_s: float | None = None


@dataclass(frozen=True)
class TradeKey:
    trade_id: str
    client_code: str
    trade_time: datetime


@dataclass(frozen=True)
class TriagingRule:
    # A trade placed up to this long before the call started still maps (agent books while
    # dialling; also absorbs the clock jitter left after rule 4). Wider windows catch more
    # of callers' app trades: set it from the desk's dialling habits, not "to be safe".
    margin_before_s: float = 120.0
    # A trade booked up to this long after the call ended maps (the desk's late bookings).
    margin_after_s: float = 600.0
    # When a call has neither an end time nor a duration: the longest call the recorder
    # keeps, not a typical one (a short guess drops the late bookings of long calls; rule
    # 2 cuts it at the client's next call anyway).
    assumed_duration_s: float = 900.0
    # Largest trade-clock offset the batch estimate may find (0: no estimate).
    max_clock_skew_s: float = 300.0
    # Trades inside calls needed before an estimated offset is applied.
    skew_min_trades: int = 30
    # > 1 favours the call that just ended over the one about to start (rule 7).
    before_start_weight: float = 10.0
    # A call without an end ends at the latest when the client's next call starts.
    end_at_next_call: bool = True

    def __post_init__(self) -> None:
        for name in ("margin_before_s", "margin_after_s", "assumed_duration_s",
                     "max_clock_skew_s", "skew_min_trades"):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise ValueError(f"TriagingRule.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.before_start_weight > 0:
            raise ValueError("TriagingRule.before_start_weight must be > 0, "
                             f"got {self.before_start_weight!r}")


@dataclass(frozen=True)
class TradeMapping:
    trade_id: str
    audio_name: str
    distance_s: float
    # The batch's estimated trade-clock offset (rule 4), subtracted before measuring.
    clock_offset_s: float = 0.0


def map_trades(
    calls: Iterable[CallWindow], trades: Iterable[TradeKey], rule: TriagingRule
) -> list[TradeMapping]:
    index = _index_calls(calls, rule)
    first = _first_by_id(trades)
    placed = [
        (trade.trade_id, client, _naive_utc(trade.trade_time))
        for trade in first
        if (client := index.get(_client_key(trade.client_code))) is not None
    ]
    offset_s = _offset_s(placed, rule)
    shift = timedelta(seconds=offset_s)
    before = timedelta(seconds=rule.margin_before_s)
    after = timedelta(seconds=rule.margin_after_s)
    mappings: list[TradeMapping] = []
    for trade_id, client, t in placed:
        found = client.nearest(t - shift, before, after, rule.before_start_weight)
        if found is not None:
            audio_name, distance_s = found
            mappings.append(TradeMapping(trade_id, audio_name, distance_s, offset_s))
    mappings.sort(key=lambda m: m.trade_id)
    return mappings


def estimate_clock_offset_s(
    calls: Iterable[CallWindow], trades: Iterable[TradeKey], rule: TriagingRule
) -> float:
    """Rule 4 alone: the offset map_trades subtracts from this batch's trade times."""
    index = _index_calls(calls, rule)
    placed = [
        (trade.trade_id, client, _naive_utc(trade.trade_time))
        for trade in _first_by_id(trades)
        if (client := index.get(_client_key(trade.client_code))) is not None
    ]
    return _offset_s(placed, rule)


# Trades the skew estimate reads at most: every k-th by trade id beyond this (the estimate
# is as good at 5,000 trades as at 50,000, and twice as slow as the mapping itself there).
SKEW_SAMPLE = 5000


def _offset_s(placed: list[tuple[str, _ClientCalls, datetime]], rule: TriagingRule) -> float:
    if rule.max_clock_skew_s <= 0:
        return 0.0
    ordered = sorted(placed, key=lambda p: p[0])
    step = max(1, -(-len(ordered) // SKEW_SAMPLE))
    return estimate_offset_s(((client, t) for _, client, t in ordered[::step]),
                             rule.max_clock_skew_s, rule.skew_min_trades)


def _first_by_id(trades: Iterable[TradeKey]) -> list[TradeKey]:
    seen: set[str] = set()
    out: list[TradeKey] = []
    for trade in trades:
        if trade.trade_id not in seen:
            seen.add(trade.trade_id)
            out.append(trade)
    return out


@dataclass(frozen=True)
class _Call:
    start: datetime
    end: datetime
    name: str
    end_known: bool  # stored, or start + duration (not assumed)


class _ClientCalls:
    """One client's calls sorted by (start, audio_name), with a running maximum of ends."""

    def __init__(self, calls: list[_Call], end_at_next_call: bool) -> None:
        calls.sort(key=lambda c: (c.start, c.name))
        self.starts = [c.start for c in calls]
        self.names = [c.name for c in calls]
        self.end_known = [c.end_known for c in calls]
        self.ends = [c.end for c in calls]
        if end_at_next_call:
            for i, c in enumerate(calls):
                if c.end_known:
                    continue
                j = bisect_right(self.starts, c.start)  # the first call that starts later
                if j < len(calls):
                    self.ends[i] = min(self.ends[i], calls[j].start)
        # max_end[i] = latest end among calls[0..i]. It never decreases, so the first index
        # where it reaches t is the first call (in start order) whose own end reaches t.
        self.max_end: list[datetime] = []
        for end in self.ends:
            self.max_end.append(end if not self.max_end else max(self.max_end[-1], end))

    def nearest(
        self, t: datetime, before: timedelta, after: timedelta, before_weight: float
    ) -> tuple[str, float] | None:
        started = bisect_right(self.starts, t)  # calls[:started] started at or before t
        best: tuple[timedelta, int] | None = None
        if started:
            latest_end = self.max_end[started - 1]
            if latest_end >= t:
                # t lies inside some started call; the earliest-starting such call wins.
                return self.names[bisect_left(self.max_end, t)], 0.0
            gap = t - latest_end
            if gap <= after:
                best = (gap, bisect_left(self.max_end, latest_end))
        if started < len(self.starts):
            lead = self.starts[started] - t
            # A tie with an ended call goes to the ended one: it started earlier.
            if lead <= before and (best is None or lead * before_weight < best[0]):
                best = (lead, started)
        if best is None:
            return None
        return self.names[best[1]], best[0].total_seconds()


def _index_calls(calls: Iterable[CallWindow], rule: TriagingRule) -> dict[str, _ClientCalls]:
    assumed = timedelta(seconds=rule.assumed_duration_s)
    grouped: dict[str, list[_Call]] = defaultdict(list)
    for call in calls:
        client = _client_key(call.client_code)
        if not client:
            continue
        start = _naive_utc(call.start)
        if call.end is not None:
            grouped[client].append(_Call(start, max(start, _naive_utc(call.end)),
                                         call.audio_name, True))
        elif call.duration_s is not None and call.duration_s >= 0:
            grouped[client].append(_Call(start, start + timedelta(seconds=call.duration_s),
                                         call.audio_name, True))
        else:
            grouped[client].append(_Call(start, start + assumed, call.audio_name, False))
    return {client: _ClientCalls(items, rule.end_at_next_call)
            for client, items in grouped.items()}


def _client_key(code: str) -> str:
    return code.strip().casefold()


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
