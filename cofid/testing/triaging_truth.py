"""Generated truth for the trade-to-call rule (cofid.domain.triaging): calls and trades whose
true call is known, for its tests and for `bench.triaging`.

- `generate_ground_truth`: the original day of calls and trades (no clock skew), kept as it
  was so the figures measured on it stay comparable.
- `generate_near_ties`: a batch built around the cases where a rule can go wrong, every trade
  labelled with the near-tie classes it belongs to (`CLASSES`), and `score` to read a
  mapping against it per class.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cofid.domain.triaging import CallWindow, TradeKey, TradeMapping

DAY = datetime(2026, 1, 5)
OPEN_UTC = DAY + timedelta(hours=3, minutes=45)  # 09:15 IST
CLOSE_UTC = DAY + timedelta(hours=10)  # 15:30 IST

# Near-tie classes of a trade that has a true call (a trade may be in several):
CLASSES: dict[str, str] = {
    "gap": "another call of the same client starts or ends within 5 min of the trade",
    "no_end": "its call has no end time (half of them with a known duration)",
    "no_end_no_duration": "its call has neither an end time nor a duration",
    "skew_edge": "clock skew and jitter moved it across an edge of its call",
    "after_end": "booked after the call ended (up to 6 min later)",
    "before_start": "placed while dialling, before the recorder started",
    "multi": "one of several trades of its call",
    "concurrent": "a call of another client was in progress at its time",
    "plain": "none of gap, no_end, skew_edge, after_end, before_start",
}
# Trades without a true call (any mapping of one is a false positive):
NEGATIVE_CLASSES: dict[str, str] = {
    "app_trade": "a client who called also traded through an app at a random time",
    "never_called": "a client who never called",
}


def generate_ground_truth(
    seed: int,
    n_calls: int,
    *,
    day: datetime = DAY,
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


# -- the near-tie batch -----------------------------------------------------------------------


@dataclass(frozen=True)
class NearTieShape:
    """How a near-tie batch is drawn (the defaults are the benchmark's)."""

    calls_per_client: float = 3.0
    trades_per_call: float = 1.5  # Poisson mean: a third of calls carry several trades
    back_to_back_share: float = 0.2  # a client's next call starts 10 s - 5 min after the last
    missing_end_share: float = 0.08  # calls the recorder stored without an end time
    duration_known_share: float = 0.5  # of those, the audio's duration is known
    after_end_share: float = 0.2  # trades booked after the call ended ...
    after_end_max_s: float = 360.0  # ... up to 6 min later
    before_start_share: float = 0.03  # trades placed while dialling ...
    before_start_max_s: float = 60.0  # ... up to a minute before the recorder started
    skew_max_s: float = 180.0  # the batch's trade clock runs this much ahead or behind, at most
    jitter_s: float = 8.0  # Gaussian spread of each trade's timestamp around that offset
    app_trade_share: float = 0.02  # callers' trades through an app, at random times
    never_called_share: float = 0.1  # trades of clients who never called


@dataclass(frozen=True)
class NearTieBatch:
    calls: list[CallWindow]
    trades: list[TradeKey]
    truth: dict[str, str]  # trade id -> its true call's audio name (trades with one)
    classes: dict[str, frozenset[str]]  # trade id -> its classes (CLASSES, NEGATIVE_CLASSES)
    skew_s: float  # the batch's true offset: trade clock minus recorder clock
    # audio name -> the call's true end (also of calls stored without one): for oracles
    # (cofid.testing.triaging_oracle), never for the rule under test.
    true_ends: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class _TrueCall:
    window: CallWindow
    end: datetime


def generate_near_ties(
    seed: int, n_trades: int, shape: NearTieShape = NearTieShape()
) -> NearTieBatch:
    """About `n_trades` trades over one trading day, built around the near-ties.

    Calls last 1-15 min in market hours; a client is on one call at a time. A share of a
    client's calls follow the previous one within 10 s - 5 min (a dropped line redialled,
    a call back with a price), the others 5-30 min later or more. Trades of a call fall
    during it (after its first 5 %), after it ended, or before it started, per `shape`.
    A trade booked after its call ended is booked before the client's next call starts, and
    one placed while dialling after the client's previous call ended: a trade that falls in
    the next call is that call's by any timing, so a batch where bookings spill into the
    next call would measure the generator, not the rule.
    Trade times are then seen through the trade system's clock: the batch's constant offset
    (uniform in ±skew_max_s) plus per-trade Gaussian jitter, rounded to the second.
    """
    rng = random.Random(seed)
    skew_s = rng.uniform(-shape.skew_max_s, shape.skew_max_s)
    negatives = shape.app_trade_share + shape.never_called_share
    n_calls = max(1, round(n_trades / (shape.trades_per_call * (1 + negatives))))
    n_clients = max(1, round(n_calls / shape.calls_per_client))
    session_s = (CLOSE_UTC - OPEN_UTC).total_seconds()

    by_client: dict[str, int] = defaultdict(int)
    for _ in range(n_calls):
        by_client[f"CL{rng.randrange(n_clients):06d}"] += 1
    true_calls: list[_TrueCall] = []
    for client, count in sorted(by_client.items()):
        wished = sorted(rng.uniform(0, session_s) for _ in range(count))
        previous_end: datetime | None = None
        for offset_s in wished:
            start = OPEN_UTC + timedelta(seconds=offset_s)
            if previous_end is not None:
                if rng.random() < shape.back_to_back_share:
                    start = previous_end + timedelta(seconds=rng.uniform(10, 300))
                else:
                    start = max(start, previous_end + timedelta(seconds=rng.uniform(300, 1800)))
            start = start.replace(microsecond=0)
            duration_s = round(rng.uniform(60, 900))
            end = start + timedelta(seconds=duration_s)
            previous_end = end
            name = f"call_{len(true_calls):06d}.wav"
            if rng.random() < shape.missing_end_share:
                known = rng.random() < shape.duration_known_share
                window = CallWindow(name, client, start, None, float(duration_s) if known else None)
            else:
                window = CallWindow(name, client, start, end)
            true_calls.append(_TrueCall(window, end))
    # Seconds free before each call (since the client's previous call ended) and after it
    # (until the client's next call starts): a booking before or after a call stays in them.
    room: dict[str, tuple[float, float]] = {}
    ordered = sorted(true_calls, key=lambda tc: (tc.window.client_code, tc.window.start))
    for i, tc in enumerate(ordered):
        prev = ordered[i - 1] if i and ordered[i - 1].window.client_code == tc.window.client_code else None
        nxt = (ordered[i + 1] if i + 1 < len(ordered)
               and ordered[i + 1].window.client_code == tc.window.client_code else None)
        room[tc.window.audio_name] = (
            math.inf if prev is None else (tc.window.start - prev.end).total_seconds(),
            math.inf if nxt is None else (nxt.window.start - tc.end).total_seconds())

    trades: list[TradeKey] = []
    truth: dict[str, str] = {}
    true_time: dict[str, datetime] = {}
    call_of: dict[str, _TrueCall] = {}
    per_call: dict[str, int] = defaultdict(int)
    for tc in true_calls:
        start = tc.window.start
        for _ in range(_poisson(rng, shape.trades_per_call)):
            roll = rng.random()
            if roll < shape.after_end_share:
                after_s = min(shape.after_end_max_s, room[tc.window.audio_name][1])
                at = tc.end + timedelta(seconds=rng.uniform(0, after_s))
            elif roll < shape.after_end_share + shape.before_start_share:
                before_s = min(shape.before_start_max_s, room[tc.window.audio_name][0])
                at = start - timedelta(seconds=rng.uniform(0, before_s))
            else:
                at = start + (tc.end - start) * rng.uniform(0.05, 1.0)
            trade_id = f"T{len(trades):07d}"
            seen = at + timedelta(seconds=skew_s + rng.gauss(0, shape.jitter_s))
            trades.append(TradeKey(trade_id, tc.window.client_code, _second(seen)))
            truth[trade_id] = tc.window.audio_name
            true_time[trade_id] = at
            call_of[trade_id] = tc
            per_call[tc.window.audio_name] += 1

    classes: dict[str, frozenset[str]] = {}
    n_call_trades = len(trades)
    callers = sorted(by_client)
    for label, share in (("never_called", shape.never_called_share),
                         ("app_trade", shape.app_trade_share)):
        for _ in range(round(n_call_trades * share)):
            at = OPEN_UTC + timedelta(seconds=rng.uniform(0, session_s))
            client = (f"APP{rng.randrange(n_clients):06d}" if label == "never_called"
                      else rng.choice(callers))
            trade_id = f"T{len(trades):07d}"
            trades.append(TradeKey(trade_id, client, _second(at + timedelta(seconds=skew_s))))
            classes[trade_id] = frozenset({label})

    labeller = _Labeller(true_calls)
    for trade in trades[:n_call_trades]:
        tc = call_of[trade.trade_id]
        classes[trade.trade_id] = labeller.classes(
            tc, true_time[trade.trade_id], trade.trade_time, per_call[tc.window.audio_name])
    calls = [tc.window for tc in true_calls]
    rng.shuffle(calls)
    rng.shuffle(trades)
    true_ends = {tc.window.audio_name: tc.end for tc in true_calls}
    return NearTieBatch(calls, trades, truth, classes, skew_s, true_ends)


def _second(value: datetime) -> datetime:
    return (value + timedelta(microseconds=500_000)).replace(microsecond=0)


class _Labeller:
    """Near-tie classes of a trade, from the true calls (ends as they really were)."""

    GAP = timedelta(minutes=5)

    def __init__(self, true_calls: list[_TrueCall]) -> None:
        self.by_client: dict[str, list[_TrueCall]] = defaultdict(list)
        for tc in true_calls:
            self.by_client[tc.window.client_code].append(tc)
        self.starts = sorted(tc.window.start for tc in true_calls)
        self.ends = sorted(tc.end for tc in true_calls)

    def classes(self, tc: _TrueCall, at: datetime, seen: datetime, n_trades: int) -> frozenset[str]:
        start, end = tc.window.start, tc.end
        out: set[str] = set()
        for other in self.by_client[tc.window.client_code]:
            if other is not tc and (other.window.start - self.GAP <= at <= other.end + self.GAP):
                out.add("gap")
        if tc.window.end is None:
            out.add("no_end")
            if tc.window.duration_s is None:
                out.add("no_end_no_duration")
        if (start <= at <= end) != (start <= seen <= end):
            out.add("skew_edge")
        if at > end:
            out.add("after_end")
        if at < start:
            out.add("before_start")
        if not out:
            out.add("plain")
        if n_trades > 1:
            out.add("multi")
        in_progress = bisect_right(self.starts, at) - bisect_left(self.ends, at)
        if in_progress - (1 if start <= at <= end else 0) > 0:
            out.add("concurrent")
        return frozenset(out)


def score(batch: NearTieBatch, mappings: Iterable[TradeMapping]) -> dict[str, Any]:
    """Precision and recall overall and per class, and the false positives per negative class.

    Per class: recall = correct / trades of the class with a true call; precision = correct /
    mapped trades of the class (a mapped trade of the class counts, right or wrong)."""
    got = {m.trade_id: m.audio_name for m in mappings}
    correct = sum(1 for tid, audio in got.items() if batch.truth.get(tid) == audio)
    out: dict[str, Any] = {
        "trades": len(batch.trades), "with_call": len(batch.truth), "mapped": len(got),
        "correct": correct,
        "precision": round(correct / len(got), 5) if got else 1.0,
        "recall": round(correct / len(batch.truth), 5) if batch.truth else 1.0,
    }
    per_class: dict[str, dict[str, Any]] = {}
    for label in CLASSES:
        members = [tid for tid, cls in batch.classes.items() if label in cls]
        mapped = [tid for tid in members if tid in got]
        right = sum(1 for tid in mapped if got[tid] == batch.truth[tid])
        per_class[label] = {
            "trades": len(members), "mapped": len(mapped), "correct": right,
            "precision": round(right / len(mapped), 5) if mapped else None,
            "recall": round(right / len(members), 5) if members else None,
        }
    for label in NEGATIVE_CLASSES:
        members = [tid for tid, cls in batch.classes.items() if label in cls]
        wrong = sum(1 for tid in members if tid in got)
        per_class[label] = {"trades": len(members), "false_positives": wrong,
                            "false_positive_rate": round(wrong / len(members), 5) if members
                            else None}
    out["classes"] = per_class
    return out
