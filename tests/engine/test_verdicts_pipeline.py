"""The tradeVerdict table as the pipeline keeps it: the exact rows of a batch on the fake
backends (the rules chat backend reads the fake transcripts), after reaudits, without a
trade file, with [stages.verdicts] configured, and after crashes — in process right after
a verdict commits, and SIGKILLs of `cofid run-batch` at random moments (identical rows
after resume). On SQLite and MariaDB (`db_url`).

The batch is cofid.testing.verdict_batch: its docstring says what each call and trade is.
"""

from __future__ import annotations

import random
import signal
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cofid.backends.fake import default_script
from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.service.reaudit import resolve, run_reaudit
from cofid.store import tables as t
from cofid.store import verdicts as verdict_rows
from cofid.store.writes import utcnow
from cofid.testing.batches import fake_config
from cofid.testing.dbdump import diff_dumps, normalized_dump
from cofid.testing.verdict_batch import write_verdict_batch
from tests.engine.test_crash_recovery import (
    Progress,
    _db_upgrade,
    _finish,
    _other_db,
    _start,
    _write_config,
)

BKEY = f"{date.today().isoformat()}#1"
CONFIRMED_REASON = "read back or stated and confirmed"
NOT_CONFIRMED = "not confirmed: the order is stated but the client never says yes to it"


def _market(booked_price: float) -> dict[str, Any]:
    return {
        "booked": booked_price,
        "heard": "MARKET",
        "agree": True,
        "note": "market order: price not compared",
    }


def _fields(
    symbol: str, side: str, qty: float, price: float, q: int, heard_side: str = "BUY"
) -> dict[str, Any]:
    """The fields of a booked trade against the fake transcript's "buy q shares of INFY
    at market price"."""
    return {
        "symbol": {
            "booked": symbol,
            "heard": "INFY",
            "agree": symbol in ("INFY", "Infosys"),
            "note": None,
        },
        "side": {"booked": side, "heard": heard_side, "agree": side == heard_side, "note": None},
        "quantity": {"booked": qty, "heard": float(q), "agree": qty == q, "note": None},
        "price": _market(price),
        "order_type": {
            "booked": None,
            "heard": "MARKET",
            "agree": True,
            "note": "no order type booked",
        },
    }


def _segments(name: str, *indexes: int) -> list[dict[str, Any]]:
    """The fake transcript's segments (cofid.backends.fake.FakeBackends.transcribe)."""
    fc = default_script(name)
    q = 100 + (len(name) % 9) * 50
    step = fc.duration_s / max(1, fc.segments)
    texts = {
        2: f"I want to buy {q} shares of INFY at market price.",
        3: f"Just to confirm, you want to buy {q} shares of INFY at market price.",
        4: "Yes, I confirm.",
    }
    return [
        {"start": round(i * step, 3), "end": round((i + 1) * step, 3), "text": texts[i]}
        for i in indexes
    ]


def _row(
    trade_id: str,
    audio: str | None,
    verdict: str,
    reason: str,
    fields: dict | None = None,
    evidence: list | None = None,
) -> dict[str, Any]:
    return {
        "batchId": BKEY,
        "tradeId": trade_id,
        "audioName": audio,
        "callId": f"{BKEY}/{audio}" if audio else None,
        "verdict": verdict,
        "reason": reason,
        "fields": fields,
        "evidence": evidence,
    }


def _confirmed(trade_id: str, audio: str, symbol: str, qty: int) -> dict[str, Any]:
    return _row(
        trade_id,
        audio,
        "confirmed",
        CONFIRMED_REASON,
        _fields(symbol, "BUY", float(qty), 1500.0, qty),
        _segments(audio, 2, 3, 4),
    )


EXPECTED: dict[str, dict[str, Any]] = {
    "TC1": _confirmed("TC1", "v00_conf.wav", "INFY", 250),
    # "Infosys" in the trade file is INFY (symbol aliases); the call is retried per stage.
    "TF1": _confirmed("TF1", "v05_flaky.wav", "Infosys", 300),
    "TW1": _confirmed("TW1", "v00_two.wav", "INFY", 200),
    "TQ1": _row(
        "TQ1",
        "v00_qty.wav",
        "mismatch",
        "quantity: booked 2000, heard 200",
        _fields("INFY", "BUY", 2000.0, 1500.0, 200),
        _segments("v00_qty.wav", 2, 3, 4),
    ),
    "TU1": _row(
        "TU1",
        "v03_unconf.wav",
        "mismatch",
        NOT_CONFIRMED,
        _fields("INFY", "BUY", 350.0, 1500.0, 350),
        _segments("v03_unconf.wav", 2, 3),
    ),
    "TW2": _row(
        "TW2",
        "v00_two.wav",
        "mismatch",
        "symbol: booked TCS, heard INFY; side: booked SELL, heard BUY; "
        "quantity: booked 10, heard 200",
        _fields("TCS", "SELL", 10.0, 3400.0, 200),
        _segments("v00_two.wav", 2, 3, 4),
    ),
    "TS1": _row("TS1", "v10_short.wav", "call_unusable", "the call is ShortCall"),
    "TL1": _row("TL1", "v11_fr.wav", "call_unusable", "the call is UnsupportedLanguage"),
    "TX1": _row("TX1", "v12_corrupt.wav", "call_unusable", "the call failed stage denoise"),
    "TN1": _row("TN1", None, "no_call", "triaging mapped the trade to no call"),
}
COUNTS = {"confirmed": 3, "mismatch": 3, "no_call": 1, "call_unusable": 3, "pending": 0}


def _verdicts(url: str) -> dict[str, dict[str, Any]]:
    return {r["tradeId"]: r for r in normalized_dump(url)["tradeVerdict"]}


def _raw(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(t.trade_verdict))]
    finally:
        engine.dispose()


async def _run(url: str, data_dir: Path, batch_dir: Path, **config: Any) -> int:
    cfg = fake_config(url, data_dir)
    cfg["stages"].update(config)
    async with open_app(parse_config(cfg)) as app:
        batch_id = await app.prepare_batch(batch_dir)
        await app.run_batch(batch_id)
        return batch_id


async def _reaudit(
    url: str,
    data_dir: Path,
    names: list[str],
    stages: list[str],
    *,
    failing: set[str] = frozenset(),
) -> None:
    async with open_app(parse_config(fake_config(url, data_dir))) as app:
        for gpu in app.pool.gpus:  # the fake backends: these names fail every attempt
            gpu.backends.stt.fail_names |= set(failing)
        req = await resolve(app, names, stages)
        app.reservations.reserve(req)
        try:
            await run_reaudit(app, req)
        finally:
            app.reservations.release(req)


async def test_every_trade_of_the_batch_has_exactly_its_verdict(db_url, tmp_path):
    write_verdict_batch(tmp_path / "batch")
    before = utcnow()
    batch_id = await _run(db_url, tmp_path / "data", tmp_path / "batch")
    after = utcnow()
    assert _verdicts(db_url) == EXPECTED
    raw = _raw(db_url)
    assert len(raw) == len(EXPECTED)  # one row per trade, nothing for v13_none.wav
    # decidedAt: UTC, written while the batch ran (the stored precision is milliseconds).
    # MariaDB rounds to the millisecond: hence the slack at both ends.
    slack = timedelta(milliseconds=1)
    assert all(before - slack <= r["decidedAt"] <= after + slack for r in raw)
    assert verdict_rows.verdict_counts(db_url, batch_id) == COUNTS
    # The counts also take an open connection (inside Database.read) and an Engine.
    engine = sa.create_engine(db_url)
    try:
        assert verdict_rows.verdict_counts(engine, batch_id) == COUNTS
        with engine.connect() as conn:
            assert verdict_rows.verdict_counts(conn, batch_id + 1) == dict.fromkeys(COUNTS, 0)
    finally:
        engine.dispose()


async def test_reaudits_reset_and_recompute_the_verdicts_of_their_calls(db_url, tmp_path):
    write_verdict_batch(tmp_path / "batch")
    data = tmp_path / "data"
    await _run(db_url, data, tmp_path / "batch")
    decided = {r["tradeId"]: r["decidedAt"] for r in _raw(db_url)}

    # llm2 alone: the verdicts read nothing it re-makes, so they are not even rewritten.
    await _reaudit(db_url, data, ["v00_conf.wav"], ["llm2"])
    assert _verdicts(db_url) == EXPECTED
    assert {r["tradeId"]: r["decidedAt"] for r in _raw(db_url)} == decided

    # stt alone: a new transcript that LLM1 has not read yet, so the trades wait for it.
    await _reaudit(db_url, data, ["v00_conf.wav", "v00_two.wav"], ["stt"])
    pending = "LLM1 has not run for the call (status TranscriptDone)"
    assert _verdicts(db_url) == {
        **EXPECTED,
        "TC1": _row("TC1", "v00_conf.wav", "pending", pending),
        "TW1": _row("TW1", "v00_two.wav", "pending", pending),
        "TW2": _row("TW2", "v00_two.wav", "pending", pending),
    }

    # llm1 (and llm2): decided again from the new extraction: the batch's verdicts.
    await _reaudit(db_url, data, ["v00_conf.wav", "v00_two.wav"], ["llm1", "llm2"])
    assert _verdicts(db_url) == EXPECTED

    # A call whose reaudited STT fails for good: its trade is unusable, naming the stage;
    # the untouched calls keep their rows.
    await _reaudit(db_url, data, ["v00_qty.wav"], ["stt", "llm1"], failing={"v00_qty.wav"})
    assert _verdicts(db_url) == {
        **EXPECTED,
        "TQ1": _row("TQ1", "v00_qty.wav", "call_unusable", "the call failed stage stt"),
    }
    after = {r["tradeId"]: r["decidedAt"] for r in _raw(db_url)}
    assert all(after[k] == decided[k] for k in ("TU1", "TX1", "TN1", "TS1"))

    # ...and the same call reaudited once the GPU answers again: its verdict comes back.
    await _reaudit(db_url, data, ["v00_qty.wav"], ["stt", "llm1"])
    assert _verdicts(db_url) == EXPECTED


async def test_a_batch_without_a_trade_file_gets_no_verdicts(sqlite_url, tmp_path):
    write_verdict_batch(tmp_path / "batch")
    (tmp_path / "batch" / "tradeMetadata.csv").unlink()
    batch_id = await _run(sqlite_url, tmp_path / "data", tmp_path / "batch")
    assert _raw(sqlite_url) == []
    assert verdict_rows.verdict_counts(sqlite_url, batch_id) == dict.fromkeys(COUNTS, 0)


async def test_the_configured_rules_decide(sqlite_url, tmp_path):
    """[stages.verdicts] reaches the verdicts: with an alias that makes "Infy Tech" INFY,
    a trade booked as "Infy Tech" is the INFY order the call confirms; without it, another
    symbol."""
    batch = tmp_path / "batch"
    write_verdict_batch(batch)
    trades = (
        (batch / "tradeMetadata.csv").read_text().replace(",INFY,BUY,2000,", ",Infy Tech,BUY,200,")
    )
    (batch / "tradeMetadata.csv").write_text(trades)
    await _run(
        sqlite_url, tmp_path / "data", batch, verdicts={"symbol_aliases": {"infy tech": "infy"}}
    )
    tq1 = _verdicts(sqlite_url)["TQ1"]
    assert (tq1["verdict"], tq1["reason"]) == ("confirmed", CONFIRMED_REASON)
    assert tq1["fields"]["symbol"] == {
        "booked": "Infy Tech",
        "heard": "INFY",
        "agree": True,
        "note": None,
    }
    # Without the alias the same booking is another symbol.
    other = tmp_path / "other"
    write_verdict_batch(other)
    (other / "tradeMetadata.csv").write_text(trades)
    url = f"sqlite:///{tmp_path / 'other.db'}"
    await _run(url, tmp_path / "other-data", other)
    tq1 = _verdicts(url)["TQ1"]
    assert (tq1["verdict"], tq1["reason"]) == ("mismatch", "symbol: booked Infy Tech, heard INFY")


async def test_a_crash_right_after_a_verdict_commits_then_resume(sqlite_url, tmp_path, monkeypatch):
    """A call's outcome (a failure, a gate, an LLM1 result) and its trades' verdicts commit
    together: die at the very next database call after the first such transaction,
    restart, and the rows are those of a run that never stopped (the expected ones)."""
    write_verdict_batch(tmp_path / "batch")
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    await _run(ref_url, tmp_path / "ref-data", tmp_path / "batch")

    state = {"decided": 0, "armed": False}
    original = verdict_rows.recompute

    def spy(conn, batch_id, rules=verdict_rows.DEFAULT_RULES, *, audio_names=None):
        written = original(conn, batch_id, rules, audio_names=audio_names)
        if audio_names is not None and written:  # a call's verdicts, not the batch step's
            state["decided"] += 1
        return written

    monkeypatch.setattr(verdict_rows, "recompute", spy)
    cfg = parse_config(fake_config(sqlite_url, tmp_path / "data"))
    try:
        async with open_app(cfg) as app:
            run = app.db.run

            async def run_or_crash(fn, *args, **kwargs):
                if state["armed"]:
                    raise Killed("after a call's verdicts")
                result = await run(fn, *args, **kwargs)
                if state["decided"]:
                    state["armed"] = True
                return result

            app.db.run = run_or_crash
            batch_id = await app.prepare_batch(tmp_path / "batch")
            await app.run_batch(batch_id)
    except BaseException as exc:  # noqa: BLE001 - a crash, possibly inside an ExceptionGroup
        if not _killed(exc):
            raise
    else:
        pytest.fail("no database call after the first call's verdicts")
    finally:
        monkeypatch.undo()
    crashed = _verdicts(sqlite_url)
    assert set(crashed) == set(EXPECTED)  # every trade has its one row already...
    decided = {k for k, r in crashed.items() if r["audioName"] and r["verdict"] != "pending"}
    assert decided and all(crashed[k] == EXPECTED[k] for k in decided)  # ...some final
    await _run(sqlite_url, tmp_path / "data", tmp_path / "batch")
    reference, got = _results(normalized_dump(ref_url)), _results(normalized_dump(sqlite_url))
    assert got == reference, "\n".join(diff_dumps(reference, got))
    assert _verdicts(sqlite_url) == EXPECTED


def _results(dump: dict[str, list]) -> dict[str, list]:
    """Every table but the event log (its stage events depend on where a run stopped:
    test_crash_recovery checks them)."""
    return {name: rows for name, rows in dump.items() if name != "batchExecutionLog"}


class Killed(BaseException):
    """The process dying where it is raised: a BaseException, so that no `except
    Exception` of the engine or the writer takes it for a bad result."""


def _killed(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_killed(e) for e in exc.exceptions)
    return isinstance(exc, Killed)


KILLS = 6
SEED = 20261202


def test_sigkills_mid_batch_then_resume_give_the_same_verdicts(db_url, tmp_path, request):
    batch_dir = tmp_path / "batch"
    write_verdict_batch(batch_dir)
    ref_url = _other_db(request, db_url, tmp_path, "reference")
    ref_cfg = _write_config(tmp_path / "reference.toml", ref_url, tmp_path / "ref-data")
    _db_upgrade(ref_cfg)
    rc, summary, err = _finish(_start(ref_cfg, batch_dir))
    assert rc == 0, err
    # The summary of `cofid run-batch` counts the trades per verdict.
    assert summary["trade_verdicts"] == COUNTS
    reference = normalized_dump(ref_url)
    assert {r["tradeId"]: r for r in reference["tradeVerdict"]} == EXPECTED
    total = sum(
        1 for r in reference["batchExecutionLog"] if r["eventType"] in ("file_complete", "error")
    )

    cfg = _write_config(tmp_path / "crash.toml", db_url, tmp_path / "data")
    _db_upgrade(cfg)
    rng = random.Random(SEED)
    targets = sorted(rng.sample(range(1, total), KILLS))
    progress = Progress(db_url)
    kills: list[int] = []
    try:
        for target in targets:
            proc = _start(cfg, batch_dir)
            progress.wait_for(target, proc, time.monotonic() + 60)
            time.sleep(rng.uniform(0, 0.02))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills.append(progress.count())
            else:
                rc, _s, err = _finish(proc)
                assert rc == 0, err
        rc, summary, err = _finish(_start(cfg, batch_dir))
        assert rc == 0, err
    finally:
        progress.close()
    assert len(kills) >= KILLS // 2, kills  # most kills hit a running batch...
    assert any(0 < n < total for n in kills), kills  # ...with results half written
    assert summary["trade_verdicts"] == COUNTS
    got = normalized_dump(db_url)
    assert _results(got) == _results(reference), "\n".join(
        diff_dumps(_results(reference), _results(got))
    )
    assert {r["tradeId"]: r for r in got["tradeVerdict"]} == EXPECTED


async def test_a_batch_begun_before_the_verdict_table_gets_its_verdicts(sqlite_url, tmp_path):
    """A database upgraded to schema version 2 holds batches without verdict rows: the
    next run of such a batch (here: run again, once its rows are gone) decides them all."""
    write_verdict_batch(tmp_path / "batch")
    await _run(sqlite_url, tmp_path / "data", tmp_path / "batch")
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(t.trade_verdict))
    finally:
        engine.dispose()
    await _run(sqlite_url, tmp_path / "data", tmp_path / "batch")
    assert _verdicts(sqlite_url) == EXPECTED


async def test_a_bug_in_the_rules_leaves_its_trades_pending_and_the_batch_runs(
    sqlite_url, tmp_path, monkeypatch
):
    original = verdict_rows.decide_call

    def broken(trades, mapping, call, extracted, segments, rules):
        if mapping.audio_name == "v00_qty.wav" and extracted is not None:
            raise ValueError("boom")
        return original(trades, mapping, call, extracted, segments, rules)

    monkeypatch.setattr(verdict_rows, "decide_call", broken)
    write_verdict_batch(tmp_path / "batch")
    batch_id = await _run(sqlite_url, tmp_path / "data", tmp_path / "batch")
    assert _verdicts(sqlite_url) == {
        **EXPECTED,
        "TQ1": _row("TQ1", "v00_qty.wav", "pending", "the verdict rules failed: ValueError: boom"),
    }
    status = {r["audioName"]: r["status"] for r in normalized_dump(sqlite_url)["call"]}
    assert status["v00_qty.wav"] == "Complete"  # its LLM1 and LLM2 results were stored
    assert verdict_rows.verdict_counts(sqlite_url, batch_id)["pending"] == 1
