"""A resumed batch works from the database: its directory is not read again once its
distribution and CSV steps are done (a file added later is not part of the batch, as its
distribution did not take it), its finished files are never fed to the stage workers, and
it still ends with exactly the rows of an uninterrupted run (cofid.store.pending,
cofid.plans.batch.reads_directory)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.domain.model import FILE_STAGES
from cofid.engine.run import Engine
from cofid.service import batches as service_batches
from cofid.service.app import open_app
from cofid.service.errors import BatchInputError
from cofid.store import tables as t
from cofid.store.db import create_engine, read_once
from cofid.testing.batches import fake_config, write_fixture_batch
from cofid.testing.dbdump import diff_dumps, normalized_dump

EXTRA_CALLS = 33  # 40 calls
STOP_AFTER = 15  # Complete calls when the first run is stopped
UNFINISHED = ("Pending", "TranscriptDone", "AuditDone")


def _cfg(url: str, data: Path):
    return parse_config(fake_config(url, data, latency_s=0.002, slots=2))


async def _uninterrupted(url: str, data: Path, batch_dir: Path) -> None:
    async with open_app(_cfg(url, data)) as app:
        await app.run_batch(await app.prepare_batch(batch_dir))


async def _stopped_half_way(url: str, data: Path, batch_dir: Path) -> None:
    """The batch run until STOP_AFTER calls are Complete, then cancelled where it stands
    (files in flight are left half done; what committed stays)."""
    async with open_app(_cfg(url, data)) as app:
        batch_id = await app.prepare_batch(batch_dir)
        with trio.CancelScope() as scope:
            done = 0

            def listener(e) -> None:
                nonlocal done
                if e.stage == "llm2" and e.event_type == "file_complete":
                    done += 1
                    if done >= STOP_AFTER:
                        scope.cancel()

            app.bus.listeners.append(listener)
            await app.run_batch(batch_id)
        assert scope.cancelled_caught, "the batch ended before it was stopped"


def _unfinished_files(url: str) -> set[str]:
    """The calls some stage still has work for, read independently of cofid.store.pending:
    not failed, and in a status a stage of the batch plan takes."""
    def q(conn) -> set[str]:
        fd, c = t.file_distribution, t.call
        rows = conn.execute(
            sa.select(c.c.audioName)
            .select_from(fd.join(c, sa.and_(c.c.batchId == fd.c.batchId,
                                            c.c.audioName == fd.c.file)))
            .where(fd.c.failedStage.is_(None), c.c.status.in_(UNFINISHED)))
        return {r[0] for r in rows}

    return read_once(url, q)


@pytest.fixture
def scans(monkeypatch):
    """Every read of a batch directory (the scan of its entries, CSVs and manifest)."""
    seen: list[Path] = []
    original = service_batches.read_batch_dir

    def spy(directory, **kwargs):
        seen.append(Path(directory))
        return original(directory, **kwargs)

    monkeypatch.setattr(service_batches, "read_batch_dir", spy)
    return seen


@pytest.fixture
def fed(monkeypatch):
    """(audio name, stage) of every file a stage worker was handed."""
    seen: list[tuple[str, str]] = []
    original = Engine._process

    async def spy(self, run, index, stage, inputs, f):
        seen.append((f.audio_name, stage.value))
        return await original(self, run, index, stage, inputs, f)

    monkeypatch.setattr(Engine, "_process", spy)
    return seen


async def test_resume_reads_no_directory_feeds_only_unfinished_files_and_equals_a_full_run(
        tmp_path, scans, fed):
    batch_dir = tmp_path / "batch"
    expected = write_fixture_batch(batch_dir, extra_calls=EXTRA_CALLS)
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    await _uninterrupted(ref_url, tmp_path / "ref-data", batch_dir)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    await _stopped_half_way(url, tmp_path / "data", batch_dir)
    assert len(scans) == 2  # each first run read the directory once
    unfinished = _unfinished_files(url)
    total = expected["total_files"]
    assert 0 < len(unfinished) < total - STOP_AFTER + 1, unfinished

    # A file that arrives after the distribution: not part of the batch.
    shutil.copy(batch_dir / expected["files"][0], batch_dir / "zz_late_arrival.wav")
    scans.clear()
    fed.clear()
    async with open_app(_cfg(url, tmp_path / "data")) as app:
        batch_id = await app.prepare_batch(batch_dir)
        run = await app.run_batch(batch_id)

    assert scans == []  # the directory was not read again
    # Only the files with work left reached the stage workers (each at the first stage,
    # skipping on from there to its own), and no finished one at any stage.
    assert {name for name, _stage in fed} == unfinished
    assert {name for name, stage in fed if stage == run.stages[0].value} == unfinished
    assert run.unfed == total - len(unfinished)
    for stage in run.stages:
        c = run.counters[stage]
        assert c.done + c.failed + c.skipped == total, stage
        assert c.skipped >= run.unfed, stage
    assert run.stages == FILE_STAGES

    reference, got = normalized_dump(ref_url), normalized_dump(url)
    assert got == reference, "\n".join(diff_dumps(reference, got))
    assert "zz_late_arrival.wav" not in {r["file"] for r in got["fileDistribution"]}
    assert len(got["fileDistribution"]) == len(got["call"]) == total
    assert {r["status"] for r in got["batchStatus"]} == {"Completed"}


async def test_a_resume_of_a_finished_batch_feeds_nothing_and_completes_it(tmp_path, fed):
    """A batch whose every file is settled but that was stopped before its closing write
    (statuses complete, batchStatus not Completed) is finished without feeding a file."""
    batch_dir = tmp_path / "batch"
    expected = write_fixture_batch(batch_dir)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    await _uninterrupted(url, tmp_path / "data", batch_dir)
    reference = normalized_dump(url)

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(t.batch_status).values(status="llm2Done", completedAt=None))
    engine.dispose()
    fed.clear()
    async with open_app(_cfg(url, tmp_path / "data")) as app:
        run = await app.run_batch(await app.prepare_batch(batch_dir))
    assert fed == []
    assert run.unfed == expected["total_files"]
    got = normalized_dump(url)
    # The closing write again, and nothing else: the same rows, one more closing info event
    # (info events are per run and not in the dump).
    assert got == reference, "\n".join(diff_dumps(reference, got))


async def test_a_resumed_batch_whose_directory_is_gone_is_refused_and_changes_nothing(tmp_path):
    batch_dir = tmp_path / "batch"
    write_fixture_batch(batch_dir, extra_calls=EXTRA_CALLS)
    url = f"sqlite:///{tmp_path / 'run.db'}"
    await _stopped_half_way(url, tmp_path / "data", batch_dir)
    before = normalized_dump(url)
    shutil.rmtree(batch_dir)
    async with open_app(_cfg(url, tmp_path / "data")) as app:
        with pytest.raises(BatchInputError, match="no such directory"):
            await app.prepare_batch(batch_dir)
    assert normalized_dump(url) == before
