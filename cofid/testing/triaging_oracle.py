"""The best any trade-to-call rule can do on a near-tie batch: which trades are ambiguous.

`generate_near_ties` draws every trade from a known model (cofid.testing.triaging_truth):
a call's trades fall during it (uniform over its last 95 %), after it ended (uniform over
the next min(after_end_max_s, time until the client's next call)) or while dialling
(uniform over the last min(before_start_max_s, time since the client's previous call))
before the start, with the shape's shares, then Gaussian jitter; a caller's app trades fall
uniformly over the session. Given one trade's time, each explanation has an intensity
(expected trades per second at that time): a call's is its mean trade count times the
mixture density above (convolved with the jitter), the app's is the app trades per caller
over the session length. The explanation with the highest intensity is the Bayes decision:
no rule that sees the trade's time can be right more often.

A trade is **ambiguous** when its true explanation is not that one: the data cannot
recover its truth (a rule right on it must be wrong on more trades like it). Two kinds
dominate: a dialling trade of the client's next call inside a short gap, where the ended
call's late bookings are likelier at that very second; a caller's app trade that falls
inside one of their calls or its late-booking window, where the call is likelier.

The oracle is stronger than any rule: it knows the batch's true clock offset and every
call's true end (also of calls stored without one). It therefore labels *fewer* trades
ambiguous than the data alone would justify, never more: counting a trade as ambiguous
never makes the benchmark easier than the data are. Seconds rounding (±0.5 s) is ignored.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

from cofid.testing.triaging_truth import CLOSE_UTC, OPEN_UTC, NearTieBatch, NearTieShape


@dataclass(frozen=True)
class _Support:
    name: str
    start: float
    end: float
    before_s: float  # dialling room used by the generator
    after_s: float  # late-booking room used by the generator


# The benchmark's shape; pass the shape a batch was drawn with if it was another.
DEFAULT_SHAPE = NearTieShape()


def bayes_decisions(
    batch: NearTieBatch, shape: NearTieShape = DEFAULT_SHAPE
) -> dict[str, str | None]:
    """trade id -> the likeliest explanation of its time: a call's audio name, or None (no
    call: an app trade or a client who never called)."""
    t0 = OPEN_UTC
    by_client: dict[str, list[_Support]] = defaultdict(list)
    for call in batch.calls:
        end = batch.true_ends[call.audio_name]
        by_client[call.client_code].append(_Support(
            call.audio_name, (call.start - t0).total_seconds(), (end - t0).total_seconds(),
            0.0, 0.0))
    for client, items in by_client.items():
        items.sort(key=lambda s: s.start)
        fixed = []
        for i, s in enumerate(items):
            before = (math.inf if i == 0 else s.start - items[i - 1].end)
            after = (math.inf if i + 1 == len(items) else items[i + 1].start - s.end)
            fixed.append(_Support(s.name, s.start, s.end,
                                  min(shape.before_start_max_s, before),
                                  min(shape.after_end_max_s, after)))
        by_client[client] = fixed
    starts = {client: [s.start for s in items] for client, items in by_client.items()}
    n_app = sum(1 for cls in batch.classes.values() if "app_trade" in cls)
    session_s = (CLOSE_UTC - OPEN_UTC).total_seconds()
    app_rate = n_app / max(1, len(by_client)) / session_s
    p_after, p_before = shape.after_end_share, shape.before_start_share
    p_in = 1.0 - p_after - p_before
    sigma = shape.jitter_s
    reach = 6 * sigma + shape.after_end_max_s + shape.before_start_max_s

    out: dict[str, str | None] = {}
    for trade in batch.trades:
        near = by_client.get(trade.client_code)
        if not near:
            out[trade.trade_id] = None
            continue
        o = (trade.trade_time - t0).total_seconds() - batch.skew_s
        best: tuple[float, str | None] = (app_rate if 0.0 <= o <= session_s else 0.0, None)
        i = bisect_left(starts[trade.client_code], o + reach)
        for s in reversed(near[:i]):  # a client's calls do not overlap: ends rise too
            if s.end + s.after_s + 6 * sigma < o:
                break
            dur = s.end - s.start
            density = (p_in * _uniform(o, s.start + 0.05 * dur, s.end, sigma)
                       + p_after * _uniform(o, s.end, s.end + s.after_s, sigma)
                       + p_before * _uniform(o, s.start - s.before_s, s.start, sigma))
            intensity = shape.trades_per_call * density
            if intensity > best[0]:
                best = (intensity, s.name)
        out[trade.trade_id] = best[1]
    return out


def ambiguous_trades(
    batch: NearTieBatch, shape: NearTieShape = DEFAULT_SHAPE
) -> dict[str, str]:
    """trade id -> why it is ambiguous, for the trades whose truth is not the Bayes decision:
    'app_in_window' (an app trade a call explains better), 'other_call' (another call of the
    client explains it better), 'no_call_likelier' (its call explains it worse than an app
    trade would: jitter carried it far outside)."""
    out: dict[str, str] = {}
    for trade_id, decision in bayes_decisions(batch, shape).items():
        truth = batch.truth.get(trade_id)
        if decision == truth:
            continue
        out[trade_id] = ("app_in_window" if truth is None else
                         "no_call_likelier" if decision is None else "other_call")
    return out


def _uniform(x: float, lo: float, hi: float, sigma: float) -> float:
    """Density at x of U(lo, hi) plus N(0, sigma^2)."""
    if hi <= lo:
        return _normal_pdf(x - lo, sigma) if hi == lo else 0.0
    if sigma <= 0:
        return 1.0 / (hi - lo) if lo <= x <= hi else 0.0
    return (_normal_cdf((x - lo) / sigma) - _normal_cdf((x - hi) / sigma)) / (hi - lo)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _normal_pdf(x: float, sigma: float) -> float:
    if sigma <= 0:
        return 0.0
    return math.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
