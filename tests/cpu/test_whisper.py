"""The CPU Whisper engines with the real packaged base model on the sample batch.

Assertions are measured quality (word error rate against the script, the label, the
trade's numbers), never an exact word: another CPU (AVX2 / AVX-512, Intel / AMD) or thread
count may decode a word differently. COFI_TEST_CPU_THREADS sets the engine's threads.
"""

import hashlib
import os
from pathlib import Path

import pytest

from cofid.backends.base import AudioRef, PermanentBackendError
from cofid.backends.cpu import whisper_model
from cofid.backends.cpu.whisper_model import (
    ModelUnavailableError,
    ensure_whisper_base,
    resolve_model,
)
from cofid.demo.sample_batch import CALLS
from cofid.testing.quality import normalize_words, prefix_word_error_rate, word_error_rate

CPU_THREADS = int(os.environ.get("COFI_TEST_CPU_THREADS", "2"))
# Measured on AMD EPYC (AVX-512), Whisper base int8, 1 and 2 threads: WER 0.07 on the
# English call, LID head 0.03-0.08; the bounds leave room for another CPU's decode.
STT_WER_BOUND = 0.25
HEAD_WER_BOUND = 0.3


def _script(name: str) -> str:
    """What the sample call says, turn after turn."""
    spec = next(c for c in CALLS if c.name == name)
    return " ".join(text for _voice, text in spec.turns)


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

    return WhisperEngine(str(whisper_base_dir), cpu_threads=CPU_THREADS)


def _ref(sample_batch, name: str) -> AudioRef:
    directory, _ = sample_batch
    return AudioRef(directory / name, name)


async def test_lid_labels_english_call_en(engine, sample_batch):
    from cofid.backends.cpu.whisper_lid import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_en_infosys.wav"))
    assert result.language == "en"
    assert result.confidence > 0.5
    assert result.duration_s == pytest.approx(sample_batch[1]["call_en_infosys.wav"]["duration_s"])
    assert result.response["language_probs"][0][0] == "en"
    head = result.response["text_head"]
    wer = prefix_word_error_rate(_script("call_en_infosys.wav"), head)
    assert wer <= HEAD_WER_BOUND, (wer, head)
    assert result.request["model"] == "whisper-base"
    assert result.response["decoder"]["model_sha256"] == whisper_model.WHISPER_BASE_SHA256


async def test_lid_never_calls_the_hindi_call_english(engine, sample_batch):
    """Whisper base does not recognise espeak-ng's Hindi voice (p_hi <= 0.10): the call may
    abstain (other) but must not be forced into English, as the old decode-score rule did."""
    from cofid.backends.cpu.whisper_lid import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_hi_reliance_8k.wav"))
    assert result.language in ("hi", "other"), result.response
    assert len(result.response["language_probs"]) == 3
    if result.language == "other":
        assert result.response["method"].startswith(("abstain", "whisper-confident-other"))


async def test_lid_labels_german_call_other(engine, sample_batch):
    from cofid.backends.cpu.whisper_lid import CpuLid

    result = await CpuLid(engine).identify(_ref(sample_batch, "call_de_other.wav"))
    assert result.language == "other"
    assert result.response["detected"] == "de"  # what it was, for the operator


async def test_stt_of_english_call_has_the_trade(engine, sample_batch):
    from cofid.backends.cpu.whisper import CpuStt

    result = await CpuStt(engine).transcribe(_ref(sample_batch, "call_en_infosys.wav"), "en")
    text = " ".join(s.text for s in result.segments)
    wer = word_error_rate(_script("call_en_infosys.wav"), text)
    assert wer <= STT_WER_BOUND, (wer, text)
    words = normalize_words(text)
    assert "100" in words and "1500" in words, text  # the trade's quantity and price
    assert result.language == "en"
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= result.duration_s + 0.5
    assert all(s.avg_logprob is not None and s.no_speech_prob is not None for s in result.segments)
    assert result.request["params"]["beam_size"] == 1
    decoder = result.response["decoder"]
    assert decoder["model_sha256"] == whisper_model.WHISPER_BASE_SHA256
    assert decoder["params"]["temperature"] == (0.0,) and decoder["cpu_threads"] == CPU_THREADS
    assert decoder["ctranslate2"] and decoder["faster_whisper"]


async def test_stt_is_reproducible(engine, sample_batch):
    """The same audio, model and settings give the same segments (no sampling fallback)."""
    from cofid.backends.cpu.whisper import CpuStt

    stt = CpuStt(engine)
    ref = _ref(sample_batch, "call_hi_reliance_8k.wav")
    first, second = await stt.transcribe(ref, "hi"), await stt.transcribe(ref, "hi")
    assert first.segments and first.segments == second.segments
    assert first.response["decoder"] == second.response["decoder"]


async def test_undecodable_audio_is_permanent(engine, tmp_path: Path):
    from cofid.backends.cpu.whisper import CpuStt
    from cofid.backends.cpu.whisper_lid import CpuLid

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
    assert stt.decode_options("en")["temperature"] == (0.0,)
    with pytest.raises(ValueError, match="only temperature 0"):
        CpuStt(engine, stt_options={"en": {"temperature": "0,0.4"}})


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
