"""`make demo`: a sample batch of real synthesized speech through the CPU engines.

Writes demo-out/batch (English and Hindi calls, an IVR prompt with DTMF tones, a call
under 5 s, a call in an unsupported language, CSVs with matching trades), runs
`cofid run-batch` on SQLite with the embedded default's CPU backends, and prints the
per-stage summary plus one call's language, transcript, extracted trades and answers.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from cofid.commands.run_batch import run_batch_command
from cofid.config import parse_config
from cofid.store import tables as t

OUT = Path("demo-out")


def demo_config(out: Path, prompts_dir: str) -> dict:
    return {
        "paths": {"data": str(out / "var")},
        "backends": {
            "cpu": {"ivr_prompts_dir": prompts_dir, "model_cache": str(Path(".cache/models").resolve())},
        },
        "service": {"log_level": "WARNING"},
    }


def _num(v) -> str:
    return "-" if v is None else f"{v:f}".rstrip("0").rstrip(".")


def show_calls(url: str, manifest: dict) -> None:
    """Every call: what the sample batch meant it to be, and what cofi found."""
    engine = sa.create_engine(url)
    fd, c = t.file_distribution, t.call
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.c.audioName, c.c.lang, c.c.audioDuration, c.c.status,
                                      fd.c.ivrTrimOffset)
                            .select_from(c.join(fd, sa.and_(fd.c.batchId == c.c.batchId,
                                                            fd.c.file == c.c.audioName)))
                            .order_by(c.c.audioName)).all()
    engine.dispose()
    print(f"\n  {'call':<32}{'expected':<10}{'language':<10}{'seconds':>8}  {'IVR trim':>8}  status")
    for r in rows:
        expected = (manifest.get(r.audioName) or {}).get("language", "?")
        trim = f"{r.ivrTrimOffset:.2f} s" if r.ivrTrimOffset else "-"
        print(f"  {r.audioName:<32}{expected:<10}{r.lang:<10}{r.audioDuration:>8.1f}  {trim:>8}  {r.status}")


def show_call(url: str, audio_name: str) -> None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        call = conn.execute(sa.select(t.call).where(t.call.c.audioName == audio_name)
                            .order_by(t.call.c.id.desc())).first()
        if call is None:
            print(f"(no call {audio_name})")
            return
        print(f"\n== {audio_name}: status {call.status}, language {call.lang} "
              f"(id {call.languageId}), {call.audioDuration:.1f} s")
        fd = conn.execute(sa.select(t.file_distribution).where(
            t.file_distribution.c.batchId == call.batchId, t.file_distribution.c.file == audio_name)).first()
        if fd is not None and fd.ivrTrimOffset:
            print(f"   IVR trimmed at {fd.ivrTrimOffset:.2f} s")
        print("-- transcript")
        for s in conn.execute(sa.select(t.transcript).where(t.transcript.c.callId == call.id)
                              .order_by(t.transcript.c.segmentIndex)):
            print(f"   [{s.startTime:6.1f}–{s.endTime:6.1f}] {s.text}")
        print("-- extracted trades (LLM1)")
        for c in conn.execute(sa.select(t.call_conversation).where(t.call_conversation.c.callId == call.id)):
            print(f"   {c.side} {_num(c.quantity)} {c.symbol} @ {_num(c.price)} {c.orderType or ''}"
                  f"  (trade {c.tradeId or 'not matched'})")
        print("-- audit answers (LLM2)")
        for a in conn.execute(sa.select(t.audit_answer).where(t.audit_answer.c.callId == call.id)
                              .order_by(t.audit_answer.c.questionOrder)):
            print(f"   {a.questionOrder:>2}. {a.question}\n       → {a.answer}")
    engine.dispose()


def main() -> int:
    from cofid.testing.sample_batch import make_sample_batch

    t0 = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)
    batch = OUT / "batch"
    manifest = make_sample_batch(batch)
    print(f"sample batch: {batch} ({sum(1 for _ in batch.glob('*.wav'))} calls, "
          f"made in {time.monotonic() - t0:.1f} s)")
    cfg = parse_config(demo_config(OUT, str(manifest["ivr_prompts_dir"])), source="make demo")
    rc = run_batch_command(cfg, batch, as_json=False)
    if rc != 0:
        return rc
    calls = manifest.get("calls", manifest)
    show_calls(cfg.database_url, {k: v for k, v in calls.items() if isinstance(v, dict)})
    english = next((n for n, m in calls.items() if isinstance(m, dict)
                    and m.get("language") == "en" and m.get("has_trade")), None)
    if english:
        show_call(cfg.database_url, english)
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s; database: {cfg.database_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
