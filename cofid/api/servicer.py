"""The cofi.v1.Cofi servicer: grpcio's handler threads.

A handler validates the message (:mod:`cofid.api.validate`), calls the matching trio
coroutine through :class:`~cofid.api.bridge.TrioBridge` (``trio.from_thread.run`` with
the run's token: the trio loop is never blocked) and translates the result with
:mod:`cofid.api.convert`. Errors are raised as ApiError and become
``context.abort(code, message)`` (:func:`~cofid.api.bridge.rpc`). The two streaming RPCs
live in their own modules: :mod:`cofid.api.uploads` and :mod:`cofid.api.events_stream`.
Roles are checked before a handler runs, by :class:`cofid.api.auth.AuthInterceptor`.
"""

from __future__ import annotations

import os

from cofid.api import convert, queries
from cofid.api.bridge import TrioBridge, invalid, not_found, rpc, rpc_stream
from cofid.api.events_stream import watch_events
from cofid.api.service import Service
from cofid.api.uploads import receive_upload
from cofid.api.validate import (
    calls_filter_key,
    calls_page_token,
    check_batch_directory,
    check_call_statuses,
    check_positive_ids,
    filter_key,
    optional,
    page_token,
    parse_date,
    read_calls_page_token,
    read_page_token,
)
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

DEFAULT_PAGE, MAX_PAGE = 50, 500
DEFAULT_CALLS_PAGE, MAX_CALLS_PAGE = 100, 1000


class CofiServicer(pb_grpc.CofiServicer):
    def __init__(self, service: Service, bridge: TrioBridge) -> None:
        self.s = service
        self.b = bridge
        self.cfg = service.cfg

    @rpc
    def StartBatch(self, request, context):
        d = request.directory
        check_batch_directory(d, self.cfg.watch.roots)
        pid, cmid = optional(request, "process_id"), optional(request, "category_mapping_id")
        check_positive_ids(process_id=pid, category_mapping_id=cmid)
        if not os.path.exists(d):
            raise not_found(f"{d}: no such directory")
        if not os.path.isdir(d):
            raise not_found(f"{d}: not a directory")
        return self.b.run(self.s.start_batch, d, pid, cmid)

    @rpc
    def UploadAudit(self, request_iterator, context):
        return receive_upload(request_iterator, context, self.s, self.b)

    @rpc
    def Reaudit(self, request, context):
        return self.b.run(self.s.reaudit, list(request.audio_names), list(request.stages))

    @rpc
    def GetTask(self, request, context):
        if not request.task_id:
            raise invalid("task_id is empty")
        return self.b.run(self.s.get_task, request.task_id)

    @rpc
    def CancelTask(self, request, context):
        if not request.task_id:
            raise invalid("task_id is empty")
        return self.b.run(self.s.cancel_task, request.task_id)

    @rpc
    def ListBatches(self, request, context):
        df, dt = optional(request, "date_from"), optional(request, "date_to")
        d_from = parse_date(df, "date_from") if df is not None else None
        d_to = parse_date(dt, "date_to") if dt is not None else None
        if d_from and d_to and d_from > d_to:
            raise invalid(f"date_from {df} is after date_to {dt}")
        if request.page_size < 0:
            raise invalid(f"page_size must be ≥ 0, got {request.page_size}")
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        key = filter_key(df, dt, size)
        after = read_page_token(request.page_token, key) if request.page_token else None
        rows, more = self.b.run(queries.list_batches, self.s.app, d_from, d_to, size, after)
        reply = pb.ListBatchesReply(batches=[convert.batch_summary(r) for r in rows])
        if more and rows:
            reply.next_page_token = page_token(rows[-1], key)
        return reply

    @rpc
    def GetBatch(self, request, context):
        if request.batch_id <= 0:
            raise invalid(f"batch_id must be > 0, got {request.batch_id}")
        return self.b.run(queries.get_batch, self.s.app, request.batch_id)

    @rpc
    def GetCall(self, request, context):
        if not request.audio_name:
            raise invalid("audio_name is empty")
        if request.batch_id < 0:
            raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
        return self.b.run(queries.get_call, self.s.app, request.audio_name, request.batch_id)

    @rpc
    def ListCalls(self, request, context):
        if request.batch_id <= 0:
            raise invalid(f"batch_id must be > 0, got {request.batch_id}")
        if request.page_size < 0:
            raise invalid(f"page_size must be ≥ 0, got {request.page_size}")
        size = min(request.page_size or DEFAULT_CALLS_PAGE, MAX_CALLS_PAGE)
        statuses = check_call_statuses(request.statuses)
        key = calls_filter_key(request.batch_id, statuses)
        after = read_calls_page_token(request.page_token, key) if request.page_token else 0
        calls, more = self.b.run(
            queries.list_calls, self.s.app, request.batch_id, statuses, size, after, request.full
        )
        reply = pb.ListCallsReply(calls=calls)
        if more and calls:
            reply.next_page_token = calls_page_token(calls[-1].call_id, key)
        return reply

    @rpc
    def ListGpus(self, request, context):
        return self.b.run_sync(queries.list_gpus, self.s.app)

    @rpc_stream
    def WatchEvents(self, request, context):
        yield from watch_events(request, context, self.b, self.s.events)
