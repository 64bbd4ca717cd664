"""One walk over a List* RPC's pages: every List command of cofictl reads through it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cofid.ctl.connect import Connection

PAGE_SIZE = 500


def paged(conn: Connection, method: str, request: Any, items: str, limit: int = 0) -> Iterator[Any]:
    """The `items` of every page of `method`, following next_page_token; at most
    `limit` (0: all). `request` carries the filters; its page fields are set here."""
    n = 0
    while True:
        request.page_size = PAGE_SIZE if limit == 0 else min(PAGE_SIZE, limit - n)
        reply = conn.call(method, request)
        for item in getattr(reply, items):
            yield item
            n += 1
            if limit and n >= limit:
                return
        if not reply.next_page_token:
            return
        request.page_token = reply.next_page_token
