"""The evidence bundle of one trade (GetEvidence): its rows as documents, its recording
hashed, its manifest (format: cofid.domain.evidence_bundle).

The documents are small and built in memory; the recording is not read here beyond
hashing it (in a worker thread): the transport streams it from its path, hashing again
as it goes, so a file that changes in between is caught there. The manifest also carries
the digest kept when the recording was first taken in (recordingDigest) and whether the
file on disk still matches it; a mismatch is reported there, not refused.

Refusals (ServiceError kinds): no verdict for the trade → NotFound; a trade that maps to
no call, or whose recording is no longer on disk → Precondition (there is nothing to
bundle, and the message says which).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trio

from cofid.domain import evidence_bundle as eb
from cofid.service import errors
from cofid.service.app import App
from cofid.service.digests import hash_file
from cofid.store import verdict_queries as vq


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle: its bytes (documents) or its path (the recording)."""

    name: str
    size: int
    sha256: str
    data: bytes | None = None
    path: str | None = None


@dataclass(frozen=True)
class Bundle:
    batch_id: int
    trade_id: str
    audio_name: str
    verdict: str
    files: list[BundleFile]  # bundle order; manifest.json last


class RecordingGone(errors.Precondition):
    """The recording of the trade's call is no longer where cofid stored it."""


class NoRecording(errors.Precondition):
    """The trade maps to no call, so there is no recording to bundle."""


def _first_stored(row: Mapping[str, Any] | None) -> eb.FileDigest | None:
    """The recordingDigest row as a digest (None: none was kept)."""
    if row is None:
        return None
    return eb.FileDigest(int(row["size_bytes"]), str(row["sha256"]))


def _doc(name: str, data: bytes) -> BundleFile:
    return BundleFile(name, len(data), hashlib.sha256(data).hexdigest(), data=data)


async def evidence_bundle(
    app: App, trade_id: str, batch_id: int, now: datetime | None = None
) -> Bundle:
    """The bundle of ``trade_id`` in ``batch_id`` (0: the newest batch with its verdict)."""
    rec = await app.db.read(lambda conn: vq.evidence_records(conn, trade_id, batch_id))
    where = f" in batch {batch_id}" if batch_id else ""
    if rec is None:
        raise errors.NotFound(f"no verdict for trade {trade_id!r}{where}")
    v = rec.verdict
    if rec.call is None:
        raise NoRecording(
            f"trade {trade_id!r} (batch {v['batch_id']}) is {v['verdict']}: "
            f"it maps to no call with a recording, so there is no evidence "
            f"bundle ({v['reason'] or 'no reason recorded'})"
        )
    audio = str(rec.call["audio_name"])
    path = str((rec.file or {}).get("file_path") or "")
    gone = RecordingGone(
        f"the recording of trade {trade_id!r}, {audio} (batch "
        f"{v['batch_id']}), is no longer on disk"
        + (f" at {path}" if path else "")
        + ": no bundle without it"
    )
    if not path:
        raise gone
    try:
        size, sha = await trio.to_thread.run_sync(hash_file, path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise gone from None
    except OSError as e:
        raise RecordingGone(
            f"the recording of trade {trade_id!r}, {audio}, cannot be read "
            f"({os.strerror(e.errno) if e.errno else e})"
        ) from None
    recording = BundleFile(eb.recording_name(audio), size, sha, path=path)
    docs = [
        _doc(eb.TRANSCRIPT, eb.document(eb.transcript_doc(rec.call, rec.file, rec.transcript))),
        _doc(eb.EXTRACTED, eb.document(eb.extracted_doc(rec.call, rec.conversations))),
        _doc(eb.BOOKED, eb.document(eb.booked_doc(rec.trade, trade_id))),
        _doc(eb.VERDICT, eb.document(eb.verdict_doc(v))),
        _doc(eb.ANSWERS, eb.document(eb.answers_doc(rec.call, rec.answers))),
    ]
    files = [recording, *docs]
    manifest = eb.manifest_doc(
        verdict=v,
        created_at=now or datetime.now(UTC),
        files=[(f.name, f.size, f.sha256) for f in files],
        recording=recording.name,
        first_stored=_first_stored(rec.digest),
    )
    files.append(_doc(eb.MANIFEST, eb.document(manifest)))
    return Bundle(int(v["batch_id"]), trade_id, audio, str(v["verdict"]), files)
