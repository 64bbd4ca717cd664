"""The demo's steps: make the sample batch, run it, print what cofi found."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from cofid.commands.run_batch import run_batch_command
from cofid.config import parse_config
from cofid.ctl.escape import terminal_text
from cofid.demo.sample_batch import make_sample_batch
from cofid.domain.verdicts import V_MISMATCH, VERDICTS
from cofid.store.reports import call_report, calls_overview, trade_verdicts

OUT = Path("demo-out")


def demo_config(out: Path, prompts_dir: str) -> dict[str, Any]:
    return {
        "paths": {"data": str(out / "var")},
        "backends": {
            "cpu": {
                "ivr_prompts_dir": prompts_dir,
                "model_cache": str(Path(".cache/models").resolve()),
            },
        },
        "service": {"log_level": "WARNING"},
    }


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:f}".rstrip("0").rstrip(".")


def show_calls(url: str, manifest: dict[str, Any]) -> None:
    """Every call: what the sample batch meant it to be, and what cofi found."""
    rows = calls_overview(url)
    print(
        f"\n  {'call':<32}{'expected':<10}{'language':<10}{'seconds':>8}  {'IVR trim':>8}  status"
    )
    for r in rows:
        expected = (manifest.get(r["audio_name"]) or {}).get("language", "?")
        trim = f"{r['ivr_trim_offset']:.2f} s" if r["ivr_trim_offset"] else "-"
        print(
            f"  {r['audio_name']:<32}{expected:<10}{r['lang']:<10}{r['audio_duration']:>8.1f}"
            f"  {trim:>8}  {r['status']}"
        )


def show_call(url: str, audio_name: str) -> None:
    report = call_report(url, audio_name)
    if report is None:
        print(f"(no call {audio_name})")
        return
    call, fd = report["call"], report["file_distribution"]
    print(
        f"\n== {audio_name}: status {call['status']}, language {call['lang']} "
        f"(id {call['language_id']}), {call['audio_duration']:.1f} s"
    )
    if fd is not None and fd["ivr_trim_offset"]:
        print(f"   IVR trimmed at {fd['ivr_trim_offset']:.2f} s")
    print("-- transcript")
    for s in report["transcript"]:
        print(f"   [{s['start_time']:6.1f}–{s['end_time']:6.1f}] {s['text']}")
    print("-- extracted trades (LLM1)")
    for c in report["call_conversation"]:
        print(
            f"   {c['side']} {_num(c['quantity'])} {c['symbol']} @ {_num(c['price'])} "
            f"{c['order_type'] or ''}  (trade {c['trade_id'] or 'not matched'})"
        )
    print("-- audit answers (LLM2)")
    for a in report["audit_answer"]:
        print(f"   {a['question_order']:>2}. {a['question']}\n       → {a['answer']}")


def _shown(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return _num(v)
    return terminal_text(v)  # a symbol or a heard word: data, never terminal control


def show_verdicts(url: str) -> None:
    """Every trade's verdict, the counts, and one mismatch with its fields and evidence."""
    rows = trade_verdicts(url)
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in VERDICTS}
    print("\n== trade verdicts: " + ", ".join(f"{v} {n}" for v, n in counts.items()))
    for r in rows:
        print(
            f"  {terminal_text(r['trade_id']):<8}{terminal_text(r['audio_name'] or '-'):<32}"
            f"{r['verdict']:<15}{terminal_text(r['reason'] or '')}"
        )
    mismatches = [r for r in rows if r["verdict"] == V_MISMATCH and r["fields"]]
    if not mismatches:
        return
    # The clearest example: the mismatch with the fewest disagreeing fields.
    r = min(mismatches, key=lambda m: sum(not f["agree"] for f in m["fields"].values()))
    print(
        f"\n== mismatch: trade {terminal_text(r['trade_id'])} on "
        f"{terminal_text(r['audio_name'])}\n   {terminal_text(r['reason'])}"
    )
    print(f"   {'field':<12}{'booked':<14}{'heard':<14}agrees")
    for name, f in r["fields"].items():
        print(
            f"   {name:<12}{_shown(f['booked']):<14}{_shown(f['heard']):<14}"
            f"{'yes' if f['agree'] else 'NO'}"
        )
    print("-- evidence")
    for e in r["evidence"] or []:
        print(f"   [{e['start']:6.1f}–{e['end']:6.1f}] {terminal_text(e['text'])}")


def main() -> int:
    t0 = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)
    batch = OUT / "batch"
    manifest = make_sample_batch(batch)
    print(
        f"sample batch: {batch} ({sum(1 for _ in batch.glob('*.wav'))} calls, "
        f"made in {time.monotonic() - t0:.1f} s)"
    )
    cfg = parse_config(demo_config(OUT, str(manifest["ivr_prompts_dir"])), source="make demo")
    rc = run_batch_command(cfg, batch, as_json=False)
    if rc != 0:
        return rc
    calls = manifest.get("calls", manifest)
    show_calls(cfg.database_url, {k: v for k, v in calls.items() if isinstance(v, dict)})
    english = next(
        (
            n
            for n, m in calls.items()
            if isinstance(m, dict) and m.get("language") == "en" and m.get("has_trade")
        ),
        None,
    )
    if english:
        show_call(cfg.database_url, english)
    show_verdicts(cfg.database_url)
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s; database: {cfg.database_url}")
    return 0
