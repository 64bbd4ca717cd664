"""The TUI's only way to the daemon: grpc.aio calls turned into tui.model records.

Create a CofiClient inside the running asyncio loop (Textual's on_mount): grpc.aio channels
bind to the loop that is running when they are made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import grpc

from cofid.ctl.connect import from_rpc_error
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc
from tui.health import explain_auth
from tui.model import BatchInfo, EventRecord, GpuInfo, Heartbeat, Notice, StageSnapshot
from tui.verdict_model import CallDetail, FieldRow, Segment, VerdictRow

StreamItem = EventRecord | Heartbeat | Notice
UNARY_TIMEOUT_S = 10.0

CHANNEL_OPTIONS = [
    # reconnect promptly after a daemon restart; our own loop does the backoff
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


class Client(Protocol):
    """What the app needs; tests and snapshots substitute a fake."""

    async def close(self) -> None: ...

    async def list_batches(self, date_from: str | None, date_to: str | None, page_size: int,
                           page_token: str) -> tuple[list[BatchInfo], str]: ...

    async def get_batch(self, batch_id: int) -> tuple[BatchInfo, list[StageSnapshot]]: ...

    async def list_gpus(self) -> list[GpuInfo]: ...

    async def list_trade_verdicts(self, batch_id: int, verdicts: tuple[str, ...],
                                  page_size: int, page_token: str
                                  ) -> tuple[list[VerdictRow], str]: ...

    async def get_call(self, audio_name: str, batch_id: int) -> CallDetail: ...

    def watch(self, batch_id: int, from_event_id: int | None, *,
              event_types: tuple[str, ...] = (), idle_timeout: float = 30.0
              ) -> AsyncIterator[StreamItem]: ...

    # operator actions (sent with the operator token; a viewer's is refused:
    # PERMISSION_DENIED); batch_task is a read (the viewer token)
    async def reaudit(self, audio_names: list[str], stages: list[str]) -> str: ...

    async def batch_task(self, batch_id: int) -> str | None: ...

    async def cancel_task(self, task_id: str) -> str: ...


class CofiClient:
    def __init__(self, target: str, token: str | None, ca_file: str | None = None,
                 operator_token: str | None = None) -> None:
        self.target = target
        self._md = (("authorization", f"Bearer {token}"),) if token else None
        # The operator actions send the operator token, and only they (tui.config).
        self._op_md = (("authorization", f"Bearer {operator_token}"),) if operator_token else None
        if ca_file:
            creds = grpc.ssl_channel_credentials(Path(ca_file).read_bytes())
            self.channel = grpc.aio.secure_channel(target, creds, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.CofiStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def list_batches(self, date_from: str | None, date_to: str | None, page_size: int,
                           page_token: str) -> tuple[list[BatchInfo], str]:
        req = pb.ListBatchesRequest(page_size=page_size, page_token=page_token)
        if date_from:
            req.date_from = date_from
        if date_to:
            req.date_to = date_to
        reply = await self.stub.ListBatches(req, metadata=self._md, timeout=UNARY_TIMEOUT_S)
        return [batch_info(b) for b in reply.batches], reply.next_page_token

    async def get_batch(self, batch_id: int) -> tuple[BatchInfo, list[StageSnapshot]]:
        b = await self.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=self._md,
                                     timeout=UNARY_TIMEOUT_S)
        info = batch_info(b.summary, b.source_dir, _ts(b, "last_file_finished_at"))
        return info, [StageSnapshot(s.stage, s.status, s.total, s.done, s.failed, s.skipped,
                                    s.files_per_minute, s.disabled, s.retries,
                                    s.measured_files_per_minute) for s in b.stages]

    async def list_gpus(self) -> list[GpuInfo]:
        reply = await self.stub.ListGpus(pb.ListGpusRequest(), metadata=self._md,
                                         timeout=UNARY_TIMEOUT_S)
        return [GpuInfo(g.name, g.url, g.healthy, g.slots, g.slots_in_use, g.files_assigned,
                        g.files_done, g.latency_ms_p50, g.latency_ms_p95,
                        g.consecutive_failures, g.requests_failed, g.error_rate)
                for g in reply.gpus]

    async def list_trade_verdicts(self, batch_id: int, verdicts: tuple[str, ...],
                                  page_size: int, page_token: str
                                  ) -> tuple[list[VerdictRow], str]:
        reply = await self.stub.ListTradeVerdicts(
            pb.ListTradeVerdictsRequest(batch_id=batch_id, verdicts=list(verdicts),
                                        page_size=page_size, page_token=page_token),
            metadata=self._md, timeout=UNARY_TIMEOUT_S)
        return [verdict_row(v) for v in reply.verdicts], reply.next_page_token

    async def get_call(self, audio_name: str, batch_id: int) -> CallDetail:
        c = await self.stub.GetCall(pb.GetCallRequest(audio_name=audio_name, batch_id=batch_id),
                                    metadata=self._md, timeout=UNARY_TIMEOUT_S)
        return call_detail(c)

    async def reaudit(self, audio_names: list[str], stages: list[str]) -> str:
        """Start a reaudit; its task id."""
        r = await self.stub.Reaudit(pb.ReauditRequest(audio_names=audio_names, stages=stages),
                                    metadata=self._op_md, timeout=UNARY_TIMEOUT_S)
        return str(r.task_id)

    async def batch_task(self, batch_id: int) -> str | None:
        """The queued or running task working on `batch_id`, if any."""
        r = await self.stub.ListTasks(pb.ListTasksRequest(states=["queued", "running"],
                                                          kinds=["batch"], page_size=500),
                                      metadata=self._md, timeout=UNARY_TIMEOUT_S)
        return next((str(t.task_id) for t in r.tasks if t.batch_id == batch_id), None)

    async def cancel_task(self, task_id: str) -> str:
        """Cancel a task; its state afterwards."""
        t = await self.stub.CancelTask(pb.CancelTaskRequest(task_id=task_id),
                                       metadata=self._op_md, timeout=UNARY_TIMEOUT_S)
        return str(t.state)

    async def watch(self, batch_id: int, from_event_id: int | None, *,
                    event_types: tuple[str, ...] = (), idle_timeout: float = 30.0
                    ) -> AsyncIterator[StreamItem]:
        """Yield stream items until the stream ends; raises grpc.aio.AioRpcError or
        TimeoutError (nothing, not even a heartbeat, for idle_timeout seconds)."""
        # batched: several events per message (cheaper for the daemon to send).
        req = pb.WatchRequest(batch_id=batch_id, event_types=list(event_types), batched=True)
        if from_event_id is not None:
            req.from_event_id = from_event_id
        call = self.stub.WatchEvents(req, metadata=self._md)
        try:
            while True:
                msg = await asyncio.wait_for(call.read(), idle_timeout)
                if msg is grpc.aio.EOF:
                    return
                kind = msg.WhichOneof("msg")
                if kind == "event":
                    yield event_record(msg.event)
                elif kind == "events":
                    for e in msg.events.events:
                        yield event_record(e)
                elif kind == "heartbeat":
                    yield Heartbeat(msg.heartbeat.last_event_id,
                                    _ts(msg.heartbeat, "server_time"))
                elif kind == "notice":
                    yield Notice(msg.notice.code, msg.notice.message)
        finally:
            call.cancel()


def _ts(msg, name: str) -> datetime | None:
    if not msg.HasField(name):
        return None
    return getattr(msg, name).ToDatetime(tzinfo=UTC)


def batch_info(s: pb.BatchSummary, source_dir: str = "",
               last_file_finished_at: datetime | None = None) -> BatchInfo:
    return BatchInfo(s.batch_id, s.batch_date, s.batch_number, s.status, s.source,
                     s.total_files, _ts(s, "created_at"), _ts(s, "completed_at"), source_dir,
                     dict(s.verdict_counts), last_file_finished_at)


def verdict_row(v: pb.TradeVerdict) -> VerdictRow:
    return VerdictRow(
        v.batch_id, v.trade_id, v.verdict, v.audio_name, v.reason,
        tuple(FieldRow(f.field, f.booked if f.HasField("booked") else None,
                       f.heard if f.HasField("heard") else None, f.agree, f.note)
              for f in v.fields),
        tuple(Segment(s.start, s.end, s.text) for s in v.evidence))


def call_detail(c: pb.Call) -> CallDetail:
    def order(x: pb.ExtractedTrade) -> str:
        words = [x.side, x.quantity, x.symbol, f"@ {x.price}" if x.price else "",
                 x.order_type, f"(trade {x.trade_id})" if x.trade_id else ""]
        return " ".join(w for w in words if w) or "(nothing stated)"

    return CallDetail(
        c.batch_id, c.audio_name, c.status, c.lang, c.audio_duration, c.failed_stage,
        c.failure_reason,
        tuple(Segment(s.start, s.end, s.text, s.speaker) for s in c.transcript),
        tuple(order(x) for x in c.extracted_trades),
        tuple((a.question, a.answer) for a in c.audit_answers),
        tuple(f"{m.trade_id}: {m.side} {m.quantity} {m.symbol} @ {m.price}"
              for m in c.mapped_trades))


def event_record(e: pb.Event) -> EventRecord:
    return EventRecord(
        id=e.id, batch_id=e.batch_id, timestamp=_ts(e, "timestamp"), stage=e.stage,
        event_type=e.event_type, file_name=e.file_name, gpu_ip=e.gpu_ip, payload=e.payload,
        response=e.response, status=e.status, error_message=e.error_message,
        total_files=e.total_files if e.HasField("total_files") else None,
        processed_files=e.processed_files if e.HasField("processed_files") else None,
        metadata_json=e.metadata_json,
    )


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details() or ''}".strip()
    if isinstance(exc, TimeoutError):
        return "no heartbeat from the daemon"
    return f"{type(exc).__name__}: {exc}"


def explain_link(exc: BaseException, target: str, token_source: str) -> str:
    """A failed call in cofictl's words (cofid.ctl.connect.from_rpc_error)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_rpc_error(exc, target, token_source).message
    return describe_error(exc)


def explain_refusal(exc: grpc.aio.AioRpcError, token_present: bool, token_source: str) -> str:
    return explain_auth(exc.code().name, exc.details() or "", token_present, token_source)


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
