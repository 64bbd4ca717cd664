"""The embedded default (CPU Whisper base) gives the same rows straight and after SIGKILLs.

An audit record must not depend on how a run went: three calls of the demo batch (English,
Hinglish, Hindi) run once uninterrupted and once killed twice with SIGKILL while
transcripts are being committed, then resumed to the end. Every result table (transcript
rows, LID rows, call columns, answers, verdicts) must be equal, and each STT result
records the model's SHA-256 and the decode settings (its file_complete event).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from cofid.backends.cpu import whisper_model
from cofid.testing.batches import to_toml
from cofid.testing.dbdump import diff_dumps, normalized_dump

ROOT = Path(__file__).resolve().parents[2]
KEEP = ("call_en_infosys.wav", "call_hinglish_wipro.wav", "call_hi_reliance_8k.wav")
RESULT_TABLES = ("transcript", "lidStatus", "call", "callConversation", "auditAnswer")
CPU_THREADS = int(os.environ.get("COFI_TEST_CPU_THREADS", "2"))


def _subset(sample: Path, target: Path) -> Path:
    """The three calls with their metadata rows, and every trade (others map to no call)."""
    target.mkdir(parents=True)
    for name in KEEP:
        shutil.copy(sample / name, target / name)
    with (sample / "callMetadata.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["audioName"] in KEEP]
        fields = reader.fieldnames or []
    with (target / "callMetadata.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    shutil.copy(sample / "tradeMetadata.csv", target / "tradeMetadata.csv")
    return target


def _config(tmp: Path, name: str, model_cache: Path, prompts: str) -> tuple[Path, str]:
    url = f"sqlite:///{tmp / f'{name}.db'}"
    cfg = {
        "database": {"url": url},
        "paths": {"data": str(tmp / f"{name}-data")},
        "backends": {"cpu": {"model_cache": str(model_cache), "ivr_prompts_dir": prompts,
                             "cpu_threads": CPU_THREADS}},
    }  # fmt: skip
    path = tmp / f"{name}.toml"
    path.write_text(to_toml(cfg))
    return path, url


def _start(cfg: Path, batch: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cofid.cli", "--config", str(cfg), "--log-level", "ERROR",
         "run-batch", str(batch), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out)


def _stt_done(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT COUNT(*) FROM batchExecutionLog "
                "WHERE eventType = 'file_complete' AND stage = 'stt'"
            )).scalar_one())  # fmt: skip
    except sa.exc.DBAPIError:  # no schema yet, or locked for a moment
        return 0
    finally:
        engine.dispose()


def test_straight_and_killed_then_resumed_runs_give_identical_rows(
    sample_batch, whisper_base_dir: Path, tmp_path: Path
):
    sample, manifest = sample_batch
    batch = _subset(sample, tmp_path / "batch")
    prompts, cache = manifest["ivr_prompts_dir"], whisper_base_dir.parent

    ref_cfg, ref_url = _config(tmp_path, "straight", cache, prompts)
    assert _finish(_start(ref_cfg, batch))["status"] == "Completed"
    reference = normalized_dump(ref_url)
    assert len(reference["transcript"]) > 0

    cfg, url = _config(tmp_path, "killed", cache, prompts)
    kills = 0
    for target in (1, 2):  # kill right after the first and the second transcript commit
        proc = _start(cfg, batch)
        while proc.poll() is None and _stt_done(url) < target:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 1
    assert _finish(_start(cfg, batch))["status"] == "Completed"
    got = normalized_dump(url)

    want = {name: reference[name] for name in RESULT_TABLES}
    have = {name: got[name] for name in RESULT_TABLES}
    assert have == want, "\n".join(diff_dumps(want, have))
    # Each transcribed call's STT result names the model digest and the decode settings.
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        transcribed = set(
            conn.execute(
                sa.text(
                    "SELECT DISTINCT c.audioName FROM transcript t JOIN `call` c ON c.id = t.callId"
                )
            ).scalars()
        )
        responses = dict(conn.execute(sa.text(
            "SELECT fileName, response FROM batchExecutionLog WHERE eventType = 'file_complete' "
            "AND stage = 'stt' AND status = 'success'"
        )).all())  # fmt: skip
    engine.dispose()
    assert transcribed and transcribed <= set(responses), (transcribed, list(responses))
    for name in transcribed:
        decoder = json.loads(responses[name])["decoder"]
        assert decoder["model_sha256"] == whisper_model.WHISPER_BASE_SHA256
        assert decoder["cpu_threads"] == CPU_THREADS and decoder["params"]["temperature"] == [0.0]
