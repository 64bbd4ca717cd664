import csv
from datetime import datetime
from pathlib import Path

import soundfile as sf

from cofid.backends.cpu.audio import audio_duration, load_mono
from cofid.testing.sample_batch import CALL_METADATA_CSV, TRADE_METADATA_CSV, make_sample_batch


def _calls(manifest: dict) -> dict[str, dict]:
    return {name: entry for name, entry in manifest.items() if name != "ivr_prompts_dir"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_call_is_decodable_mono_phone_audio(sample_batch):
    directory, manifest = sample_batch
    calls = _calls(manifest)
    assert 6 <= len(calls) <= 8
    for name, entry in calls.items():
        info = sf.info(str(directory / name))
        assert info.channels == 1
        assert info.samplerate == entry["sample_rate"] in (8000, 16000)
        assert abs(audio_duration(directory / name) - entry["duration_s"]) < 0.01
        samples, _ = load_mono(directory / name)
        assert 0.05 < float(abs(samples).max()) <= 1.0  # real signal, not silence


def test_batch_covers_the_cases_the_pipeline_must_handle(sample_batch):
    _, manifest = sample_batch
    calls = _calls(manifest).values()
    languages = {entry["language"] for entry in calls}
    assert {"en", "hi", "other"} <= languages
    short = [e for e in calls if e["is_short"]]
    assert len(short) == 1 and short[0]["duration_s"] < 5.0
    assert all(e["duration_s"] > 10.0 for e in calls if not e["is_short"])
    assert any(e["has_ivr"] and e["ivr_end_s"] > 5.0 for e in calls)
    assert any(not e["has_trade"] and not e["is_short"] for e in calls)


def test_ivr_prompt_library_sits_beside_the_batch(sample_batch):
    directory, manifest = sample_batch
    prompts = Path(manifest["ivr_prompts_dir"])
    assert prompts.parent == directory.parent
    wavs = list(prompts.glob("*.wav"))
    assert len(wavs) == 1 and sf.info(str(wavs[0])).duration > 3.0
    assert not any(p.name == wavs[0].name for p in directory.iterdir())


def test_csvs_are_well_formed_and_trades_fall_in_their_call_window(sample_batch):
    directory, manifest = sample_batch
    calls = _rows(directory / CALL_METADATA_CSV)
    trades = _rows(directory / TRADE_METADATA_CSV)
    assert list(calls[0]) == [
        "audioName", "clientCode", "agentId", "callStartTime", "callEndTime", "branch",
    ]  # fmt: skip
    assert list(trades[0]) == [
        "tradeId", "clientCode", "symbol", "side", "quantity", "price", "tradeTime",
    ]  # fmt: skip
    assert {row["audioName"] for row in calls} == set(_calls(manifest))
    assert len({row["tradeId"] for row in trades}) == len(trades)
    windows = {
        row["clientCode"]: (
            row["audioName"],
            datetime.fromisoformat(row["callStartTime"]),
            datetime.fromisoformat(row["callEndTime"]),
        )
        for row in calls
    }
    mapped: set[str] = set()
    for trade in trades:
        assert trade["side"] in ("BUY", "SELL")
        assert int(trade["quantity"]) > 0 and float(trade["price"]) > 0
        moment = datetime.fromisoformat(trade["tradeTime"])
        if trade["clientCode"] in windows:
            name, start, end = windows[trade["clientCode"]]
            if start <= moment <= end:
                mapped.add(name)
    expected = {name for name, e in _calls(manifest).items() if e["has_trade"]}
    assert mapped == expected


def test_batch_is_deterministic(tmp_path, sample_batch):
    directory, manifest = sample_batch
    again = make_sample_batch(tmp_path / "batch")
    assert {k: v for k, v in again.items() if k != "ivr_prompts_dir"} == _calls(manifest)
    for name in _calls(manifest):
        assert (tmp_path / "batch" / name).read_bytes() == (directory / name).read_bytes()
    assert (tmp_path / "batch" / TRADE_METADATA_CSV).read_text() == (
        directory / TRADE_METADATA_CSV
    ).read_text()
