"""Rows and engine objects → cofi.v1 messages (no I/O, no trio)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlsplit, urlunsplit

from google.protobuf.timestamp_pb2 import Timestamp

from protos.cofi.v1 import cofi_pb2 as pb

if TYPE_CHECKING:
    from cofid.domain.events import Event
    from cofid.engine.gpus import Gpu
    from cofid.service.batches import TaskRef
    from cofid.service.reaudit import ReauditAccepted
    from cofid.service.tasks import TaskRecord, TaskView


@overload
def ts(value: datetime) -> Timestamp: ...
@overload
def ts(value: None) -> None: ...


def ts(value: datetime | None) -> Timestamp | None:
    """A Timestamp from a datetime; naive values are UTC (how cofid stores them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    out = Timestamp()
    out.FromDatetime(value)
    return out


def decimal_str(value: Any) -> str:
    """An exact decimal string trimmed of trailing zeros ("1500", "2345.5"); "" if None."""
    if value is None:
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def strip_credentials(url: str) -> str:
    try:
        p = urlsplit(url)
    except ValueError:
        return ""
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


def event(e: Event) -> pb.Event:
    msg = pb.Event(
        id=e.id, batch_id=e.batch_id or 0, stage=e.stage or "", event_type=e.event_type or "",
        file_name=e.file_name or "", gpu_ip=e.gpu or "", payload=json_text(e.payload),
        response=json_text(e.response), status=e.status or "",
        error_message=e.error_message or "", metadata_json=json_text(e.metadata),
    )
    if e.timestamp is not None:
        msg.timestamp.CopyFrom(ts(e.timestamp))
    if e.total_files is not None:
        msg.total_files = e.total_files
    if e.processed_files is not None:
        msg.processed_files = e.processed_files
    return msg


def batch_summary(b: Mapping[str, Any]) -> pb.BatchSummary:
    """A batch record (field names: cofid.store.queries) as its summary."""
    msg = pb.BatchSummary(
        batch_id=b["id"], batch_date=b["batch_date"].isoformat(),
        batch_number=b["batch_number"], status=b["status"], source=b["source"],
        total_files=b["total_files"],
    )
    if b["created_at"] is not None:
        msg.created_at.CopyFrom(ts(b["created_at"]))
    if b["completed_at"] is not None and b["status"] == "Completed":
        msg.completed_at.CopyFrom(ts(b["completed_at"]))
    for verdict, n in (b.get("verdict_counts") or {}).items():  # read beside the row
        msg.verdict_counts[verdict] = n
    return msg


def stage_progress(d: dict[str, Any]) -> pb.StageProgress:
    return pb.StageProgress(stage=d["stage"], status=d["status"], total=d["total"],
                            done=d["done"], failed=d["failed"], skipped=d["skipped"])


def task(rec: TaskRecord, stages: list[dict[str, Any]], failures: list[dict[str, Any]]) -> pb.Task:
    msg = pb.Task(
        task_id=rec.id, kind=rec.kind, state=rec.state, batch_id=rec.batch_id or 0,
        error=rec.error or "", request_json=json.dumps(rec.request, sort_keys=True),
        stages=[stage_progress(s) for s in stages],
        failures=[pb.FileFailure(audio_name=f["audio_name"], stage=f["stage"],
                                 error=f["error"] or "") for f in failures[-1000:]],
    )
    if rec.created_at is not None:
        msg.created_at.CopyFrom(ts(rec.created_at))
    if rec.updated_at is not None:
        msg.updated_at.CopyFrom(ts(rec.updated_at))
    return msg


def gpu_state(g: Gpu, url: str) -> pb.GpuState:
    return pb.GpuState(
        name=g.name, url=strip_credentials(url) if url else "", healthy=g.healthy,
        slots=g.total_slots, slots_in_use=g.in_use, files_assigned=g.assigned, files_done=g.done,
        latency_ms_p50=g.latency_percentile(0.5), latency_ms_p95=g.latency_percentile(0.95),
        consecutive_failures=getattr(g.breaker, "consecutive_failures", 0),
        requests_failed=g.requests_failed, error_rate=g.error_rate(),
    )


def call(c: Mapping[str, Any], *, fd: Mapping[str, Any] | None,
         transcript: Iterable[Mapping[str, Any]], conversations: Iterable[Mapping[str, Any]],
         mapped: Iterable[Mapping[str, Any]], answers: Iterable[Mapping[str, Any]]) -> pb.Call:
    """A call record and its rows (field names: cofid.store.queries.CallRecords)."""
    msg = pb.Call(
        call_id=c["id"], batch_id=c["batch_id"], audio_name=c["audio_name"],
        status=c["status"], lang=c["lang"], language_id=c["language_id"],
        audio_duration=float(c["audio_duration"] or 0),
    )
    if fd is not None:
        msg.gpu_ip = fd["gpu_ip"] or ""
        msg.failed_stage = fd["failed_stage"] or ""
        msg.failure_reason = fd["failure_reason"] or ""
    msg.transcript.extend(
        pb.TranscriptSegment(index=r["segment_index"], start=r["start_time"],
                             end=r["end_time"], text=r["text"], speaker=r["speaker"] or "")
        for r in transcript
    )
    msg.extracted_trades.extend(
        pb.ExtractedTrade(trade_index=r["trade_index"], trade_id=r["trade_id"] or "",
                          symbol=r["symbol"] or "", side=r["side"] or "",
                          quantity=decimal_str(r["quantity"]), price=decimal_str(r["price"]),
                          order_type=r["order_type"] or "", evidence=r["evidence"] or "")
        for r in conversations
    )
    for r in mapped:
        mt = pb.MappedTrade(trade_id=r["trade_id"], symbol=r["symbol"], side=r["side"],
                            quantity=decimal_str(r["quantity"]), price=decimal_str(r["price"]))
        if r["trade_time"] is not None:
            mt.trade_time.CopyFrom(ts(r["trade_time"]))
        msg.mapped_trades.append(mt)
    msg.audit_answers.extend(
        pb.AuditAnswer(question_id=r["question_id"], question=r["question"],
                       answer=r["answer"], evidence=r["evidence"] or "",
                       source="llm2" if r["source"] == "llm2" else "rule")
        for r in answers
    )
    return msg


# ---- the service's records ----------------------------------------------------------


def task_ref(ref: TaskRef) -> pb.TaskRef:
    return pb.TaskRef(task_id=ref.task_id, state=ref.state, batch_id=ref.batch_id)


def left_alone_call(d: Mapping[str, Any]) -> pb.LeftAloneCall:
    return pb.LeftAloneCall(audio_name=str(d["audio_name"]), batch_id=int(d["batch_id"]),
                            reason=str(d["reason"]))


def reaudit_reply(accepted: ReauditAccepted) -> pb.ReauditReply:
    return pb.ReauditReply(task_id=accepted.task_id,
                           unknown_audio_names=accepted.unknown_audio_names,
                           matched_calls=accepted.matched_calls,
                           left_alone=[left_alone_call(a.as_dict())
                                       for a in accepted.left_alone])


def task_view(view: TaskView) -> pb.Task:
    msg = task(view.record, view.stages, view.failures)
    msg.left_alone.extend(left_alone_call(d) for d in view.left_alone)
    return msg
