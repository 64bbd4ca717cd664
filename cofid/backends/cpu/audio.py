"""Reading and writing call audio for the CPU engines.

Every engine works on mono float32 at 16 kHz (Whisper's rate; webrtcvad and the IVR
matcher take it too). soundfile (libsndfile >= 1.1) decodes wav, flac, ogg and mp3; soxr
resamples. Anything that cannot be decoded raises PermanentBackendError naming the file and
what is wrong with it, because no retry can fix a broken recording.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cofid.backends.base import PermanentBackendError

WHISPER_SR = 16000

# Streaming recorders write these as the data size when they do not know it yet; such a
# header does not mean the file is truncated.
_UNKNOWN_WAV_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF})


def _wav_truncation(path: Path, file_size: int) -> str | None:
    """Describe a RIFF/WAVE file whose data chunk is shorter than its header declares."""
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        offset = 12
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None  # no data chunk: libsndfile reports that itself
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            offset += 8
            if chunk_id == b"data":
                available = file_size - offset
                if size in _UNKNOWN_WAV_SIZES or size <= available:
                    return None
                return (
                    f"truncated: the WAV header declares {size} bytes of audio "
                    f"but the file holds {available}"
                )
            offset += size + (size & 1)
            handle.seek(offset)


def _check_file(path: Path) -> None:
    """Refuse what libsndfile would misreport: missing, empty and truncated files."""
    if not path.is_file():
        raise PermanentBackendError(f"audio file {path} does not exist or is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise PermanentBackendError(f"audio file {path} is empty (0 bytes)")
    problem = _wav_truncation(path, size)
    if problem:
        raise PermanentBackendError(f"audio file {path} is {problem}")


def _undecodable(path: Path, exc: Exception) -> PermanentBackendError:
    size = path.stat().st_size if path.exists() else 0
    return PermanentBackendError(
        f"audio file {path} ({size} bytes) is not decodable audio (wav, flac, ogg or mp3 "
        f"expected; it may be truncated or corrupt): {exc}",
        details={"path": str(path), "size": size},
    )


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; a 1-D array is already mono."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1)


def resample(samples: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    if sr == target_sr or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_mono(
    path: Path | str, target_sr: int = WHISPER_SR, *, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode `path` (or its first `max_seconds`) to mono float32 in [-1, 1] at `target_sr`."""
    path = Path(path)
    _check_file(path)
    try:
        frames = -1
        if max_seconds is not None:
            frames = int(max_seconds * sf.info(str(path)).samplerate)
        samples, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise _undecodable(path, exc) from exc
    if samples.size == 0:
        raise PermanentBackendError(f"audio file {path} decodes to no samples")
    mono = to_mono(samples).astype(np.float32, copy=False)
    return resample(mono, int(sr), target_sr), target_sr


def audio_duration(path: Path | str) -> float:
    """Seconds of audio in `path`, from the header when it is trustworthy."""
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise _undecodable(path, exc) from exc
    # mp3 without a Xing/LAME header reports an estimate or nothing; decode to be sure.
    if info.frames > 0 and info.samplerate > 0 and info.format != "MP3":
        return info.frames / info.samplerate
    samples, sr = load_mono(path, target_sr=WHISPER_SR)
    return len(samples) / sr


def write_tail(source: Path | str, path: Path | str, start_s: float, target_sr: int,
               block_s: float = 30.0) -> Path:
    """Write `source` from `start_s` to the end as mono 16-bit audio at `target_sr`, in the
    format of `path`'s suffix (FLAC or WAV), a block at a time (a 3-hour call never sits in
    memory), atomically."""
    source, path = Path(source), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with sf.SoundFile(str(source)) as src, sf.SoundFile(
            str(tmp), "w", samplerate=target_sr, channels=1, subtype="PCM_16",
            format="FLAC" if path.suffix.lower() == ".flac" else "WAV",
        ) as dst:
            src.seek(min(int(start_s * src.samplerate), src.frames))
            stream = soxr.ResampleStream(src.samplerate, target_sr, 1, dtype="float32")
            block = max(1, int(block_s * src.samplerate))
            while True:
                data = src.read(block, dtype="float32", always_2d=False)
                last = len(data) < block
                out = stream.resample_chunk(to_mono(data).astype(np.float32), last=last)
                dst.write(np.clip(out, -1.0, 1.0))
                if last:
                    break
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise _undecodable(source, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_wav(path: Path | str, samples: np.ndarray, sr: int) -> Path:
    """Write mono 16-bit audio atomically (temp file in the same directory, then rename);
    FLAC when `path` ends in .flac, else WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
        sf.write(str(tmp), clipped, sr, subtype="PCM_16", format=fmt)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
