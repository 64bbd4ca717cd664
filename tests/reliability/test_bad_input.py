"""The bad-input corpus: each input gets a precise error or a documented outcome, and the
other files of the batch are untouched.

Documented outcomes (README, "Guarantees"):
- zero-byte, truncated and non-audio files fail at their first audio stage (ivr here) with
  a reason naming the file and the problem; the batch completes.
- a file whose extension lies (WAV bytes named .mp3) is decoded by content and processed.
- 8 kHz, 48 kHz, stereo: decoded, mixed to mono, resampled; processed.
- a 3-hour call is processed without holding it in memory (IVR decodes the opening only and
  streams the tail).
- file names with spaces, unicode, quotes and shell metacharacters are stored exactly.
- the same audio name in two batches gives two calls; a reaudit by that name takes both.
- a directory with no audio, a CSV with a missing required column, an unknown
  process_id/category_mapping_id: refused before anything is written.
"""

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.service.errors import BatchInputError
from cofid.simworker import SimConfig, serve_simworker
from cofid.store import tables as t

RNG = np.random.default_rng(11)


def noise(seconds, sr, channels=1):
    n = int(seconds * sr)
    x = (RNG.standard_normal((n, channels)) * 0.05).astype("float32")
    return x[:, 0] if channels == 1 else x


def write_corpus(d):
    d.mkdir()
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "whole.wav", noise(8, 8000), 8000)
    data = (d / "whole.wav").read_bytes()
    (d / "truncated.wav").write_bytes(data[: len(data) // 3])
    (d / "whole.wav").unlink()
    (d / "notaudio.wav").write_bytes(b"%PDF-1.4 this is a document, not a call\n" * 50)
    sf.write(d / "mislabelled.mp3", noise(7, 8000), 8000, format="WAV")
    sf.write(d / "narrowband 8k.wav", noise(7, 8000), 8000)
    sf.write(d / "wideband_48k.flac", noise(7, 48000), 48000)
    sf.write(d / "stereo.wav", noise(7, 16000, channels=2), 16000)
    sf.write(d / "ünïcødé – call.ogg", noise(7, 16000), 16000)
    sf.write(d / "quote's \"and\" $(rm -rf x); `y`.wav", noise(7, 8000), 8000)
    sf.write(d / "silence.wav", np.zeros(8000 * 7, dtype="float32"), 8000)
    with sf.SoundFile(d / "three_hours.flac", "w", samplerate=8000, channels=1, format="FLAC") as f:
        block = (np.sin(np.arange(8000 * 60) * 0.01) * 0.01).astype("float32")
        for _ in range(180):
            f.write(block)


def config(tmp_path, url, db_url):
    return parse_config({
        "database": {"url": db_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": "gpu-0", "url": url, "slots": 4}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "ivr": "cpu",
                     "remote": {"timeout_s": 60}},
        "pipelines": {"batch": {"denoise": False, "ivr": True}},
        "stages": {"retry": {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02}},
    })


async def test_bad_input_corpus(tmp_path, sqlite_url):
    write_corpus(tmp_path / "batch")
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, SimConfig(seed=1, time_scale=0.0))
        cfg = config(tmp_path, worker.url, sqlite_url)
        async with open_app(cfg) as app:
            await app.run_batch(await app.prepare_batch(tmp_path / "batch"))
        nursery.cancel_scope.cancel()
    e = sa.create_engine(sqlite_url)
    with e.connect() as c:
        rows = {r.file: r for r in c.execute(sa.select(
            t.file_distribution.c.file, t.file_distribution.c.failedStage,
            t.file_distribution.c.failureReason, t.call.c.status, t.call.c.audioDuration,
        ).select_from(t.file_distribution.join(t.call, t.call.c.audioName == t.file_distribution.c.file)))}
        status = c.execute(sa.select(t.batch_status.c.status)).scalar_one()
    e.dispose()
    assert status == "Completed"
    failed = {n: (r.failedStage, r.failureReason) for n, r in rows.items() if r.failedStage}
    assert set(failed) == {"empty.wav", "truncated.wav", "notaudio.wav"}
    assert all(stage == "ivr" for stage, _ in failed.values())
    assert "empty" in failed["empty.wav"][1] and "empty.wav" in failed["empty.wav"][1]
    assert "truncated" in failed["truncated.wav"][1]
    assert "notaudio.wav" in failed["notaudio.wav"][1]
    processed = {n: r for n, r in rows.items() if not r.failedStage}
    assert {r.status for r in processed.values()} == {"Complete"}, {n: r.status for n, r in processed.items()}
    assert "quote's \"and\" $(rm -rf x); `y`.wav" in processed
    assert "ünïcødé – call.ogg" in processed
    assert processed["three_hours.flac"].audioDuration == pytest.approx(3 * 3600, abs=1)


async def test_same_audio_name_in_two_batches_gives_two_calls_and_reaudit_takes_both(tmp_path, sqlite_url):
    for b in ("b1", "b2"):
        (tmp_path / b).mkdir()
        sf.write(tmp_path / b / "dup.wav", noise(7, 8000), 8000)
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, SimConfig(seed=2, time_scale=0.0))
        cfg = config(tmp_path, worker.url, sqlite_url)
        async with open_app(cfg) as app:
            for b in ("b1", "b2"):
                await app.run_batch(await app.prepare_batch(tmp_path / b))
            from cofid.service.reaudit import resolve, run_reaudit

            req = await resolve(app, ["dup.wav", "missing.wav"], ["llm2"])
            assert req.unknown == ["missing.wav"] and len(req.call_ids) == 2
            run = await run_reaudit(app, req)
            assert run.counters[next(iter(run.counters))].done == 2
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "readme.txt").write_text("no audio here"), "no audio files"),
        (lambda d: (sf.write(d / "a.wav", noise(6, 8000), 8000),
                    (d / "callMetadata.csv").write_text("audioName,clientCode,agentId,callStartTime\n")),
         "callEndTime"),
        (lambda d: (sf.write(d / "a.wav", noise(6, 8000), 8000),
                    (d / "batch.toml").write_text("process_id = 42\n")),
         "no audit question set for process_id=42"),
    ],
    ids=["no-audio", "csv-missing-column", "unknown-process-id"],
)
async def test_refused_batches_write_nothing(tmp_path, sqlite_url, setup, message):
    d = tmp_path / "batch"
    d.mkdir()
    setup(d)
    cfg = parse_config({"database": {"url": sqlite_url}, "paths": {"data": str(tmp_path / "var")},
                        "backends": {"lid": "fake", "stt": "fake", "chat": "fake", "ivr": "fake",
                                     "denoise": "fake"}})
    async with open_app(cfg) as app:
        with pytest.raises(BatchInputError, match=message):
            await app.prepare_batch(d)
    e = sa.create_engine(sqlite_url)
    with e.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.batch_status)).scalar() == 0
    e.dispose()
