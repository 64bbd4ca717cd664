"""File events for the batch watcher: watchfiles' `awatch` over the roots, kept alive.

watchfiles raises (a RuntimeError inside an ExceptionGroup) when an event names a path it
cannot decode — a file name that is not UTF-8, which any producer can drop into a root —
and its watcher is gone after that. Nothing a producer drops may stop the daemon, so a
failed watch is logged (the message escaped: it holds the name), the watcher is poked for
a full scan (the event that failed may have been the one that mattered) and the watch
starts again after a back-off; the periodic rescan covers the gap. Only an unavailable
watchfiles (not installed, no inotify) ends this for good: rescans alone then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from cofid.service.intake import shown

log = logging.getLogger("cofid.watcher")

FIRST_BACKOFF_S = 0.5


async def poke_on_changes(
    roots: Sequence[Path],
    poke: Callable[[], None],
    stop: trio.Event,
    *,
    debounce_ms: int,
    max_backoff_s: float,
) -> None:
    """Call poke() after each batch of changes under `roots` until `stop` is set."""
    if not roots:
        return
    try:
        import watchfiles
    except ImportError as e:
        log.warning(
            "file events unavailable (%s); rescanning every %.1f s instead", e, max_backoff_s
        )
        return
    # It logs every batch of changes at INFO; a 10,000-file copy would flood the log.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    backoff = FIRST_BACKOFF_S
    while not stop.is_set():
        try:
            async for _changes in watchfiles.awatch(
                *roots,
                watch_filter=None,
                debounce=debounce_ms,
                stop_event=stop,
                recursive=True,
                ignore_permission_denied=True,
            ):
                poke()
                backoff = FIRST_BACKOFF_S
            return
        except OSError as e:  # no inotify (or too few watches): rescans only
            log.warning(
                "file events unavailable (%s); rescanning every %.1f s instead",
                shown(str(e)),
                max_backoff_s,
            )
            return
        except Exception as e:  # noqa: BLE001 - any failure of the watch, never the daemon's
            log.warning(
                "file events stopped (%s); scanning now and watching again in %.1f s",
                shown(_first_cause(e), 300),
                backoff,
            )
            poke()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, max(max_backoff_s, FIRST_BACKOFF_S))


def _first_cause(e: BaseException) -> str:
    """The innermost first exception of a (nested) exception group, as text."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"
