"""The SHA-256 of a recording as cofid first takes it in (recordingDigest).

A batch's distribution hashes each of its audio files here, in worker threads, before the
step's transaction (a big file is never hashed while the write lock is held); an upload
brings the digests cofid.api.uploads computed while the bytes arrived, so its files are
not read again. The evidence bundle hashes the file as it is at that moment with
:func:`hash_file` too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import trio

from cofid.domain.evidence_bundle import FileDigest

HASH_BLOCK = 1024 * 1024

log = logging.getLogger("cofid")


def hash_file(path: str | Path) -> FileDigest:
    """(size, lowercase hex SHA-256) of the file at ``path``, read in HASH_BLOCK chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
            size += len(block)
    return FileDigest(size, h.hexdigest())


async def digests_of(paths: Sequence[Path]) -> dict[str, FileDigest]:
    """Audio name (the file's name) -> its digest, each file hashed in a worker thread. A
    file that cannot be read is left out: distribution refuses it with the reason."""
    out: dict[str, FileDigest] = {}
    for p in paths:
        try:
            out[p.name] = await trio.to_thread.run_sync(hash_file, p)
        except OSError as e:
            log.warning("%s: not hashed (%s)", p.name, e.strerror or type(e).__name__)
    return out
