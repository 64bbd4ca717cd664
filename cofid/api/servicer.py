"""The cofi.v1.Cofi servicer: grpcio's handler threads.

A handler validates the message (:mod:`cofid.api.validate`), calls the matching use case
of :class:`cofid.service.core.Service` (or a read query) through
:class:`~cofid.api.bridge.TrioBridge` (``trio.from_thread.run`` with the run's token: the
trio loop is never blocked) and translates the record it returns with
:mod:`cofid.api.convert`. A :class:`~cofid.service.errors.ServiceError` becomes the
status code of its kind here, in :data:`STATUS_OF_KIND` — the one place the
application's refusals meet gRPC — and then ``context.abort(code, message)``
(:func:`~cofid.api.bridge.rpc`). The two streaming RPCs live in their own modules:
:mod:`cofid.api.uploads` and :mod:`cofid.api.events_stream`. Roles are checked before a
handler runs, by :class:`cofid.api.auth.AuthInterceptor`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from cofid.api import convert, queries, tasks_api
from cofid.api import verdicts as verdicts_api
from cofid.api.bridge import ApiError, TrioBridge, invalid, not_found, rpc, rpc_stream
from cofid.api.events_stream import Subscriptions, watch_events
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
from cofid.service import errors, intake
from cofid.service.core import Service
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

DEFAULT_PAGE, MAX_PAGE = 50, 500
DEFAULT_CALLS_PAGE, MAX_CALLS_PAGE = 100, 1000

T = TypeVar("T")

STATUS_OF_KIND: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.Precondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Exhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
assert set(STATUS_OF_KIND) == set(errors.KINDS), "every kind has its status code"


def api_error(e: errors.ServiceError) -> ApiError:
    """A refusal of the application as the client sees it: its kind's code, its message."""
    return ApiError(STATUS_OF_KIND[errors.kind_of(e)], e.message)


class ServiceCalls:
    """Calls into the service's trio side, with its refusals mapped to status codes."""

    def __init__(self, bridge: TrioBridge) -> None:
        self.bridge = bridge

    def __call__(self, afn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self.bridge.run(afn, *args)
        except errors.ServiceError as e:
            raise api_error(e) from None


class CofiServicer(pb_grpc.CofiServicer):
    def __init__(self, service: Service, bridge: TrioBridge) -> None:
        if not isinstance(service.events, Subscriptions):
            raise TypeError("the service streams no events: build it with "
                            "events=cofid.api.server.event_streams(app)")
        self.s = service
        self.b = bridge
        self.call = ServiceCalls(bridge)
        self.events: Subscriptions = service.events
        self.cfg = service.cfg

    @rpc
    def StartBatch(self, request: pb.StartBatchRequest,
                   context: grpc.ServicerContext) -> pb.TaskRef:
        d = request.directory
        check_batch_directory(d)
        # Before the existence checks: nothing is said about paths outside the roots.
        outside = intake.directory_problem(d, self.cfg.watch.roots)
        if outside is not None:
            raise invalid(outside)
        pid, cmid = optional(request, "process_id"), optional(request, "category_mapping_id")
        check_positive_ids(process_id=pid, category_mapping_id=cmid)
        if not os.path.exists(d):
            raise not_found(f"{d}: no such directory")
        if not os.path.isdir(d):
            raise not_found(f"{d}: not a directory")
        return convert.task_ref(self.call(self.s.start_batch, d, pid, cmid))

    @rpc
    def UploadAudit(self, request_iterator: Iterator[pb.UploadRequest],
                    context: grpc.ServicerContext) -> pb.UploadReply:
        return receive_upload(request_iterator, context, self.s, self.call)

    @rpc
    def Reaudit(self, request: pb.ReauditRequest,
                context: grpc.ServicerContext) -> pb.ReauditReply:
        return convert.reaudit_reply(
            self.call(self.s.reaudit, list(request.audio_names), list(request.stages)))

    @rpc
    def GetTask(self, request: pb.GetTaskRequest, context: grpc.ServicerContext) -> pb.Task:
        if not request.task_id:
            raise invalid("task_id is empty")
        return convert.task_view(self.call(self.s.get_task, request.task_id))

    @rpc
    def CancelTask(self, request: pb.CancelTaskRequest,
                   context: grpc.ServicerContext) -> pb.Task:
        if not request.task_id:
            raise invalid("task_id is empty")
        return convert.task_view(self.call(self.s.cancel_task, request.task_id))

    @rpc
    def ListTasks(self, request: pb.ListTasksRequest,
                  context: grpc.ServicerContext) -> pb.ListTasksReply:
        return tasks_api.list_tasks(request, self.call, self.s)

    @rpc
    def ResumeTask(self, request: pb.ResumeTaskRequest,
                   context: grpc.ServicerContext) -> pb.TaskRef:
        return tasks_api.resume_task(request, self.call, self.s)

    @rpc
    def ListBatches(self, request: pb.ListBatchesRequest,
                    context: grpc.ServicerContext) -> pb.ListBatchesReply:
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
    def GetBatch(self, request: pb.GetBatchRequest, context: grpc.ServicerContext) -> pb.Batch:
        if request.batch_id <= 0:
            raise invalid(f"batch_id must be > 0, got {request.batch_id}")
        result: pb.Batch = self.b.run(queries.get_batch, self.s.app, request.batch_id)
        return result

    @rpc
    def GetCall(self, request: pb.GetCallRequest, context: grpc.ServicerContext) -> pb.Call:
        if not request.audio_name:
            raise invalid("audio_name is empty")
        if request.batch_id < 0:
            raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
        result: pb.Call = self.b.run(queries.get_call, self.s.app, request.audio_name,
                                     request.batch_id)
        return result

    @rpc
    def ListCalls(self, request: pb.ListCallsRequest,
                  context: grpc.ServicerContext) -> pb.ListCallsReply:
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
    def ListGpus(self, request: pb.ListGpusRequest,
                 context: grpc.ServicerContext) -> pb.ListGpusReply:
        result: pb.ListGpusReply = self.b.run_sync(queries.list_gpus, self.s.app)
        return result

    @rpc_stream
    def WatchEvents(self, request: pb.WatchRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.WatchMessage | bytes]:
        yield from watch_events(request, context, self.b, self.events)

    @rpc
    def ListTradeVerdicts(self, request: pb.ListTradeVerdictsRequest,
                          context: grpc.ServicerContext) -> pb.ListTradeVerdictsReply:
        return verdicts_api.list_trade_verdicts(request, self.call, self.s.app)

    @rpc_stream
    def GetEvidence(self, request: pb.GetEvidenceRequest,
                    context: grpc.ServicerContext) -> Iterator[pb.EvidenceChunk]:
        yield from verdicts_api.send_evidence(request, context, self.call, self.s.app)
