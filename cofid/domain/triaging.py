"""Map trades to the recorded calls they were placed on (the seed's "Rule Engine Step 1").

Rules:

1. Times are naive UTC. An aware datetime is converted to UTC first, so a caller that
   passes zone-aware values gets the same answer as one that passes naive UTC.
2. A call's window is [start, end]. A call with no end lasts ``assumed_duration_s``; an end
   before the start is read as the start (a zero-length call), never as a negative window.
3. A trade may map to a call of the same client only: client codes are compared after
   stripping surrounding spaces, case-insensitively. A blank client code matches nothing.
4. A trade qualifies for a call when its time lies in the widened window
   [start - margin_before_s, end + margin_after_s], edges included. margin_before covers the
   agent who books while still dialling; margin_after the agent who books after hanging up.
5. Its distance to the call is 0 inside [start, end], else the seconds to the nearer edge.
6. Of the qualifying calls the nearest wins; ties go to the call that started earlier, then
   to the smaller audio_name. A trade maps to at most one call; a call may get many trades.
7. A trade that qualifies for no call is left out of the result (it is not an error: clients
   also trade through apps and websites, with no call to record).
8. A trade_id seen twice keeps its first occurrence; later ones are ignored.
9. The result is sorted by trade_id.

Cost: calls and trades are grouped by client; each client's calls are sorted once by start,
and each trade is placed with two binary searches, so O((calls + trades) log calls).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class CallWindow:
    audio_name: str
    client_code: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class TradeKey:
    trade_id: str
    client_code: str
    trade_time: datetime


@dataclass(frozen=True)
class TriagingRule:
    # A trade placed up to 5 min before the call started still maps (agent books while dialling).
    margin_before_s: float = 300.0
    # A trade booked up to 15 min after the call ended maps.
    margin_after_s: float = 900.0
    # When a call has no end time.
    assumed_duration_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("margin_before_s", "margin_after_s", "assumed_duration_s"):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise ValueError(f"TriagingRule.{name} must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class TradeMapping:
    trade_id: str
    audio_name: str
    distance_s: float


def map_trades(
    calls: Iterable[CallWindow], trades: Iterable[TradeKey], rule: TriagingRule
) -> list[TradeMapping]:
    index = _index_calls(calls, rule)
    before = timedelta(seconds=rule.margin_before_s)
    after = timedelta(seconds=rule.margin_after_s)
    seen: set[str] = set()
    mappings: list[TradeMapping] = []
    for trade in trades:
        if trade.trade_id in seen:
            continue
        seen.add(trade.trade_id)
        client = index.get(_client_key(trade.client_code))
        if client is None:
            continue
        found = client.nearest(_naive_utc(trade.trade_time), before, after)
        if found is not None:
            audio_name, distance_s = found
            mappings.append(TradeMapping(trade.trade_id, audio_name, distance_s))
    mappings.sort(key=lambda m: m.trade_id)
    return mappings


class _ClientCalls:
    """One client's calls sorted by (start, audio_name), with a running maximum of ends."""

    def __init__(self, calls: list[tuple[datetime, datetime, str]]) -> None:
        calls.sort(key=lambda c: (c[0], c[2]))
        self.starts = [start for start, _, _ in calls]
        self.names = [name for _, _, name in calls]
        # max_end[i] = latest end among calls[0..i]. It never decreases, so the first index
        # where it reaches t is the first call (in start order) whose own end reaches t.
        self.max_end: list[datetime] = []
        for _, end, _ in calls:
            self.max_end.append(end if not self.max_end else max(self.max_end[-1], end))

    def nearest(self, t: datetime, before: timedelta, after: timedelta) -> tuple[str, float] | None:
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
            if lead <= before and (best is None or lead < best[0]):
                best = (lead, started)
        if best is None:
            return None
        return self.names[best[1]], best[0].total_seconds()


def _index_calls(calls: Iterable[CallWindow], rule: TriagingRule) -> dict[str, _ClientCalls]:
    assumed = timedelta(seconds=rule.assumed_duration_s)
    grouped: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for call in calls:
        client = _client_key(call.client_code)
        if not client:
            continue
        start = _naive_utc(call.start)
        end = start + assumed if call.end is None else max(start, _naive_utc(call.end))
        grouped[client].append((start, end, call.audio_name))
    return {client: _ClientCalls(items) for client, items in grouped.items()}


def _client_key(code: str) -> str:
    return code.strip().casefold()


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


# -- synthetic ground truth -------------------------------------------------------------------


def generate_ground_truth(
    seed: int,
    n_calls: int,
    *,
    day: datetime = datetime(2026, 1, 5),
    calls_per_client: float = 3.0,
    trades_per_call: float = 1.5,
    no_call_trade_share: float = 0.1,
    app_trade_share: float = 0.02,
    back_to_back_share: float = 0.1,
    missing_end_share: float = 0.05,
) -> tuple[list[CallWindow], list[TradeKey], dict[str, str]]:
    """A day of calls and trades whose true call is known: (calls, trades, trade_id -> audio).

    Calls start in Indian market hours (09:15-15:30 IST, stored as naive UTC; a client's late
    calls may spill past the close) and last 1-15 minutes. A client's calls never overlap and
    are spread over the day, except `back_to_back_share` of them, which begin within a minute of
    the client's previous call ending (a dropped line redialled).
    Trades of a call are booked mostly during it (80 %), some up to 8 minutes after it ended
    (15 %), a few while dialling, up to 2 minutes before it started (5 %). On top,
    `no_call_trade_share` of trades belong to clients who never called, and `app_trade_share`
    to clients who did call but traded through an app at a random time of day: neither has a
    true call, so neither is in the returned dict (a mapping of one is a false positive).
    `missing_end_share` of calls lose their end time, as some recorders do, while their trades
    keep the true timing.
    """
    rng = random.Random(seed)
    open_utc = day + timedelta(hours=3, minutes=45)  # 09:15 IST
    close_utc = day + timedelta(hours=10)  # 15:30 IST
    session_s = (close_utc - open_utc).total_seconds()
    n_clients = max(1, round(n_calls / calls_per_client))

    by_client: dict[str, int] = defaultdict(int)
    for _ in range(n_calls):
        by_client[f"CL{rng.randrange(n_clients):06d}"] += 1

    calls: list[CallWindow] = []
    true_windows: list[tuple[CallWindow, datetime]] = []
    for client, count in sorted(by_client.items()):
        # One person is on one call at a time: a client's calls follow each other.
        wished = sorted(rng.uniform(0, session_s) for _ in range(count))
        previous_end: datetime | None = None
        for offset_s in wished:
            start = open_utc + timedelta(seconds=offset_s)
            if previous_end is not None:
                if rng.random() < back_to_back_share:
                    start = previous_end + timedelta(seconds=rng.uniform(5, 60))
                else:
                    start = max(start, previous_end + timedelta(seconds=rng.uniform(60, 1800)))
            start = start.replace(microsecond=0)
            end = start + timedelta(seconds=round(rng.uniform(60, 900)))
            previous_end = end
            stored_end = None if rng.random() < missing_end_share else end
            call = CallWindow(f"call_{len(calls):06d}.wav", client, start, stored_end)
            calls.append(call)
            true_windows.append((call, end))
    rng.shuffle(calls)

    trades: list[TradeKey] = []
    truth: dict[str, str] = {}
    for call, end in true_windows:
        for _ in range(_poisson(rng, trades_per_call)):
            roll = rng.random()
            if roll < 0.80:
                at = call.start + (end - call.start) * rng.uniform(0.05, 1.0)
            elif roll < 0.95:
                at = end + timedelta(seconds=rng.uniform(0, 480))
            else:
                at = call.start - timedelta(seconds=rng.uniform(0, 120))
            trade_id = f"T{len(trades):07d}"
            trades.append(TradeKey(trade_id, call.client_code, at.replace(microsecond=0)))
            truth[trade_id] = call.audio_name
    n_call_trades = len(trades)
    callers = sorted(by_client)
    for _ in range(round(n_call_trades * no_call_trade_share)):
        at = open_utc + timedelta(seconds=rng.uniform(0, session_s))
        client = f"APP{rng.randrange(n_clients):06d}"
        trades.append(TradeKey(f"T{len(trades):07d}", client, at.replace(microsecond=0)))
    for _ in range(round(n_call_trades * app_trade_share)):
        at = open_utc + timedelta(seconds=rng.uniform(0, session_s))
        client = rng.choice(callers)
        trades.append(TradeKey(f"T{len(trades):07d}", client, at.replace(microsecond=0)))
    rng.shuffle(trades)
    return calls, trades, truth


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's sampler: fine for the small means used here."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
