from pathlib import Path

import numpy as np
import pytest

from cofid.backends.base import AudioRef
from cofid.backends.cpu.audio import load_mono, write_wav
from cofid.backends.cpu.ivr import (
    CpuIvr,
    detect_dtmf,
    find_prompt_end,
    first_sustained_speech,
    goertzel_power,
)
from cofid.testing.sample_batch import dtmf_signal, ivr_prompt, silence, synthesize

SR = 16000


@pytest.fixture(scope="module")
def prompt() -> np.ndarray:
    return ivr_prompt(SR)


@pytest.fixture(scope="module")
def agent_speech() -> np.ndarray:
    return synthesize("Good morning, this is Ravi from the trading desk. How can I help?",
                      "en+m3", SR)  # fmt: skip


def _noisy(samples: np.ndarray, rng: np.random.Generator, rms: float = 0.01) -> np.ndarray:
    return (samples + rng.normal(0.0, rms, samples.shape)).astype(np.float32)


def test_goertzel_measures_the_tone_it_is_tuned_to():
    t = np.arange(320) / 8000
    frame = 0.5 * np.sin(2 * np.pi * 770 * t)
    power = goertzel_power(frame, 8000, [697, 770, 852])
    assert power.shape == (3,)
    assert power[1] == pytest.approx((0.5 * 320 / 2) ** 2, rel=0.02)
    assert power[1] > 20 * max(power[0], power[2])


@pytest.mark.parametrize("sr", [8000, 16000])
def test_dtmf_sequence_is_decoded_exactly(sr: int):
    rng = np.random.default_rng(5)
    keys = "0123456789*#ABCD"
    audio = _noisy(np.concatenate([silence(0.5, sr), dtmf_signal(keys, sr), silence(0.5, sr)]),
                   rng)  # fmt: skip
    digits = detect_dtmf(audio, sr)
    assert "".join(d for d, _, _ in digits) == keys
    for index, (_, start, end) in enumerate(digits):
        assert start == pytest.approx(0.5 + index * 0.2, abs=0.02)
        assert end == pytest.approx(0.5 + index * 0.2 + 0.12, abs=0.02)


def test_speech_and_noise_carry_no_dtmf(agent_speech, prompt):
    rng = np.random.default_rng(6)
    assert detect_dtmf(_noisy(np.concatenate([prompt, agent_speech]), rng), SR) == []
    assert detect_dtmf(rng.normal(0, 0.1, SR * 3).astype(np.float32), SR) == []


def test_prompt_end_is_found_at_a_random_offset_in_noise(prompt, agent_speech):
    rng = np.random.default_rng(11)
    for _ in range(3):
        offset = float(rng.uniform(0.3, 15.0))
        audio = np.concatenate([silence(offset, SR), prompt, silence(0.5, SR), agent_speech])
        found = find_prompt_end(_noisy(audio, rng, rms=0.03), SR, prompt)
        assert found == pytest.approx(offset + len(prompt) / SR, abs=0.25)


def test_prompt_absent_gives_none(prompt, agent_speech):
    assert find_prompt_end(agent_speech, SR, prompt) is None


async def test_trim_cuts_after_prompt_and_dtmf(tmp_path: Path, prompt, agent_speech):
    rng = np.random.default_rng(21)
    offset = float(rng.uniform(0.5, 10.0))
    head = np.concatenate([silence(offset, SR), prompt, silence(0.6, SR)])
    prompt_end = offset + len(prompt) / SR
    tones = dtmf_signal("12", SR)
    dtmf_end = (len(head) + len(tones)) / SR - 0.08  # the last gap is not part of a tone
    audio = _noisy(np.concatenate([head, tones, silence(0.7, SR), agent_speech]), rng)
    source = write_wav(tmp_path / "call.wav", audio, SR)
    prompts = tmp_path / "prompts"
    write_wav(prompts / "menu.wav", ivr_prompt(8000), 8000)

    result = await CpuIvr(prompts).trim(AudioRef(source, "call.wav"), tmp_path / "out.wav")

    assert result.response["prompt_end_s"] == pytest.approx(prompt_end, abs=0.25)
    assert result.response["dtmf"] == "12"
    assert result.trim_offset_s == pytest.approx(dtmf_end, abs=0.05)
    assert not result.all_ivr
    assert result.response["speech_start_s"] == pytest.approx(dtmf_end + 0.78, abs=0.2)
    trimmed, _ = load_mono(result.output)
    assert len(trimmed) / SR == pytest.approx(len(audio) / SR - result.trim_offset_s, abs=0.01)


async def test_prompt_alone_sets_the_offset(tmp_path: Path, prompt, agent_speech):
    offset = 3.3
    audio = _noisy(np.concatenate([silence(offset, SR), prompt, silence(0.6, SR), agent_speech]),
                   np.random.default_rng(2))  # fmt: skip
    source = write_wav(tmp_path / "call.wav", audio, SR)
    prompts = tmp_path / "prompts"
    write_wav(prompts / "menu.wav", prompt, SR)
    result = await CpuIvr(prompts).trim(AudioRef(source, "call.wav"), tmp_path / "out.wav")
    assert result.trim_offset_s == pytest.approx(offset + len(prompt) / SR, abs=0.25)
    assert result.response["prompt"] == "menu.wav"


async def test_all_ivr_call(tmp_path: Path, prompt):
    audio = _noisy(np.concatenate([silence(1.0, SR), prompt, dtmf_signal("9", SR),
                                   silence(4.0, SR)]), np.random.default_rng(3))  # fmt: skip
    source = write_wav(tmp_path / "call.wav", audio, SR)
    prompts = tmp_path / "prompts"
    write_wav(prompts / "menu.wav", prompt, SR)
    result = await CpuIvr(prompts).trim(AudioRef(source, "call.wav"), tmp_path / "out.wav")
    assert result.all_ivr
    assert result.response["speech_start_s"] is None
    assert result.trim_offset_s > 1.0 + len(prompt) / SR


async def test_no_ivr_keeps_the_call_whole(tmp_path: Path, agent_speech):
    source = write_wav(tmp_path / "call.wav", _noisy(agent_speech, np.random.default_rng(4)), SR)
    result = await CpuIvr(None).trim(AudioRef(source, "call.wav"), tmp_path / "out.wav")
    assert result.trim_offset_s == 0.0 and not result.all_ivr
    assert result.output.read_bytes() == source.read_bytes()


async def test_sample_batch_ivr_call_is_trimmed(tmp_path: Path, sample_batch):
    directory, manifest = sample_batch
    ivr = CpuIvr(Path(manifest["ivr_prompts_dir"]))
    for name, entry in manifest.items():
        if name == "ivr_prompts_dir":
            continue
        result = await ivr.trim(AudioRef(directory / name, name), tmp_path / name)
        if entry["has_ivr"]:
            assert result.trim_offset_s == pytest.approx(entry["ivr_end_s"], abs=0.25)
        else:
            assert result.trim_offset_s == 0.0, name
        assert not result.all_ivr


def test_sustained_speech_ignores_clicks():
    rng = np.random.default_rng(8)
    audio = rng.normal(0, 0.001, SR * 3).astype(np.float32)
    audio[SR : SR + 160] += 0.8  # a 10 ms click is not someone speaking
    assert first_sustained_speech(audio, SR) is None
