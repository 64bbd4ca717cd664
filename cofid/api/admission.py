"""Admission of streaming RPCs: a cap per kind of stream, and pool threads no stream gets.

grpcio's sync server runs every RPC on a thread of one pool (``grpc.max_workers``), and a
streaming RPC holds its thread for as long as it is open: an upload trickling one message
a second holds one for its whole length. Without caps, enough slow streams take every
thread and a viewer's GetBatch waits in grpc's queue until its deadline. So, counted when
a stream's handler starts on its pool thread and released when it leaves it:

* each kind has its own cap: UploadAudit ``grpc.max_concurrent_uploads``, WatchEvents
  ``grpc.max_event_streams``, every other stream (grpc.health Watch, server reflection,
  which need no token) ``grpc.max_public_streams``;
* all streams together hold at most ``max_workers - reserved`` threads
  (:func:`stream_share`; ``grpc.reserved_workers``, 0: max(4, max_workers // 4)): the
  reserved threads only ever run unary calls (GetBatch, ListCalls, health Check, ...),
  which are short, so those always find a thread.

A stream over a cap is refused at once with RESOURCE_EXHAUSTED naming the cap, before a
message is read (a refusal takes a pool thread for an instant: a reserved one at worst).
Counting on the pool thread rather than where grpc admits the call means a call grpc
itself refuses (``max_concurrent_rpcs``) or never starts was never counted. Unary calls
are not counted. The interceptor goes after authentication: a refused token never counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from cofid.config.model import GrpcConfig

UPLOAD, WATCH, PUBLIC = "upload", "watch", "public"
KIND_OF_METHOD = {"/cofi.v1.Cofi/UploadAudit": UPLOAD, "/cofi.v1.Cofi/WatchEvents": WATCH}

_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def reserved_workers(g: GrpcConfig) -> int:
    return g.reserved_workers or max(4, g.max_workers // 4)


def stream_share(g: GrpcConfig) -> int:
    """How many pool threads streams may hold together (at least one)."""
    return max(1, g.max_workers - reserved_workers(g))


SETTING = {
    UPLOAD: "max_concurrent_uploads",
    WATCH: "max_event_streams",
    PUBLIC: "max_public_streams",
}


def caps(g: GrpcConfig) -> dict[str, int]:
    """Each kind's cap: its setting, and never more than the streams' share."""
    share = stream_share(g)
    return {kind: min(getattr(g, name), share) for kind, name in SETTING.items()}


def refusal(kind: str, g: GrpcConfig) -> str:
    """The message of a stream refused by its kind's cap, naming what set the cap."""
    cap = caps(g)[kind]
    if kind == WATCH:
        return f"too many event subscribers ({cap}); try again later"
    why = (
        f"grpc.{SETTING[kind]}"
        if cap == getattr(g, SETTING[kind])
        else "the streams' share of grpc.max_workers"
    )
    what = "uploads at once" if kind == UPLOAD else "open health/reflection streams"
    return f"too many {what} ({cap}, {why}); try again later"


class StreamAdmission(grpc.ServerInterceptor):
    """Counts open streams per kind (see the module docstring); thread-safe."""

    def __init__(self, g: GrpcConfig) -> None:
        self.g = g
        self.caps = caps(g)
        self.share = stream_share(g)
        self.open = dict.fromkeys(self.caps, 0)
        self._lock = threading.Lock()

    def total(self) -> int:
        return sum(self.open.values())

    def acquire(self, kind: str) -> str | None:
        """None when admitted (release it later), else the refusal message."""
        with self._lock:
            if self.open[kind] >= self.caps[kind]:
                return refusal(kind, self.g)
            if self.total() >= self.share:
                return (
                    f"too many open streams ({self.share}: grpc.max_workers minus the "
                    f"threads reserved for unary calls); try again later"
                )
            self.open[kind] += 1
            return None

    def release(self, kind: str) -> None:
        with self._lock:
            self.open[kind] -= 1

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        return self._counted(handler, KIND_OF_METHOD.get(handler_call_details.method, PUBLIC))

    def _counted(self, handler: grpc.RpcMethodHandler, kind: str) -> grpc.RpcMethodHandler:
        req = "stream" if handler.request_streaming else "unary"
        resp = "stream" if handler.response_streaming else "unary"
        behavior = getattr(handler, f"{req}_{resp}")

        def wrapped(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
            refused = self.acquire(kind)
            if refused is not None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
            hold = _Hold(self, kind)
            try:
                result = behavior(request_or_iterator, context)
            except BaseException:
                hold.release()
                raise
            if not handler.response_streaming:
                hold.release()
                return result
            # A response stream runs while grpc iterates it; one grpc drops before the
            # first item (the client left) is never started, so its end is the callback.
            if not context.add_callback(hold.release_unstarted):
                hold.release()  # the call already ended: no thread will iterate it for long
            return hold.iterate(iter(result))

        return _FACTORIES[f"{req}_{resp}"](
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _Hold:
    """One admitted stream: released exactly once."""

    def __init__(self, admission: StreamAdmission, kind: str) -> None:
        self.admission, self.kind = admission, kind
        self.started = False
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self.admission.release(self.kind)

    def release_unstarted(self) -> None:
        if not self.started:
            self.release()

    def iterate(self, iterator: Iterator[Any]) -> Iterator[Any]:
        self.started = True
        try:
            yield from iterator
        finally:
            self.release()
