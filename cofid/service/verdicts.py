"""Reading verdicts: a batch's tradeVerdict rows a page at a time (ListTradeVerdicts).

The refusals are ServiceError kinds (cofid.api.servicer maps them to status codes): a
verdict filter with a value that is no verdict is an InvalidRequest, a batch that does
not exist a NotFound.
"""

from __future__ import annotations

from collections.abc import Iterable

from cofid.domain.verdicts import VERDICTS
from cofid.service import errors
from cofid.service.app import App
from cofid.store import verdict_queries as vq


def check_verdicts(values: Iterable[str]) -> list[str]:
    """The verdict filter: known verdict values, sorted, without repeats."""
    values = list(values)
    for value in values:
        if value not in VERDICTS:
            raise errors.InvalidRequest(f"unknown verdict {value!r} (known: {', '.join(VERDICTS)})")
    return sorted(set(values))


async def list_verdicts(
    app: App, batch_id: int, verdicts: list[str], size: int, after: str
) -> tuple[list[vq.Record], bool]:
    """Verdict records of ``batch_id`` with trade id > ``after`` in trade id order, at
    most ``size``,
    and whether more follow. An unknown verdict in the filter is refused first."""
    check_verdicts(verdicts)
    got = await app.db.read(lambda conn: vq.verdicts_page(conn, batch_id, verdicts, size, after))
    if got is None:
        raise errors.NotFound(f"no batch {batch_id}")
    return got
