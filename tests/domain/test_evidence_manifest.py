"""manifest.json's recording entry: the digest on disk beside the one kept at intake."""

from __future__ import annotations

from datetime import datetime

from cofid.domain import evidence_bundle as eb

VERDICT = {"batch_id": 4, "trade_id": "T1", "audio_name": "a.wav", "verdict": "confirmed"}
FILES = [("recording/a.wav", 10, "a" * 64), ("transcript.json", 3, "b" * 64)]


def _recording(first_stored: eb.FileDigest | None) -> dict:
    doc = eb.manifest_doc(verdict=VERDICT, created_at=datetime(2026, 12, 3, 8, 0),
                          files=FILES, recording="recording/a.wav", first_stored=first_stored)
    return doc["recording"]


def test_a_recording_unchanged_since_intake_matches():
    assert _recording(eb.FileDigest(10, "a" * 64)) == {
        "name": "recording/a.wav", "size_bytes": 10, "sha256": "a" * 64,
        "sha256_of": eb.RECORDING_SHA256_OF, "sha256_as_first_stored": "a" * 64,
        "size_bytes_as_first_stored": 10, "matches_first_stored": True, "note": "",
    }


def test_a_changed_digest_or_size_does_not_match_and_says_so():
    for first in (eb.FileDigest(10, "c" * 64), eb.FileDigest(11, "a" * 64)):
        rec = _recording(first)
        assert (rec["sha256_as_first_stored"], rec["size_bytes_as_first_stored"]) == first[::-1]
        assert rec["matches_first_stored"] is False
        assert rec["note"] == eb.CHANGED_SINCE_STORED


def test_no_kept_digest_is_null_with_the_reason():
    rec = _recording(None)
    assert (rec["sha256_as_first_stored"], rec["size_bytes_as_first_stored"]) == (None, None)
    assert rec["matches_first_stored"] is None and rec["note"] == eb.NO_ORIGINAL_DIGEST
    assert rec["sha256"] == "a" * 64  # the file as it is on disk, as before
