"""A small HTTP/1.1 server on trio and h11, for simulated GPU hosts and stand-in servers.

One handler coroutine answers every request: it gets a whole `Request` (body read, size
capped) and returns a `Response`, raises `DropConnection` to close the connection without
answering, or never returns (a hung host). While the handler runs the connection is
watched: when the client goes away the handler is cancelled, so a hung request does not
outlive its client. Keep-alive works as HTTP/1.1 says.

`die()` stops listening and drops every open connection; `come_back()` listens again on
the same port. Tests use them to take a host away and bring it back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import h11
import trio

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
_RECEIVE_SIZE = 64 * 1024


class DropConnection(Exception):
    """Raised by a handler: close the connection without sending a response."""


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, FormPart]:
        """The parts of a multipart/form-data body by name; ValueError when it is not one."""
        return parse_multipart(self.body, self.headers.get("content-type", ""))


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response]]


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(obj).encode())


def error_response(status: int, message: str, *, type_: str = "invalid_request_error") -> Response:
    """OpenAI's error shape: {"error": {"message", "type", "code"}}."""
    return json_response({"error": {"message": message, "type": type_, "code": status}}, status)


def parse_multipart(body: bytes, content_type: str) -> dict[str, FormPart]:
    header = Message()
    header["content-type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {content_type!r}")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body is not terminated")
    parts: dict[str, FormPart] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        part_headers = Message()
        for line in head.decode("utf-8").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part_headers[name.strip()] = value.strip()
        part_name = part_headers.get_param("name", header="content-disposition")
        if not isinstance(part_name, str):
            raise ValueError("multipart part without a name")
        filename = part_headers.get_param("filename", header="content-disposition")
        parts[part_name] = FormPart(
            name=part_name,
            data=data,
            filename=filename if isinstance(filename, str) else None,
            content_type=part_headers.get("content-type"),
        )
    return parts


class HttpServer:
    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.open_connections = 0
        self._nursery: trio.Nursery | None = None
        self._listen_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listen_scope is not None

    async def serve(
        self, *, task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled; reports this server once bound (port 0 -> a free port)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._listen)
            task_status.started(self)
            await trio.sleep_forever()

    async def die(self) -> None:
        """Stop listening and drop every open connection; returns once the port is closed."""
        if self._listen_scope is not None:
            self._listen_scope.cancel()
            await self._stopped.wait()

    async def come_back(self) -> None:
        """Listen again on the same port."""
        if self._nursery is None:
            raise RuntimeError("serve() is not running")
        if self._listen_scope is None:
            await self._nursery.start(self._listen)

    async def _listen(
        self,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._stopped = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._listen_scope = scope
                listeners = await trio.open_tcp_listeners(self.port, host=self.host)
                self.port = listeners[0].socket.getsockname()[1]
                await trio.serve_listeners(
                    self._serve_connection, listeners, task_status=task_status
                )
        finally:
            self._listen_scope = None
            self._stopped.set()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        self.open_connections += 1
        try:
            while True:
                request = await self._receive_request(conn, stream)
                if request is None:
                    return
                if isinstance(request, Response):
                    await self._send(conn, stream, request)
                    return
                response = await self._call_handler(request, conn, stream)
                if response is None:
                    return
                await self._send(conn, stream, response)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            self.open_connections -= 1
            await trio.aclose_forcefully(stream)

    async def _receive_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> Request | Response | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return error_response(exc.error_status_hint, str(exc))
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(_RECEIVE_SIZE))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body_bytes:
                    return error_response(413, f"body over {self.max_body_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
                return Request(
                    method=head.method.decode(),
                    target=head.target.decode("latin-1"),
                    headers=headers,
                    body=bytes(body),
                )
            else:  # ConnectionClosed, or PAUSED after a client that will not wait
                return None

    async def _call_handler(
        self, request: Request, conn: h11.Connection, stream: trio.SocketStream
    ) -> Response | None:
        response: Response | None = None
        client_gone = False
        async with trio.open_nursery() as nursery:

            async def watch_client() -> None:
                # An HTTP/1.1 client sends nothing while it waits for the answer, so end of
                # stream here means it gave up: cancel the handler.
                nonlocal client_gone
                try:
                    while data := await stream.receive_some(_RECEIVE_SIZE):
                        conn.receive_data(data)  # pipelined bytes, kept for the next cycle
                except trio.BrokenResourceError:
                    pass
                client_gone = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_client)
            try:
                response = await self.handler(request)
            except DropConnection:
                response = None
            except Exception as exc:
                log.exception("handler failed for %s %s", request.method, request.target)
                response = error_response(500, f"{type(exc).__name__}: {exc}", type_="server_error")
            nursery.cancel_scope.cancel()
        return None if client_gone else response

    async def _send(
        self, conn: h11.Connection, stream: trio.SocketStream, response: Response
    ) -> None:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *response.headers,
        ]
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
        await stream.send_all(data)
