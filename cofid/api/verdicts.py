"""ListTradeVerdicts and GetEvidence: the handlers' bodies, called by the servicer.

ListTradeVerdicts pages on the trade id (a recomputed verdict gets a new row id; its
trade id stays), in tokens signed like every other page token
(:mod:`cofid.api.page_tokens`) and bound to the RPC, the batch and the verdict filter,
so a ListCalls token (or one for other verdicts or another batch) is refused.

GetEvidence streams the bundle that :func:`cofid.service.evidence.evidence_bundle`
describes: the header (every file's name, size, SHA-256), then each file's bytes in
chunks of CHUNK bytes. The recording is read from disk here, in the handler's thread (no
trio involved), and hashed again as it goes: a recording that changed since the header
was built ends the stream with FAILED_PRECONDITION instead of a bundle whose manifest
lies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

from cofid.api import page_tokens
from cofid.api.bridge import ApiError, invalid
from cofid.api.convert import decimal_str, ts
from cofid.api.validate import TOKEN_REFUSED
from cofid.service import evidence, verdicts
from protos.cofi.v1 import cofi_pb2 as pb

DEFAULT_PAGE, MAX_PAGE = 100, 1000
CHUNK = 1024 * 1024  # as UploadAudit's chunks
MAX_TRADE_ID = 64  # tradeVerdict.tradeId VARCHAR(64)
FIELD_ORDER = ("symbol", "side", "quantity", "price", "order_type")

ServiceCall = Callable[..., Any]  # servicer.ServiceCalls: refusals become status codes


def verdicts_filter_key(batch_id: int, verdict_filter: list[str]) -> str:
    raw = json.dumps(["verdicts", batch_id, verdict_filter])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def page_token(last_trade_id: str, key: str) -> str:
    return page_tokens.sign({"r": "ListTradeVerdicts", "t": last_trade_id, "f": key})


def read_page_token(token: str, key: str) -> str:
    """The trade id a ListTradeVerdicts page continues after."""
    raw = page_tokens.verify(token)
    last = None if raw is None else raw.get("t")
    if (
        raw is None
        or raw.get("r") != "ListTradeVerdicts"
        or raw.get("f") != key
        or type(last) is not str
        or not 0 < len(last) <= MAX_TRADE_ID
    ):
        raise invalid(TOKEN_REFUSED)
    return last


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return decimal_str(value)
    return str(value)


def _field(name: str, check: Mapping[str, Any]) -> pb.VerdictField:
    msg = pb.VerdictField(
        field=name, agree=bool(check.get("agree")), note=str(check.get("note") or "")
    )
    if check.get("booked") is not None:
        msg.booked = _text(check["booked"])
    if check.get("heard") is not None:
        msg.heard = _text(check["heard"])
    return msg


def trade_verdict(v: Mapping[str, Any]) -> pb.TradeVerdict:
    """A tradeVerdict record (field names) as its message."""
    msg = pb.TradeVerdict(
        batch_id=v["batch_id"],
        trade_id=v["trade_id"],
        audio_name=v["audio_name"] or "",
        call_id=v["call_id"] or 0,
        verdict=v["verdict"],
        reason=v["reason"] or "",
    )
    if v["decided_at"] is not None:
        msg.decided_at.CopyFrom(ts(v["decided_at"]))
    fields = v["fields"] if isinstance(v["fields"], Mapping) else {}
    names = [n for n in FIELD_ORDER if n in fields] + sorted(set(fields) - set(FIELD_ORDER))
    msg.fields.extend(_field(n, fields[n]) for n in names if isinstance(fields[n], Mapping))
    for seg in v["evidence"] if isinstance(v["evidence"], list) else []:
        msg.evidence.append(
            pb.EvidenceSegment(
                start=float(seg.get("start") or 0.0),
                end=float(seg.get("end") or 0.0),
                text=str(seg.get("text") or ""),
            )
        )
    return msg


def list_trade_verdicts(
    request: pb.ListTradeVerdictsRequest, call: ServiceCall, app: Any
) -> pb.ListTradeVerdictsReply:
    if request.batch_id <= 0:
        raise invalid(f"batch_id must be > 0, got {request.batch_id}")
    if request.page_size < 0:
        raise invalid(f"page_size must be ≥ 0, got {request.page_size}")
    size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
    wanted = sorted(set(request.verdicts))  # the service refuses unknown values
    key = verdicts_filter_key(request.batch_id, wanted)
    after = read_page_token(request.page_token, key) if request.page_token else ""
    rows, more = call(verdicts.list_verdicts, app, request.batch_id, wanted, size, after)
    reply = pb.ListTradeVerdictsReply(verdicts=[trade_verdict(r) for r in rows])
    if more and rows:
        reply.next_page_token = page_token(rows[-1]["trade_id"], key)
    return reply


def send_evidence(
    request: pb.GetEvidenceRequest, context: grpc.ServicerContext, call: ServiceCall, app: Any
) -> Iterator[pb.EvidenceChunk]:
    if not request.trade_id:
        raise invalid("trade_id is empty")
    if len(request.trade_id) > MAX_TRADE_ID:
        raise invalid(f"trade_id is longer than {MAX_TRADE_ID} characters")
    if request.batch_id < 0:
        raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
    bundle: evidence.Bundle = call(
        evidence.evidence_bundle, app, request.trade_id, request.batch_id
    )
    yield pb.EvidenceChunk(
        header=pb.EvidenceHeader(
            batch_id=bundle.batch_id,
            trade_id=bundle.trade_id,
            audio_name=bundle.audio_name,
            verdict=bundle.verdict,
            files=[
                pb.EvidenceFile(name=f.name, size_bytes=f.size, sha256=f.sha256)
                for f in bundle.files
            ],
        )
    )
    for index, f in enumerate(bundle.files):
        if f.data is not None:
            for off in range(0, len(f.data), CHUNK):
                yield pb.EvidenceChunk(
                    data=pb.EvidenceData(
                        file_index=index, offset=off, data=f.data[off : off + CHUNK]
                    )
                )
        else:
            yield from _stream_file(index, f, context)


def _stream_file(
    index: int, f: evidence.BundleFile, context: grpc.ServicerContext
) -> Iterator[pb.EvidenceChunk]:
    assert f.path is not None
    changed = ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"the recording {f.name} changed while it was being sent; ask again",
    )
    h = hashlib.sha256()
    off = 0
    try:
        with open(f.path, "rb") as src:
            while off < f.size and context.is_active():
                block = src.read(min(CHUNK, f.size - off))
                if not block:
                    break
                h.update(block)
                yield pb.EvidenceChunk(
                    data=pb.EvidenceData(file_index=index, offset=off, data=block)
                )
                off += len(block)
            extra = src.read(1)
    except OSError:
        raise changed from None
    if not context.is_active():
        return  # the client went away; nothing to tell it
    if off != f.size or extra or h.hexdigest() != f.sha256:
        raise changed
