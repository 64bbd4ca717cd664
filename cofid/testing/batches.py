"""A batch directory whose every outcome is known in advance, for the pipeline tests.

`write_fixture_batch(dir)` writes calls named after the conventions of
`cofid.backends.fake.default_script` (so the "fake" backends decide each call's
language, duration, segments and failures), real WAV bytes (a tenth of a second of quiet
noise, written with soundfile; the fake backends never decode them) and the two CSVs, and
returns what a run of the batch must leave in the tables.

The calls:

  call_01_long.wav      English, two trades mapped (one during, one after the call)
  call_02_long.wav      English, no trade (its client trades through an app only)
  call_03_hi_long.wav   Hindi, one trade mapped (booked just before the call started)
  call_04_short.wav     2.5 s: ShortCall, one trade mapped all the same
  call_05_fr.wav        unsupported language, no trade
  call_06_corrupt.wav   not audio at all: fails its first stage, PermanentBackendError
  call_07_flaky.wav     fails the first attempt of each audio stage, then succeeds; one trade
  call_NNN_bulk.wav     `extra_calls` more English calls, every other one with a trade

Every call has a callMetadata row. tradeMetadata also holds a trade of a client who never
called (T900) and one of call_02's client booked hours after the call (T901): neither maps.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from cofid.backends.fake import default_script
from cofid.domain.model import LANGUAGE_IDS, CallStatus, Language

DAY = datetime(2026, 1, 5, 4, 0, 0)  # 09:30 IST, stored as naive UTC
MIN_DURATION_S = 5.0
ALLOWED = ("en", "hi", "hinglish")

# name, client, start offset (minutes after DAY), trades as (id, symbol, side, qty, price,
# offset in seconds from the call start)
_CALLS: tuple[tuple[str, str, int, tuple[tuple[str, str, str, int, str, int], ...]], ...] = (
    ("call_01_long.wav", "C001", 0, (
        ("T001", "INFY", "BUY", 100, "1500.50", 20),
        ("T002", "TCS", "SELL", 5, "3400", 600),  # 10 min after the start: past the end
    )),
    ("call_02_long.wav", "C002", 5, ()),
    ("call_03_hi_long.wav", "C003", 10, (("T003", "RELIANCE", "BUY", 20, "2450.25", -120),)),
    ("call_04_short.wav", "C004", 15, (("T004", "HDFCBANK", "SELL", 10, "1600", 1),)),
    ("call_05_fr.wav", "C005", 20, ()),
    ("call_06_corrupt.wav", "C006", 25, ()),
    ("call_07_flaky.wav", "C007", 30, (("T007", "SBIN", "BUY", 300, "610.10", 30),)),
)
_UNMAPPED = (
    ("T900", "C999", "ITC", "BUY", 1, "450", DAY + timedelta(minutes=3)),
    ("T901", "C002", "WIPRO", "SELL", 7, "480.5", DAY + timedelta(hours=3)),
)


def _wav_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(800) * 0.003).astype(np.float32)  # 0.1 s at 8 kHz
    buf = io.BytesIO()
    sf.write(buf, samples, 8000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _t(dt: datetime, sep: str = "T") -> str:
    return dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def _trade_row(client, symbol, side, qty, price, at, audio_name) -> dict[str, Any]:
    """The tradeMetadata row as cofid.testing.dbdump shows it."""
    return {"clientCode": client, "symbol": symbol, "side": side, "quantity": str(qty),
            "price": format(Decimal(price).normalize(), "f"), "tradeTime": _t(at, " "),
            "audioName": audio_name}


def fixture_calls(extra_calls: int = 0):
    calls = list(_CALLS)
    for i in range(extra_calls):
        trades: tuple[tuple[str, str, str, int, str, int], ...] = ()
        if i % 2 == 0:
            trades = ((f"TB{i:03d}", "INFY", "BUY", 10 + i, "1500", 15),)
        calls.append((f"call_{100 + i:03d}_bulk.wav", f"CB{i:03d}", 40 + i, trades))
    return calls


def write_fixture_batch(
    directory: Path, *, extra_calls: int = 0, first_stage: str = "denoise"
) -> dict[str, Any]:
    """Write the batch into `directory` (created) and return the expected outcome:

    {"files": [names], "calls": {name: {...}}, "trades": {tradeId: audioName | None},
     "total_files": n, "transcript_rows": n, "failed": {name: stage}, "flaky": [names],
     "call_metadata": {name: row}, "trade_metadata": {tradeId: row},
     "mappings": {tradeId: (audioName, distanceSeconds)}}

    Each call's entry: status, lang, languageId, audioDuration, segments (transcript rows),
    trades (mapped trade ids), failed_stage (None, or `first_stage`: the first file stage
    the batch runs, where the corrupt file fails), stt_done / llm_done (bool),
    lid_row (whether a lidStatus row is written).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    calls = fixture_calls(extra_calls)
    call_csv = io.StringIO()
    cw = csv.writer(call_csv, lineterminator="\n")
    cw.writerow(["audioName", "clientCode", "agentId", "callStartTime", "callEndTime"])
    trade_csv = io.StringIO()
    tw = csv.writer(trade_csv, lineterminator="\n")
    tw.writerow(["tradeId", "clientCode", "symbol", "side", "quantity", "price", "tradeTime"])
    expected_calls: dict[str, dict[str, Any]] = {}
    trade_to_call: dict[str, str | None] = {}
    call_rows: dict[str, dict[str, Any]] = {}
    trade_rows: dict[str, dict[str, Any]] = {}
    mappings: dict[str, tuple[str, float]] = {}
    for i, (name, client, start_min, trades) in enumerate(calls):
        fc = default_script(name)
        start = DAY + timedelta(minutes=start_min)
        end = start + timedelta(seconds=max(1, round(fc.duration_s)))
        cw.writerow([name, client, f"AG{i % 3:02d}", _t(start), _t(end)])
        call_rows[name] = {"clientCode": client, "agentId": f"AG{i % 3:02d}",
                           "callStartTime": _t(start, " "), "callEndTime": _t(end, " ")}
        if fc.corrupt:
            (d / name).write_bytes(b"this is not audio \x00\x01\x02" * 4)
        else:
            (d / name).write_bytes(_wav_bytes(i))
        for tid, sym, side, qty, price, off in trades:
            at = start + timedelta(seconds=off)
            tw.writerow([tid, client, sym, side, qty, price, _t(at)])
            trade_to_call[tid] = name
            trade_rows[tid] = _trade_row(client, sym, side, qty, price, at, name)
            # Distance to the call window [start, end]: 0 inside, else to the nearer edge.
            distance = -off if off < 0 else max(0, off - (end - start).total_seconds())
            mappings[tid] = (name, float(distance))
        expected_calls[name] = _expect(fc, tuple(t[0] for t in trades), first_stage)
    for tid, client, sym, side, qty, price, at in _UNMAPPED:
        tw.writerow([tid, client, sym, side, qty, price, _t(at)])
        trade_to_call[tid] = None
        trade_rows[tid] = _trade_row(client, sym, side, qty, price, at, None)
    (d / "callMetadata.csv").write_text(call_csv.getvalue(), encoding="utf-8")
    (d / "tradeMetadata.csv").write_text(trade_csv.getvalue(), encoding="utf-8")
    return {
        "files": sorted(expected_calls),
        "calls": expected_calls,
        "trades": trade_to_call,
        "total_files": len(expected_calls),
        "transcript_rows": sum(c["segments"] for c in expected_calls.values()),
        "failed": {n: c["failed_stage"] for n, c in expected_calls.items() if c["failed_stage"]},
        "flaky": sorted(n for n in expected_calls if default_script(n).flaky),
        "call_metadata": call_rows,
        "trade_metadata": trade_rows,
        "mappings": mappings,
    }


def _expect(fc, trade_ids: tuple[str, ...], first_stage: str) -> dict[str, Any]:
    if fc.corrupt:
        # Fails the first enabled audio stage: no language, duration or transcript.
        # The failure contract: call.status 'Failed', failedStage says where.
        return {"status": CallStatus.FAILED, "lang": "unknown", "languageId": 0,
                "audioDuration": 0.0, "segments": 0, "trades": trade_ids,
                "failed_stage": first_stage, "stt_done": False, "llm_done": False,
                "lid_row": False}
    lang = fc.language
    if fc.duration_s < MIN_DURATION_S:
        status = CallStatus.SHORT_CALL
    elif lang not in ALLOWED:
        status = CallStatus.UNSUPPORTED_LANGUAGE
    else:
        status = CallStatus.COMPLETE
    transcribed = status == CallStatus.COMPLETE
    return {
        "status": status,
        "lang": lang,
        "languageId": LANGUAGE_IDS[Language(lang)],
        "audioDuration": fc.duration_s,
        "segments": fc.segments if transcribed else 0,
        "trades": trade_ids,
        "failed_stage": None,
        "stt_done": transcribed,
        "llm_done": transcribed,
        "lid_row": True,
    }


def fake_config(db_url: str, data_dir: Path | str, *, latency_s: float = 0.0,
                slots: int = 2) -> dict[str, Any]:
    """The configuration (as parsed TOML) of a run on the fake backends with every stage on.

    `slots` is the pseudo-GPU's concurrency (backends.cpu.cpu_threads); retries back off
    for milliseconds so the flaky call costs no time.
    """
    return {
        "database": {"url": db_url},
        "paths": {"data": str(data_dir)},
        "backends": {
            "denoise": "fake", "ivr": "fake", "lid": "fake", "stt": "fake", "chat": "fake",
            "fake_latency_s": latency_s,
            "cpu": {"cpu_threads": slots},
        },
        "pipelines": {"batch": {"denoise": True, "ivr": True, "callmetadata": True,
                                "trademetadata": True, "triaging": True, "llm1": True,
                                "llm2": True}},
        "stages": {"retry": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}},
        "service": {"log_level": "WARNING"},
    }


def to_toml(config: dict[str, Any]) -> str:
    """TOML text for a configuration of tables, arrays of tables, arrays of scalars,
    strings, numbers and booleans."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def is_table_array(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any], header: str | None = None) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict) and not is_table_array(v)}
        if header is not None:
            lines.append(header)
        elif prefix and plain:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {scalar(v)}" for k, v in plain.items())
        for k, v in d.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                table(name, v)
            elif is_table_array(v):
                for item in v:
                    table(name, item, header=f"[[{name}]]")

    table("", config)
    return "\n".join(lines) + "\n"
