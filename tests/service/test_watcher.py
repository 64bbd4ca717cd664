"""The batch directory watcher: readiness rules, start-once identity, errors, wiring to App."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.inputs.watcher import BatchWatcher, directory_ready, recheck_at, watcher_for_app
from cofid.plans.batch import AUDIO_SUFFIXES
from cofid.service.app import open_app
from cofid.service.errors import BatchInputError
from cofid.store import repo
from cofid.store import tables as t
from cofid.testing.batches import write_fixture_batch

SETTLE = 0.3


# ---- the pure rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "quiet", "now", "ready"),
    [
        ([], 0.0, 100.0, False),
        ([("a.wav", 10.0, 5)], 0.0, 100.0, False),  # no marker, quiet rule off
        ([("a.wav", 10.0, 5), (".ready", 99.0, 0)], 0.0, 100.0, True),
        ([("a.wav", 99.9, 5), (".ready", 99.9, 0)], 0.0, 100.0, False),  # still settling
        ([(".a.wav.Xy12Z9", 10.0, 5), (".ready", 10.0, 0)], 0.0, 100.0, False),  # rsync temp
        ([("a.wav.part", 10.0, 5), (".ready", 10.0, 0)], 0.0, 100.0, False),
        ([(".ready", 10.0, 0)], 0.0, 100.0, True),  # an empty batch: start_batch says why
        ([("a.wav", 95.0, 5)], 10.0, 100.0, False),  # changed 5 s ago, quiet needs 10
        ([("a.wav", 90.0, 5), ("b.wav", 80.0, 5)], 10.0, 100.0, True),
        ([(".DS_Store", 10.0, 5)], 10.0, 100.0, False),  # quiet rule needs a visible file
        ([(".DS_Store", 10.0, 5), ("a.wav", 10.0, 5)], 10.0, 100.0, True),
        ([("a.wav", 10.0, 5), ("b.wav.tmp", 10.0, 5)], 10.0, 100.0, False),
    ],
)
def test_directory_ready(entries, quiet, now, ready):
    assert directory_ready(entries, marker=".ready", quiet_seconds=quiet, now=now,
                           settle_seconds=1.0) is ready


def test_recheck_at():
    kw = {"marker": ".ready", "settle_seconds": 1.0}
    assert recheck_at([("a.wav", 50.0, 1), (".ready", 60.0, 0)], quiet_seconds=0, **kw) == 51.0
    assert recheck_at([("a.wav", 50.0, 1)], quiet_seconds=10, **kw) == 60.0
    assert recheck_at([("a.wav", 50.0, 1)], quiet_seconds=0, **kw) is None
    assert recheck_at([("a.wav.part", 50.0, 1)], quiet_seconds=10, **kw) is None


# ---- helpers ---------------------------------------------------------------------------


class Recorder:
    """start_batch / is_known / on_error fakes; refuses directories without audio."""

    def __init__(self, known: set[Path] | None = None) -> None:
        self.known = known if known is not None else set()
        self.started: list[tuple[Path, float]] = []
        self.attempts: list[Path] = []
        self.errors: list[tuple[Path, str]] = []
        self.asked: list[Path] = []

    async def start_batch(self, d: Path) -> None:
        self.attempts.append(d)
        names = os.listdir(d)
        if not any(n.lower().endswith(AUDIO_SUFFIXES) for n in names):
            raise BatchInputError(f"{d}: no audio files — not a batch directory")
        self.started.append((d, time.time()))
        self.known.add(d)

    async def is_known(self, d: Path) -> bool:
        self.asked.append(d)
        return d in self.known

    def on_error(self, d: Path, message: str) -> None:
        self.errors.append((d, message))

    def watcher(self, root: Path, **kw) -> BatchWatcher:
        kw.setdefault("scan_interval_s", 0.3)
        kw.setdefault("settle_seconds", SETTLE)
        return BatchWatcher([root], start_batch=self.start_batch, is_known=self.is_known,
                            on_error=self.on_error, **kw)


async def wait_for(cond, timeout: float = 8.0) -> None:
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.05)


async def slow_copy(src: Path, dst: Path, seconds: float = 1.5, chunk: int = 256,
                    keep_mtime: bool = False) -> float:
    """Copy src's files into dst piece by piece over about `seconds` (keep_mtime: like
    cp -p, each finished file gets an old mtime); returns when the last byte was written."""
    files = sorted(p for p in src.iterdir() if p.is_file())
    total = sum(max(1, -(-p.stat().st_size // chunk)) for p in files)
    pause = seconds / total
    dst.mkdir()
    for p in files:
        data = p.read_bytes()
        with open(dst / p.name, "wb") as f:
            for i in range(0, max(len(data), 1), chunk):
                f.write(data[i:i + chunk])
                f.flush()
                await trio.sleep(pause)
        if keep_mtime:
            os.utime(dst / p.name, (1_000_000_000, 1_000_000_000))
    return time.time()


@pytest.fixture
def batch_src(tmp_path) -> Path:
    src = tmp_path / "src"
    write_fixture_batch(src)
    return src


# ---- behaviour -------------------------------------------------------------------------


async def test_marker_rule_waits_for_the_marker(tmp_path, batch_src, nursery):
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    w = rec.watcher(root)
    await nursery.start(w.run)
    await trio.sleep(0.3)
    d = root / "b1"
    await slow_copy(batch_src, d)
    await trio.sleep(0.6)  # copied and quiet, but no marker
    assert rec.attempts == []
    (d / ".ready").touch()
    marked = time.time()
    await wait_for(lambda: rec.started)
    assert [p for p, _ in rec.started] == [d]
    assert rec.started[0][1] >= marked
    await trio.sleep(0.6)
    assert rec.attempts == [d] and rec.errors == []


async def test_a_marker_copied_first_waits_for_the_copy(tmp_path, batch_src, nursery):
    root = tmp_path / "root"
    root.mkdir()
    src = tmp_path / "src2"
    shutil.copytree(batch_src, src)
    (src / ".ready").touch()
    os.utime(src / ".ready", (0, 0))  # sorts and copies first, like rsync would
    rec = Recorder()
    await nursery.start(rec.watcher(root).run)
    done = await slow_copy(src, root / "b1")
    await wait_for(lambda: rec.started)
    assert rec.started[0][1] >= done


@pytest.mark.parametrize("keep_mtime", [False, True])
async def test_quiet_rule_waits_until_the_copy_is_quiet(tmp_path, batch_src, nursery, keep_mtime):
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    await nursery.start(rec.watcher(root, quiet_seconds=0.8).run)
    d = root / "b1"
    finished = await slow_copy(batch_src, d, keep_mtime=keep_mtime)
    assert rec.attempts == []
    await wait_for(lambda: rec.started)
    assert [p for p, _ in rec.started] == [d]
    assert rec.started[0][1] >= finished + 0.8 - 0.05


async def test_same_directory_again_or_a_restart_starts_nothing(tmp_path, batch_src):
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    d = root / "b1"
    async with trio.open_nursery() as n:
        await n.start(rec.watcher(root).run)
        shutil.copytree(batch_src, d)
        (d / ".ready").touch()
        await wait_for(lambda: rec.started)
        shutil.rmtree(d)  # dropped again: same path, same batch
        await trio.sleep(0.5)
        shutil.copytree(batch_src, d)
        (d / ".ready").touch()
        await trio.sleep(1.0)
        n.cancel_scope.cancel()
    assert rec.attempts == [d]
    # A restart: a new watcher, is_known backed by what the first one started.
    rec2 = Recorder(known=set(rec.known))
    async with trio.open_nursery() as n:
        w2 = rec2.watcher(root)
        await n.start(w2.run)
        await wait_for(lambda: w2.scans >= 3)
        n.cancel_scope.cancel()
    assert rec2.attempts == [] and rec2.errors == []
    assert w2.done == {d}


async def test_a_non_batch_directory_is_reported_once(tmp_path, nursery):
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    w = rec.watcher(root)
    await nursery.start(w.run)
    d = root / "notes"
    d.mkdir()
    (d / "readme.txt").write_text("not audio")
    (d / ".ready").touch()
    await wait_for(lambda: rec.errors)
    await wait_for(lambda: w.scans >= 6)  # several more scans: no retries
    assert rec.attempts == [d]
    assert len(rec.errors) == 1 and "no audio" in rec.errors[0][1]
    # Its contents change (the missing call arrives): it is tried again, and starts.
    (d / "call.wav").write_bytes(b"RIFF")
    await wait_for(lambda: rec.started)
    assert rec.attempts == [d, d] and len(rec.errors) == 1


async def test_startup_scan_picks_up_ready_directories(tmp_path, batch_src, nursery):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("ready", ".staging", "unmarked"):
        shutil.copytree(batch_src, root / name)
    (root / "ready" / ".ready").touch()
    (root / ".staging" / ".ready").touch()
    (root / "loose.wav").write_bytes(b"RIFF")  # a file in the root is not a batch
    rec = Recorder()
    w = rec.watcher(root, scan_interval_s=60.0)  # only the start-up scan and its re-check
    await nursery.start(w.run)
    await wait_for(lambda: rec.started, timeout=3.0)
    await trio.sleep(0.5)
    assert rec.attempts == [root / "ready"] and rec.errors == []
    assert (root / ".staging") not in rec.asked


async def test_file_events_drive_scans(tmp_path, batch_src, nursery):
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    w = rec.watcher(root, scan_interval_s=60.0)
    await nursery.start(w.run)
    await trio.sleep(0.5)  # the start-up scan is over; no periodic rescan for a minute
    d = root / "b1"
    shutil.copytree(batch_src, d)
    (d / ".ready").touch()
    await wait_for(lambda: rec.started, timeout=5.0)


async def test_a_missing_root_is_reported_once(tmp_path, nursery):
    rec = Recorder()
    w = rec.watcher(tmp_path / "absent")
    await nursery.start(w.run)
    await wait_for(lambda: w.scans >= 4)
    assert len(rec.errors) == 1 and "cannot watch" in rec.errors[0][1]
    (tmp_path / "absent").mkdir()
    await wait_for(lambda: w.scans >= 6)
    assert len(rec.errors) == 1


async def test_cancellation_is_prompt(tmp_path):
    rec = Recorder()
    t0 = None
    async with trio.open_nursery() as n:
        await n.start(rec.watcher(tmp_path, scan_interval_s=60.0).run)
        await trio.sleep(0.5)  # awatch is waiting in its thread
        t0 = time.monotonic()
        n.cancel_scope.cancel()
    assert time.monotonic() - t0 < 1.0


async def test_watcher_for_app_runs_the_batch_to_completed(tmp_path):
    root = tmp_path / "root"
    d = root / "2026-11-22-a"
    write_fixture_batch(d)
    (d / ".ready").touch()
    cfg = parse_config({
        "paths": {"data": str(tmp_path / "data")},
        "backends": {"denoise": "fake", "ivr": "fake", "lid": "fake", "stt": "fake",
                     "chat": "fake"},
        "stages": {"retry": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}},
        "watch": {"roots": [str(root)], "scan_interval_s": 0.3},
    })
    errors: list[tuple[Path, str]] = []

    def status(app):
        async def read():
            return await app.db.read(lambda c: c.execute(
                sa.select(t.batch_status.c.id, t.batch_status.c.status)).all())
        return read

    async with open_app(cfg) as app:
        w = watcher_for_app(app, on_error=lambda p, m: errors.append((p, m)))
        async with trio.open_nursery() as n:
            await n.start(w.run)
            with trio.fail_after(20):
                while True:
                    rows = await status(app)()
                    if rows and rows[0].status == "Completed" and not app.runs:
                        break
                    await trio.sleep(0.1)
            n.cancel_scope.cancel()
        assert len(rows) == 1 and errors == []
        row = await app.db.read(lambda c: repo.batch_by_source(c, str(d.resolve())))
        assert row is not None and row.id == rows[0].id and row.status == "Completed"
        # A second watcher (a restart) asks the database and starts nothing.
        w2 = watcher_for_app(app, on_error=lambda p, m: errors.append((p, m)))
        async with trio.open_nursery() as n:
            await n.start(w2.run)
            await wait_for(lambda: w2.scans >= 3)
            n.cancel_scope.cancel()
        assert w2.done == {d.resolve()}
        assert len(await status(app)()) == 1 and errors == []
