"""Calling into trio from grpcio's handler threads.

grpcio has no trio support: its thread-pool server runs each handler in a pool thread.
A handler reaches the daemon's trio loop only through :class:`TrioBridge`, which wraps
``trio.from_thread`` with the run's TrioToken, so the loop is never blocked by a handler
and a handler never touches trio objects directly. Errors meant for the client are raised
as :class:`ApiError` (a status code and a message) on either side and turned into
``context.abort`` by :func:`rpc`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import trio

log = logging.getLogger("cofid.api")


class ApiError(Exception):
    """An error for the client: a gRPC status code and a precise message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(msg: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, msg)


def not_found(msg: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, msg)


def exhausted(msg: str) -> ApiError:
    return ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, msg)


UNAVAILABLE_MSG = "cofid is shutting down; retry later"


class TrioBridge:
    """Run trio code from a grpc thread: ``bridge.run(afn, *args)``."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.closing = False

    def run(self, afn: Callable[..., Any], *args: Any) -> Any:
        if self.closing:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MSG)
        try:
            return trio.from_thread.run(afn, *args, trio_token=self.token)
        except (trio.RunFinishedError, trio.Cancelled):
            raise ApiError(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MSG) from None

    def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self.token)
        except (trio.RunFinishedError, trio.Cancelled):
            raise ApiError(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MSG) from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Fire and forget (from a grpc callback); ignored once trio has finished."""
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(fn, *args)


def rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a unary / client-streaming handler: ApiError → context.abort."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as e:  # noqa: BLE001
            _abort(context, e, method.__name__)

    return wrapper


def _abort(context: grpc.ServicerContext, e: Exception, name: str) -> None:
    """ApiError → its status and message; anything else is a bug: logged, INTERNAL."""
    if isinstance(e, ApiError):
        context.abort(e.code, e.message)
    if context.code() is not None:  # already aborted
        raise e
    log.exception("gRPC %s failed", name)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name}")


def rpc_stream(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a server-streaming handler (a generator): ApiError → context.abort."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except Exception as e:  # noqa: BLE001
            _abort(context, e, method.__name__)

    return wrapper
