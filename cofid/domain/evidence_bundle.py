"""The evidence bundle of one booked trade, for a dispute: its files and its manifest.

Pure: no I/O. The service brings the rows and the recording's digest; this module names
the files, renders the JSON documents (deterministic: sorted keys, UTF-8, two-space
indent) and builds manifest.json. The bundle, as `cofictl evidence` writes it, is a zip
of these files in this order:

  recording/<audioName>    the call's recording, byte for byte as cofid holds it
  transcript.json          the call's segments with start / end seconds
  extracted_trades.json    what LLM1 heard (callConversation rows)
  booked_trade.json        the trade as booked (the tradeMetadata row)
  verdict.json             the tradeVerdict row: verdict, reason, fields, evidence
  audit_answers.json       the audit questions and answers (auditAnswer rows)
  manifest.json            format, ids, and name, size and SHA-256 of every other file

Times in the transcript are seconds from the start of the IVR-trimmed audio, as cofid
stores them; transcript.json carries the trim offset, so a segment starts at
start + ivr_trim_offset_s in the recording itself.

The original digest: cofid keeps the SHA-256 and size of every recording as it first took
it in (recordingDigest: a batch's distribution hashes each file, an upload keeps the
digest it computed while receiving), written once and never replaced. The manifest's
``sha256`` is of the file as it is on disk when the bundle is made (``sha256_of`` says
so); ``sha256_as_first_stored`` is the kept one and ``matches_first_stored`` says whether
the two agree (size and digest). A recording taken in before cofid kept digests has
neither: both are null and the note says why.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

FORMAT = "cofi-evidence/1"
RECORDING_DIR = "recording"
TRANSCRIPT = "transcript.json"
EXTRACTED = "extracted_trades.json"
BOOKED = "booked_trade.json"
VERDICT = "verdict.json"
ANSWERS = "audit_answers.json"
MANIFEST = "manifest.json"
DOCUMENTS = (TRANSCRIPT, EXTRACTED, BOOKED, VERDICT, ANSWERS)

RECORDING_SHA256_OF = "the recording file as stored on the daemon's disk when the bundle was made"
NO_ORIGINAL_DIGEST = (
    "no digest was kept when this recording was first stored (taken in before cofid "
    "kept them); sha256 is of the file on disk when the bundle was made"
)
CHANGED_SINCE_STORED = (
    "the recording on disk differs from the recording as first stored: sha256 is of "
    "the file on disk when the bundle was made, sha256_as_first_stored of the original"
)


class FileDigest(NamedTuple):
    """A file's size and lowercase hex SHA-256."""

    size_bytes: int
    sha256: str


def recording_name(audio_name: str) -> str:
    """The recording's path in the bundle: its base name under recording/ (an audio name
    is a base name already; posixpath.basename keeps a stray path out of the zip)."""
    base = posixpath.basename(audio_name.replace("\\", "/")) or "recording"
    return f"{RECORDING_DIR}/{base}"


def plain(value: Any) -> Any:
    """A JSON-ready value: decimals as exact strings ("1500", "2345.5"), instants as UTC
    ISO 8601 with a Z (cofid stores naive UTC), containers element by element."""
    if isinstance(value, Decimal):
        s = format(value, "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s or "0"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def document(obj: Any) -> bytes:
    """A bundle's JSON document: deterministic bytes."""
    text = json.dumps(plain(obj), ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return (text + "\n").encode("utf-8")


def transcript_doc(
    call: Mapping[str, Any], file: Mapping[str, Any] | None, segments: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "batch_id": call["batch_id"],
        "call_id": call["id"],
        "audio_name": call["audio_name"],
        "language": call["lang"],
        "audio_duration_s": call["audio_duration"],
        "ivr_trim_offset_s": (file or {}).get("ivr_trim_offset") or 0.0,
        "time_base": "seconds from the start of the IVR-trimmed audio; add "
        "ivr_trim_offset_s for the time in the recording",
        "segments": [
            {
                "index": s["segment_index"],
                "start": s["start_time"],
                "end": s["end_time"],
                "text": s["text"],
                "speaker": s["speaker"],
            }
            for s in segments
        ],
    }


def extracted_doc(
    call: Mapping[str, Any], conversations: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "call_id": call["id"],
        "audio_name": call["audio_name"],
        "trades": [
            {
                "trade_index": c["trade_index"],
                "trade_id": c["trade_id"],
                "symbol": c["symbol"],
                "side": c["side"],
                "quantity": c["quantity"],
                "price": c["price"],
                "order_type": c["order_type"],
                "evidence": c["evidence"],
            }
            for c in conversations
        ],
    }


def booked_doc(trade: Mapping[str, Any] | None, trade_id: str) -> dict[str, Any]:
    if trade is None:  # the verdict outlived its tradeMetadata row: say so, keep the id
        return {"trade_id": trade_id, "missing": "no tradeMetadata row for this trade"}
    return {
        "trade_id": trade["trade_id"],
        "batch_id": trade["batch_id"],
        "client_code": trade["client_code"],
        "symbol": trade["symbol"],
        "side": trade["side"],
        "quantity": trade["quantity"],
        "price": trade["price"],
        "trade_time": trade["trade_time"],
        "audio_name": trade["audio_name"],
        "extra": trade["extra"],
    }


def verdict_doc(v: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": v["batch_id"],
        "trade_id": v["trade_id"],
        "audio_name": v["audio_name"],
        "call_id": v["call_id"],
        "verdict": v["verdict"],
        "reason": v["reason"],
        "fields": v["fields"],
        "evidence": v["evidence"] or [],
        "decided_at": v["decided_at"],
    }


def answers_doc(call: Mapping[str, Any], answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "call_id": call["id"],
        "audio_name": call["audio_name"],
        "answers": [
            {
                "question_order": a["question_order"],
                "question_id": a["question_id"],
                "question": a["question"],
                "answer": a["answer"],
                "evidence": a["evidence"],
                "source": a["source"],
            }
            for a in answers
        ],
    }


def manifest_doc(
    *,
    verdict: Mapping[str, Any],
    created_at: datetime,
    files: Sequence[tuple[str, int, str]],
    recording: str,
    first_stored: FileDigest | None = None,
) -> dict[str, Any]:
    """manifest.json: ``files`` are (name, size, sha256) of every other file in bundle
    order; ``recording`` names the recording among them; ``first_stored`` is its digest
    as cofid first took it in (None: none was kept)."""
    rec = next(f for f in files if f[0] == recording)
    matches = None if first_stored is None else (
        (first_stored.size_bytes, first_stored.sha256) == (rec[1], rec[2])
    )
    note = NO_ORIGINAL_DIGEST if matches is None else "" if matches else CHANGED_SINCE_STORED
    return {
        "format": FORMAT,
        "created_at": created_at,
        "batch_id": verdict["batch_id"],
        "trade_id": verdict["trade_id"],
        "audio_name": verdict["audio_name"],
        "verdict": verdict["verdict"],
        "files": [{"name": n, "size_bytes": size, "sha256": sha} for n, size, sha in files],
        "recording": {
            "name": recording,
            "size_bytes": rec[1],
            "sha256": rec[2],
            "sha256_of": RECORDING_SHA256_OF,
            "sha256_as_first_stored": None if first_stored is None else first_stored.sha256,
            "size_bytes_as_first_stored": (
                None if first_stored is None else first_stored.size_bytes
            ),
            "matches_first_stored": matches,
            "note": note,
        },
    }
