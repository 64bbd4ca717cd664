"""Generated-truth benchmark of the trade verdict: the `rules` LLM1 backend, then the rule.

`python -m bench.verdicts --trades N --seed K [--errors M]`

What runs: bench.verdict_calls draws calls with a known truth per booked trade (seeded
random.Random; see that module for the agreement and disagreement classes and the three
transcript shapes). Each call's transcript and booked trades go through
cofid.domain.prompts.build_llm1_request and RulesChat.complete, as the llm1 stage and
tests/backends/test_rules.py call them; the reply's trades, the transcript and the call
state then go through cofid.domain.verdicts.decide_call.

Prints one JSON object: precision and recall of `mismatch` and of `confirmed` (target
>= 0.99 for mismatch), the same per transcript shape, accuracy over every verdict, the
confusion matrix (truth ->
predicted -> count), errors per generator class, the first --errors wrong verdicts with
their transcripts, and wall_s.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import trio

from bench.verdict_calls import OTHER, SHAPES, Case, build_call, other_case
from cofid.backends.rules import RulesChat
from cofid.domain.prompts import build_llm1_request
from cofid.domain.verdicts import BookedTrade, CallState, MappingOutcome, decide_call

TARGET = 0.99


def draw_cases(trades: int, seed: int, shapes: tuple[str, ...] = SHAPES) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    made = 0
    while made < trades:
        index = len(cases)
        if rng.random() < 0.05:
            cases.append(other_case(index, rng.choice(OTHER), rng, f"T{made:06d}"))
            made += 1
            continue
        n = 2 if rng.random() < 0.2 and trades - made >= 2 else 1
        cases.append(build_call(index, rng, [f"T{made + k:06d}" for k in range(n)], shapes))
        made += n
    return cases


async def _llm1(chat: RulesChat, case: Case) -> list[dict[str, Any]]:
    request = build_llm1_request(templates=None, transcript=case.segments,
                                 call_metadata={"audioName": case.audio_name},
                                 trades=[{**b, "trade_time": "2025-01-15T10:15:00"}
                                         for b in case.booked])
    result = await chat.complete(request)
    return list(result.data["trades"])


async def _extract_all(cases: list[Case]) -> list[list[dict[str, Any]] | None]:
    chat = RulesChat()
    out: list[list[dict[str, Any]] | None] = []
    for case in cases:
        runs_llm1 = case.audio_name is not None and case.status == "AuditDone"
        out.append(await _llm1(chat, case) if runs_llm1 else None)
    return out


def _booked(b: dict[str, Any]) -> BookedTrade:
    return BookedTrade(trade_id=b["trade_id"], symbol=b["symbol"], side=b["side"],
                       quantity=float(b["quantity"]), price=b["price"],
                       order_type=b["order_type"])


def _pr(pairs: list[tuple[str, str]], label: str) -> dict[str, Any]:
    tp = sum(1 for t, p in pairs if t == label and p == label)
    fp = sum(1 for t, p in pairs if t != label and p == label)
    fn = sum(1 for t, p in pairs if t == label and p != label)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "tp": tp, "fp": fp, "fn": fn,
    }


def run(trades: int, seed: int, errors: int = 5,
        shapes: tuple[str, ...] = SHAPES) -> dict[str, Any]:
    t0 = time.perf_counter()
    cases = draw_cases(trades, seed, shapes)
    extracted = trio.run(_extract_all, cases)
    t_llm1 = time.perf_counter() - t0
    pairs: list[tuple[str, str]] = []
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    wrong_by_kind: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    by_shape: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for case, heard in zip(cases, extracted, strict=True):
        call = None if case.audio_name is None else CallState(case.status, case.failed_stage)
        verdicts = decide_call([_booked(b) for b in case.booked],
                               MappingOutcome(case.audio_name, triaging_ran=True),
                               call, heard, case.segments)
        for v, truth, kind, b in zip(verdicts, case.truth, case.kinds, case.booked,
                                     strict=True):
            pairs.append((truth, v.verdict))
            by_shape[case.shape].append((truth, v.verdict))
            confusion[truth][v.verdict] += 1
            by_kind[kind] += 1
            if v.verdict != truth:
                wrong_by_kind[kind] += 1
                if len(examples) < errors:
                    examples.append({"trade": b, "class": kind, "truth": truth,
                                     "verdict": v.verdict, "reason": v.reason,
                                     "extracted": heard,
                                     "transcript": [s["text"] for s in case.segments]})
    mismatch = _pr(pairs, "mismatch")
    confirmed = _pr(pairs, "confirmed")
    return {
        "benchmark": "verdicts", "seed": seed, "trades": len(pairs), "calls": len(cases),
        "mismatch": mismatch, "confirmed": confirmed,
        "accuracy": round(sum(t == p for t, p in pairs) / len(pairs), 4) if pairs else None,
        "target": TARGET,
        "target_met": all((mismatch[k] or 0) >= TARGET for k in ("precision", "recall")),
        "by_shape": {shape: {"trades": len(p), "mismatch": _pr(p, "mismatch"),
                             "confirmed": _pr(p, "confirmed")}
                     for shape, p in sorted(by_shape.items())},
        "confusion": {t: dict(c) for t, c in sorted(confusion.items())},
        "by_class": dict(sorted(by_kind.items())),
        "errors_by_class": dict(sorted(wrong_by_kind.items())),
        "examples": examples,
        "llm1_s": round(t_llm1, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.verdicts",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--trades", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--errors", type=int, default=5,
                    help="how many wrong verdicts to print in full")
    ap.add_argument("--raw", action="store_true",
                    help="also draw transcripts without any punctuation")
    a = ap.parse_args(argv)
    if a.trades < 1:
        ap.error("--trades must be >= 1")
    shapes = (*SHAPES, "raw") if a.raw else SHAPES
    json.dump(run(a.trades, a.seed, a.errors, shapes), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
