"""The near-tie benchmark's oracle: which trades no rule can get right (ambiguous)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cofid.domain.triaging import CallWindow, TradeKey
from cofid.testing.triaging_oracle import ambiguous_trades, bayes_decisions
from cofid.testing.triaging_truth import OPEN_UTC, NearTieBatch, generate_near_ties

T = OPEN_UTC + timedelta(hours=1)
SKEW = 100.0  # the trade clock runs 100 s ahead; the oracle knows it


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def batch(calls: list[tuple[str, str, float, float, bool]],
          trades: list[tuple[str, str, float, str | None, str]]) -> NearTieBatch:
    """calls: (audio, client, start, true end, end stored); trades: (id, client, recorder
    time, true call or None, class)."""
    windows = [CallWindow(a, c, at(s), at(e) if stored else None) for a, c, s, e, stored in calls]
    return NearTieBatch(
        calls=windows,
        trades=[TradeKey(tid, c, at(t + SKEW)) for tid, c, t, _, _ in trades],
        truth={tid: audio for tid, _, _, audio, _ in trades if audio is not None},
        classes={tid: frozenset({cls}) for tid, _, _, _, cls in trades},
        skew_s=SKEW,
        true_ends={a: at(e) for a, _, _, e, _ in calls},
    )


def test_a_dialling_trade_in_a_short_gap_is_ambiguous_in_a_long_one_it_is_not() -> None:
    b = batch(
        [("a.wav", "C1", 0, 300, True), ("b.wav", "C1", 420, 900, True),
         ("c.wav", "C2", 0, 300, True), ("d.wav", "C2", 1500, 1800, True)],
        [("short-gap", "C1", 390, "b.wav", "before_start"),  # 90 s after a, 30 s before b
         ("late", "C1", 330, "a.wav", "after_end"),
         ("long-gap", "C2", 1470, "d.wav", "before_start"),  # 20 min after c ended
         ("app", "C2", 3000, None, "app_trade")])
    # In a 120-s gap a's late bookings (a fifth of its trades over those 120 s) are likelier
    # at 390 than b's dialling trades (3 % of its trades over the last 60 s): the Bayes
    # decision is a, so no rule can give b its trade without giving b more of a's.
    assert bayes_decisions(b) == {"short-gap": "a.wav", "late": "a.wav",
                                  "long-gap": "d.wav", "app": None}
    assert ambiguous_trades(b) == {"short-gap": "other_call"}


def test_an_app_trade_inside_a_call_is_ambiguous_far_from_one_it_is_not() -> None:
    b = batch(
        [("a.wav", "C1", 0, 300, False), ("b.wav", "C1", 3000, 3300, True)],
        [("in-call", "C1", 150, None, "app_trade"),
         ("far", "C1", 300 + 900, None, "app_trade"),  # 15 min after a, 30 min before b
         ("stray", "C1", 300 + 2000, "a.wav", "after_end"),  # its own call explains it worse
         ("never", "APP000001", 150, None, "never_called")])
    assert bayes_decisions(b) == {"in-call": "a.wav", "far": None, "stray": None,
                                  "never": None}
    assert ambiguous_trades(b) == {"in-call": "app_in_window", "stray": "no_call_likelier"}


def test_ambiguous_trades_are_few_and_the_oracle_is_the_ceiling() -> None:
    b = generate_near_ties(3, 3000)
    amb = ambiguous_trades(b)
    assert 0 < len(amb) < 0.02 * len(b.trades)
    assert set(amb.values()) <= {"app_in_window", "other_call", "no_call_likelier"}
    decisions = bayes_decisions(b)
    assert set(decisions) == {t.trade_id for t in b.trades}
    # Every trade outside the ambiguous set is one the oracle gets right, by definition.
    assert all(decisions[tid] == b.truth.get(tid) for tid in decisions if tid not in amb)
    assert b.true_ends.keys() == {c.audio_name for c in b.calls}
    assert all(b.true_ends[c.audio_name] == c.end for c in b.calls if c.end is not None)
