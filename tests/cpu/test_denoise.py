from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofid.backends.base import AudioRef, PermanentBackendError
from cofid.backends.cpu.audio import load_mono
from cofid.backends.cpu.denoise import CpuDenoise, noise_floor, noise_reduction_db
from cofid.testing.sample_batch import silence, synthesize

SR = 16000


@pytest.fixture(scope="module")
def noisy_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    speech = synthesize("Please buy one hundred shares of Infosys at fifteen hundred rupees.",
                        "en+m3", 8000)  # fmt: skip
    clean = np.concatenate([silence(1.0, 8000), speech, silence(1.0, 8000)])
    noise = np.random.default_rng(9).normal(0.0, 0.02, clean.shape).astype(np.float32)
    path = tmp_path_factory.mktemp("denoise") / "noisy_8k.wav"
    sf.write(str(path), clean + noise, 8000, subtype="PCM_16")
    return path, clean


async def test_default_denoise_lowers_the_noise_floor(tmp_path: Path, noisy_call):
    path, _ = noisy_call
    result = await CpuDenoise().denoise(AudioRef(path, path.name), tmp_path / "out.wav")
    info = sf.info(str(result.output))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # prop_decrease 0.5 removes half the gated energy: about 3 dB, never the 20+ of full gating
    assert 2.0 < result.noise_reduction_db < 12.0
    assert result.response["noise_reduction_db"] == result.noise_reduction_db
    assert result.request["prop_decrease"] == 0.5


async def test_stronger_setting_removes_more_noise(tmp_path: Path, noisy_call):
    path, _ = noisy_call
    mild = await CpuDenoise(strength=0.5).denoise(AudioRef(path, "a"), tmp_path / "mild.wav")
    full = await CpuDenoise(strength=1.0).denoise(AudioRef(path, "a"), tmp_path / "full.wav")
    assert full.noise_reduction_db > mild.noise_reduction_db + 5.0


async def test_noise_drops_more_than_speech(tmp_path: Path, noisy_call):
    path, _ = noisy_call
    result = await CpuDenoise().denoise(AudioRef(path, "a"), tmp_path / "out.wav")
    before, _ = load_mono(path)
    after, _ = load_mono(result.output)
    loud = np.abs(before) > 0.2  # samples where the speech dominates the noise
    speech_loss_db = -10 * np.log10(np.mean(after[loud] ** 2) / np.mean(before[loud] ** 2))
    # Measured here: noise floor -6.1 dB, speech -2.8 dB at the default strength.
    assert 0.0 <= speech_loss_db < 4.0
    assert result.noise_reduction_db - speech_loss_db > 2.0  # the SNR improves


async def test_strength_zero_passes_audio_through(tmp_path: Path, noisy_call):
    path, _ = noisy_call
    result = await CpuDenoise(strength=0.0).denoise(AudioRef(path, "a"), tmp_path / "out.wav")
    assert result.noise_reduction_db == pytest.approx(0.0, abs=0.1)


def test_strength_outside_range_is_refused():
    with pytest.raises(ValueError, match="0..1"):
        CpuDenoise(strength=1.5)


async def test_undecodable_input_is_permanent(tmp_path: Path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF")
    with pytest.raises(PermanentBackendError, match="bad.wav"):
        await CpuDenoise().denoise(AudioRef(bad, "bad.wav"), tmp_path / "out.wav")


def test_noise_reduction_db_measures_the_quiet_frames():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, SR).astype(np.float32)
    assert noise_reduction_db(noise, noise / 10, SR) == pytest.approx(20.0, abs=0.01)
    assert noise_floor(np.zeros(10, np.float32), SR) == 0.0
