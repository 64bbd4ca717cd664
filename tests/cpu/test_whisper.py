"""The CPU Whisper engines with the real packaged base model on the sample batch."""

import hashlib
from pathlib import Path

import pytest

from cofid.backends.base import AudioRef, PermanentBackendError
from cofid.backends.cpu import whisper_model
from cofid.backends.cpu.whisper_model import (
    ModelUnavailableError,
    ensure_whisper_base,
    resolve_model,
)


@pytest.fixture(scope="module")
def engine(whisper_base_dir: Path):
    try:
        import faster_whisper  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"faster-whisper cannot be imported ({exc}); install the cpu extra: "
            "pip install -e '.[cpu]'",
            pytrace=False,
        )
    from cofid.backends.cpu.whisper import WhisperEngine

    return WhisperEngine(str(whisper_base_dir), cpu_threads=2)


def _ref(sample_batch, name: str) -> AudioRef:
    directory, _ = sample_batch
    return AudioRef(directory / name, name)


async def test_lid_labels_english_call_en(engine, sample_batch):
    from cofid.backends.cpu.whisper import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_en_infosys.wav"))
    assert result.language == "en"
    assert result.confidence > 0.5
    assert result.duration_s == pytest.approx(sample_batch[1]["call_en_infosys.wav"]["duration_s"])
    assert result.response["language_probs"][0][0] == "en"
    assert "recorded" in result.response["text_head"].lower()
    assert result.request["model"] == "whisper-base"


async def test_lid_labels_hindi_call_hi(engine, sample_batch):
    from cofid.backends.cpu.whisper import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_hi_reliance_8k.wav"))
    assert result.language == "hi"
    assert len(result.response["language_probs"]) == 3


async def test_lid_labels_german_call_other(engine, sample_batch):
    from cofid.backends.cpu.whisper import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_de_other.wav"))
    assert result.language == "other"


async def test_stt_of_english_call_has_the_trade(engine, sample_batch):
    from cofid.backends.cpu.whisper import CpuStt

    result = await CpuStt(engine).transcribe(_ref(sample_batch, "call_en_infosys.wav"), "en")
    text = " ".join(s.text for s in result.segments).lower()
    for word in ("shares", "infosys", "confirm", "100", "1500"):
        assert word in text, (word, text)
    assert result.language == "en"
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= result.duration_s + 0.5
    assert all(s.avg_logprob is not None and s.no_speech_prob is not None for s in result.segments)
    assert result.request["params"]["beam_size"] == 1


async def test_undecodable_audio_is_permanent(engine, tmp_path: Path):
    from cofid.backends.cpu.whisper import CpuLid, CpuStt

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all" * 4)
    with pytest.raises(PermanentBackendError, match="broken.wav"):
        await CpuLid(engine).identify(AudioRef(bad, bad.name))
    with pytest.raises(PermanentBackendError, match="broken.wav"):
        await CpuStt(engine).transcribe(AudioRef(bad, bad.name), "en")


def test_stt_options_are_typed_and_checked(engine):
    from cofid.backends.cpu.whisper import CpuStt

    stt = CpuStt(engine, stt_options={"hi": {"beam_size": "2", "vad_filter": "false"}})
    assert stt.decode_options("hi")["beam_size"] == 2
    assert stt.decode_options("hi")["vad_filter"] is False
    assert stt.decode_options("hinglish")["language"] == "en"
    with pytest.raises(ValueError, match="hi.beams"):
        CpuStt(engine, stt_options={"hi": {"beams": "2"}})


def test_model_is_assembled_verified_and_cached(whisper_base_dir: Path):
    model = whisper_base_dir / "model.bin"
    digest = hashlib.sha256()
    with model.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == whisper_model.WHISPER_BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (whisper_base_dir / name).stat().st_size > 0
    mtime = model.stat().st_mtime_ns
    assert ensure_whisper_base(whisper_base_dir.parent) == whisper_base_dir
    assert model.stat().st_mtime_ns == mtime  # second call reuses, does not rebuild


def test_checksum_mismatch_leaves_no_model(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(whisper_model, "WHISPER_BASE_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="SHA-256"):
        ensure_whisper_base(tmp_path)
    assert [p.name for p in (tmp_path / "whisper-base").iterdir()] == []


def test_resolve_model(whisper_base_dir: Path, tmp_path: Path):
    assert resolve_model("base", whisper_base_dir.parent) == str(whisper_base_dir)
    assert resolve_model(str(whisper_base_dir), tmp_path) == str(whisper_base_dir)
    with pytest.raises(ModelUnavailableError, match="not downloaded at run time"):
        resolve_model("large-v3", tmp_path)
    with pytest.raises(ModelUnavailableError, match="no model.bin"):
        resolve_model(str(tmp_path), tmp_path)
