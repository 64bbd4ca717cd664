"""recordingDigest and lidStatus.detectedLanguage as a batch run leaves them, on SQLite, on
MariaDB and on a MariaDB whose server zone is +05:30: the exact rows.

recordingDigest: one row per distributed file of the batch, the SHA-256 and size of the
file's bytes as the distribution read them, storedAt in UTC; written once — a file
changed afterwards, a resumed run, or a second write for the same file leaves the first
digest. lidStatus.detectedLanguage: the fake detector's own code ("fr" for the French call
labelled 'other'), beside the seed's language column, which keeps its values.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cofid.backends.fake import default_script
from cofid.config import parse_config
from cofid.domain.evidence_bundle import FileDigest
from cofid.service.app import open_app
from cofid.store import batches as batch_rows
from cofid.store import tables as t
from cofid.store.db import create_engine
from cofid.store.writes import utcnow
from cofid.testing.batches import fake_config, write_fixture_batch


@pytest.fixture(params=["sqlite", "mariadb", "mariadb_zoned"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cofi.db'}"
    return request.getfixturevalue(request.param).create_database()


def _read(url: str, stmt: sa.Select) -> list[sa.Row]:
    """A reader's view: its own engine, no session zone pinned."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(stmt))
    finally:
        engine.dispose()


async def _run(url: str, tmp_path: Path, batch_dir: Path) -> int:
    async with open_app(parse_config(fake_config(url, tmp_path / "data"))) as app:
        batch_id = await app.prepare_batch(batch_dir)
        await app.run_batch(batch_id)
    return batch_id


def _digests(url: str) -> list[tuple]:
    rd = t.recording_digest
    return [
        tuple(r)
        for r in _read(url, sa.select(rd).order_by(rd.c.batchId, rd.c.audioName))
    ]


async def test_a_batch_keeps_each_recordings_first_digest(url, tmp_path):
    batch_dir = tmp_path / "batch"
    exp = write_fixture_batch(batch_dir)
    before = utcnow() - timedelta(milliseconds=1)
    batch_id = await _run(url, tmp_path, batch_dir)
    after = utcnow() + timedelta(milliseconds=1)

    names = exp["files"]  # every audio file, the undecodable one too: all are distributed
    first = {n: (batch_dir / n).read_bytes() for n in names}
    rows = _digests(url)
    assert [r[:4] for r in rows] == [
        (batch_id, n, hashlib.sha256(first[n]).hexdigest(), len(first[n])) for n in names
    ]
    # storedAt is UTC (between two UTC readings of the clock), whatever the server zone.
    for r in rows:
        assert before <= r[4] <= after, (r, before, after)

    # lidStatus: the seed's language as before, the detector's own code beside it.
    lid = t.lid_status
    got = _read(url, sa.select(lid.c.audioName, lid.c.language, lid.c.detectedLanguage)
                .order_by(lid.c.audioName))
    assert [tuple(r) for r in got] == [
        (n, exp["calls"][n]["lang"], default_script(n).detected)
        for n in names if exp["calls"][n]["lid_row"]
    ]
    assert ("call_05_fr.wav", "other", "fr") in [tuple(r) for r in got]

    # The file changes on disk; the same directory runs again (a resume of the same
    # batch) and a second digest is offered for it: the first one stays.
    changed = batch_dir / "call_01_long.wav"
    changed.write_bytes(b"RIFF" + b"\x00" * 100)
    assert await _run(url, tmp_path, batch_dir) == batch_id
    engine = create_engine(url, pool_size=1)
    with engine.begin() as conn:
        batch_rows.record_digests(conn, batch_id, {
            "call_01_long.wav": FileDigest(104, hashlib.sha256(changed.read_bytes()).hexdigest()),
            "later.wav": FileDigest(3, "0" * 64),
        })
    engine.dispose()
    again = _digests(url)
    assert [r for r in again if r[1] != "later.wav"] == rows
    [later] = [r for r in again if r[1] == "later.wav"]
    assert later[:4] == (batch_id, "later.wav", "0" * 64, 3)
    assert after <= later[4] <= utcnow() + timedelta(milliseconds=1)
