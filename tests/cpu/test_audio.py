from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofid.backends.base import PermanentBackendError
from cofid.backends.cpu.audio import audio_duration, load_mono, write_wav


def _tone(sr: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("fmt", "sr"),
    [("WAV", 8000), ("WAV", 48000), ("FLAC", 16000), ("OGG", 48000), ("MP3", 16000)],
)
def test_formats_decode_to_16k_mono(tmp_path: Path, fmt: str, sr: int):
    path = tmp_path / f"call.{fmt.lower()}"
    sf.write(str(path), _tone(sr, 2.0), sr, format=fmt)
    samples, rate = load_mono(path)
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) / rate - 2.0) < 0.1  # mp3 adds encoder padding
    spectrum = np.abs(np.fft.rfft(samples[4000:20000]))
    assert abs(np.argmax(spectrum) * rate / 16000 - 440) <= 2  # pitch survives resampling
    assert abs(audio_duration(path) - 2.0) < 0.1


def test_stereo_is_averaged_to_mono(tmp_path: Path):
    left = _tone(16000, 1.0)
    stereo = np.stack([left, np.full_like(left, 0.2)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, 16000)
    samples, _ = load_mono(path)
    np.testing.assert_allclose(samples, (left + 0.2) / 2, atol=2e-4)


def test_write_wav_is_pcm16_and_leaves_no_temp_file(tmp_path: Path):
    out = write_wav(tmp_path / "out" / "x.wav", np.array([0.0, 0.5, -2.0], np.float32), 16000)
    info = sf.info(str(out))
    assert (info.subtype, info.samplerate, info.channels) == ("PCM_16", 16000, 1)
    data, _ = sf.read(str(out))
    assert data[2] == pytest.approx(-1.0)  # clipped, not wrapped
    assert [p.name for p in out.parent.iterdir()] == ["x.wav"]


def test_zero_byte_file_is_refused(tmp_path: Path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(PermanentBackendError, match=r"empty\.wav.*empty \(0 bytes\)"):
        load_mono(path)


def test_truncated_wav_is_refused(tmp_path: Path):
    path = tmp_path / "cut.wav"
    sf.write(str(path), _tone(16000, 2.0), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:30000])
    with pytest.raises(PermanentBackendError, match=r"cut\.wav is truncated"):
        audio_duration(path)


def test_truncated_flac_is_refused(tmp_path: Path):
    path = tmp_path / "cut.flac"
    sf.write(str(path), np.random.default_rng(0).normal(0, 0.1, 32000), 16000, format="FLAC")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(PermanentBackendError, match=r"cut\.flac .*not decodable"):
        load_mono(path)


def test_non_audio_file_is_refused(tmp_path: Path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not a recording\n" * 10)
    with pytest.raises(PermanentBackendError, match=r"notes\.wav \(\d+ bytes\) is not decodable"):
        load_mono(path)
