"""WatchEvents on the wire: each event serialized once for every subscriber.

grpc serializes every message a stream yields, once per stream: with S subscribers an
event was converted and serialized S times, in S handler threads. Here an event's Event
message is serialized once (cached on the Event the bus hands every subscriber) and a
stream's WatchMessage is put together from those bytes: protobuf's wire format of a
message is the concatenation of its fields, a submessage field being its tag, its length
and its bytes, so

    WatchMessage{event: E}                = 0x0a len(E) E
    WatchMessage{events: EventBatch{E…}}  = 0x22 len(B) B,  B = (0x0a len(E) E)…

The WatchEvents handler yields these bytes (and WatchMessage objects for heartbeats and
notices); :class:`WireInterceptor` gives the method a serializer that passes bytes
through. Clients decode WatchMessage as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc

from cofid.api import convert
from cofid.domain.events import Event
from protos.cofi.v1 import cofi_pb2 as pb

WATCH_METHOD = "/cofi.v1.Cofi/WatchEvents"
# A batched message stays well under the clients' default 4 MiB receive limit.
BATCH_BYTES = 1 << 20
_EVENT_TAG = b"\x0a"  # field 1, length-delimited: WatchMessage.event, EventBatch.events
_BATCH_TAG = b"\x22"  # field 4, length-delimited: WatchMessage.events


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(e: Event) -> bytes:
    """`0x0a len E` for the event, built once per event (the bus shares one Event object
    among its subscribers; two threads building it at once both get equal bytes)."""
    b = e.extra.get("watch_field")
    if b is None:
        raw = convert.event(e).SerializeToString()
        b = _EVENT_TAG + _varint(len(raw)) + raw
        e.extra["watch_field"] = b
    assert isinstance(b, bytes)
    return b


def single(e: Event) -> bytes:
    """WatchMessage{event: e}, serialized."""
    return _field(e)


def batches(events: list[Event], limit: int = BATCH_BYTES) -> Iterator[bytes]:
    """WatchMessage{events: …} messages holding `events` in order, each under `limit`
    bytes (an event larger than that goes alone)."""
    fields = [_field(e) for e in events]
    total = sum(map(len, fields))
    if total <= limit:  # the usual case: one message
        if fields:
            yield _batch(fields, total)
        return
    parts: list[bytes] = []
    size = 0
    for f in fields:
        if parts and size + len(f) > limit:
            yield _batch(parts, size)
            parts, size = [], 0
        parts.append(f)
        size += len(f)
    if parts:
        yield _batch(parts, size)


def _batch(parts: list[bytes], size: int) -> bytes:
    return _BATCH_TAG + _varint(size) + b"".join(parts)


def serialize(message: Any) -> bytes:
    """WatchEvents' response serializer: prebuilt bytes as they are, messages serialized."""
    if isinstance(message, bytes):
        return message
    out: bytes = pb.WatchMessage.SerializeToString(message)
    return out


class WireInterceptor(grpc.ServerInterceptor):
    """Gives WatchEvents the pass-through serializer (innermost interceptor: the others
    keep the serializer of the handler they wrap)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method != WATCH_METHOD or handler.unary_stream is None:
            return handler
        return grpc.unary_stream_rpc_method_handler(
            handler.unary_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=serialize,
        )
