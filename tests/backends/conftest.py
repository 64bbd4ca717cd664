"""What the remote-backend tests share: a recording stand-in server on loopback and an
HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from cofid.simworker.http_server import HttpServer, Request, Response

Reply = Callable[[Request], Awaitable[Response]]


class StandIn:
    """A handler that records every request and answers with `reply(request)`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return await self.reply(request)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
def serve(nursery):  # type: ignore[no-untyped-def]
    """`await serve(reply)` starts a stand-in on loopback: (its recorder, its URL)."""

    async def start(reply: Reply) -> tuple[StandIn, str]:
        stand_in = StandIn(reply)
        server = await nursery.start(HttpServer(stand_in).serve)
        return stand_in, server.url

    return start
