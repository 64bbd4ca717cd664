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

from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc
from tui.model import BatchInfo, EventRecord, GpuInfo, Heartbeat, Notice, StageSnapshot

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

    def watch(self, batch_id: int, from_event_id: int | None, *,
              event_types: tuple[str, ...] = (), idle_timeout: float = 30.0
              ) -> AsyncIterator[StreamItem]: ...


class CofiClient:
    def __init__(self, target: str, token: str | None, ca_file: str | None = None) -> None:
        self.target = target
        self._md = (("authorization", f"Bearer {token}"),) if token else None
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
        info = batch_info(b.summary, b.source_dir)
        return info, [StageSnapshot(s.stage, s.status, s.total, s.done, s.failed, s.skipped,
                                    s.files_per_minute) for s in b.stages]

    async def list_gpus(self) -> list[GpuInfo]:
        reply = await self.stub.ListGpus(pb.ListGpusRequest(), metadata=self._md,
                                         timeout=UNARY_TIMEOUT_S)
        return [GpuInfo(g.name, g.url, g.healthy, g.slots, g.slots_in_use, g.files_assigned,
                        g.files_done, g.latency_ms_p50, g.latency_ms_p95,
                        g.consecutive_failures) for g in reply.gpus]

    async def watch(self, batch_id: int, from_event_id: int | None, *,
                    event_types: tuple[str, ...] = (), idle_timeout: float = 30.0
                    ) -> AsyncIterator[StreamItem]:
        """Yield stream items until the stream ends; raises grpc.aio.AioRpcError or
        TimeoutError (nothing, not even a heartbeat, for idle_timeout seconds)."""
        req = pb.WatchRequest(batch_id=batch_id, event_types=list(event_types))
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


def batch_info(s: pb.BatchSummary, source_dir: str = "") -> BatchInfo:
    return BatchInfo(s.batch_id, s.batch_date, s.batch_number, s.status, s.source,
                     s.total_files, _ts(s, "created_at"), _ts(s, "completed_at"), source_dir)


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


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
