"""Batch directory watcher: directories dropped into the watched roots become batches.

The rules, in order:

1. A candidate is a direct child directory of a watched root whose name does not start
   with "." (hidden directories are staging areas: copy into ".incoming-x", then rename).
   Only plain files directly inside it count; the batch format is flat.
2. A file is *being copied* while its name looks like a transfer in progress (rsync's
   ".name.XXXXXX", *.part, *.partial, *.tmp, *.filepart, *.crdownload, *.!sync).
   A directory holding one is never ready, whatever else is true.
3. Marker rule: the directory is ready when the marker file (watch.marker, ".ready") exists
   and no other file changed in the last MARKER_SETTLE_S. The sender writes the marker
   last; the settle time covers a marker that was copied along with the directory ahead of
   the other files (rsync sorts ".ready" first).
4. Quiet rule (only when watch.quiet_seconds > 0): the directory is ready when it holds at
   least one non-hidden file and nothing in it changed for quiet_seconds.
5. "Changed" is what the watcher saw: the later of a file's mtime and the moment the
   watcher first saw the file's current (size, mtime). A copy that keeps the original
   mtimes (cp -p, rsync -a) still counts as changing while it grows, a future mtime (clock
   skew on a network share) cannot hold a batch back, and after a daemon restart a
   quiet-rule directory waits quiet_seconds once more.
6. Identity: the directory's resolved path is the batch. batchDate is the day the batch is
   started (not a date in the directory name) and batchNumber is the next number of that
   day; the path is remembered in batchStatus.sourceKey (cofid.service.batches,
   cofid.store.batches.by_source), so a restart, a second event or a second drop of the same path never
   starts it twice (an unfinished one is resumed by `cofid serve` at start-up). A new batch
   needs a new directory name. Files added after a batch started are not picked up.
7. Each ready directory that is_known() does not know is handed to start_batch() once and
   remembered in memory. start_batch must return promptly (create the batch, hand the run
   to a nursery); the watcher calls it for one directory at a time.
8. A directory that start_batch refuses (BatchInputError: no audio, a bad CSV header, no
   question set — through the service, any of its refusals but a Conflict; OSError:
   unreadable) is reported to on_error() once and left alone until
   its contents change — a different set of (name, size, mtime), so adding the missing
   files or `touch DIR/.ready` tries it again. So is an entry that cofid.service.intake
   refuses (a name not UTF-8 or with a control character, a symlink leaving the root),
   before the database hears of it. The daemon's on_error writes an error event (batch
   0, stage "watcher"). Any other exception ends the watcher (an unreachable database
   makes the daemon exit; systemd restarts it).
9. Start-up scans every root (directories dropped while the daemon was down), then file
   events (watchfiles) and a rescan every scan_interval_s drive further scans; events
   alone miss files in just-created directories, and the quiet and settle times need a
   re-check when they run out, which the watcher schedules itself. A failed watch is
   restarted (cofid.inputs.file_events).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from cofid.config.model import WatchConfig
from cofid.inputs.file_events import poke_on_changes
from cofid.service import batches, intake
from cofid.service.errors import BatchInputError, Conflict, InvalidRequest, NotFound, Precondition
from cofid.store import batches as batch_rows

if TYPE_CHECKING:
    from cofid.engine.writer import Writer
    from cofid.service.app import App
    from cofid.service.core import Service

log = logging.getLogger("cofid.watcher")

Entry = tuple[str, float, int]  # (name, mtime or last observed change, size)
StartBatch = Callable[[Path], Awaitable[None]]
IsKnown = Callable[[Path], Awaitable[bool]]
OnError = Callable[[Path, str], Awaitable[None] | None]

MARKER_SETTLE_S = 1.0
MIN_RESCAN_S = 0.2  # between two event-driven scans
_RSYNC_TEMP = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".filepart", ".crdownload", ".!sync")


# ---- the pure rule -------------------------------------------------------------------------


def being_copied(name: str, *, marker: str) -> bool:
    """Rule 2: a file name that says a transfer is still writing it."""
    if name == marker:
        return False
    return bool(_RSYNC_TEMP.match(name)) or name.lower().endswith(PARTIAL_SUFFIXES)


def directory_ready(entries: list[tuple[str, float, int]], *, marker: str, quiet_seconds: float,
                    now: float, settle_seconds: float = MARKER_SETTLE_S) -> bool:
    """Rules 2–4 over a directory's files: (name, last change, size) each."""
    data = [e for e in entries if e[0] != marker]
    if any(being_copied(name, marker=marker) for name, _m, _s in data):
        return False
    last_change = max((m for _n, m, _s in data), default=None)
    quiet_for = float("inf") if last_change is None else now - last_change
    if len(data) != len(entries):  # the marker is there
        return quiet_for >= settle_seconds
    if quiet_seconds > 0 and any(not name.startswith(".") for name, _m, _s in data):
        return quiet_for >= quiet_seconds
    return False


def recheck_at(entries: list[tuple[str, float, int]], *, marker: str, quiet_seconds: float,
               settle_seconds: float = MARKER_SETTLE_S) -> float | None:
    """When a directory that is not ready yet may become ready with no further change
    (its settle or quiet time runs out), or None when only a change can make it ready."""
    data = [e for e in entries if e[0] != marker]
    if not data or any(being_copied(name, marker=marker) for name, _m, _s in data):
        return None
    last_change = max(m for _n, m, _s in data)
    if len(data) != len(entries):
        return last_change + settle_seconds
    if quiet_seconds > 0:
        return last_change + quiet_seconds
    return None


# ---- the filesystem side ------------------------------------------------------------------


def _child_dirs(root: Path) -> list[str]:
    with os.scandir(root) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())


def _files(directory: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the plain files directly in `directory`."""
    out = []
    with os.scandir(directory) as it:
        for e in it:
            try:
                if e.is_file():
                    st = e.stat()
                    out.append((e.name, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:  # removed while listing
                continue
    return out


class BatchWatcher:
    """Rules 1–9 above over `roots`; run() until cancelled (prompt, even mid-event-wait)."""

    def __init__(
        self,
        roots: Sequence[Path | str],
        *,
        marker: str = ".ready",
        quiet_seconds: float = 0.0,
        scan_interval_s: float = 10.0,
        start_batch: StartBatch,
        is_known: IsKnown,
        on_error: OnError,
        rejects: tuple[type[BaseException], ...] = (BatchInputError, OSError),
        settle_seconds: float = MARKER_SETTLE_S,
        debounce_ms: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self.marker = marker
        self.quiet_seconds = quiet_seconds
        self.scan_interval_s = scan_interval_s
        self.settle_seconds = settle_seconds
        self.debounce_ms = debounce_ms
        self._start_batch = start_batch
        self._is_known = is_known
        self._on_error = on_error
        self._rejects = rejects
        self._clock = clock
        # Directories started or known (never started again), refused ones with the
        # signature they were refused at, and those seen but not yet asked about.
        self.done: set[Path] = set()
        self.failed: dict[Path, frozenset[Any]] = {}
        self._asked: set[Path] = set()
        self._seen: dict[Path, dict[str, tuple[int, int, float]]] = {}
        self._due: dict[Path, float] = {}
        self._missing_roots: set[Path] = set()
        self._poke = trio.Event()
        self.scans = 0

    @classmethod
    def from_config(cls, watch: WatchConfig, *, start_batch: StartBatch, is_known: IsKnown,
                    on_error: OnError, **kwargs: Any) -> BatchWatcher:
        """From a cofid.config.WatchConfig."""
        return cls(list(watch.roots), marker=watch.marker, quiet_seconds=watch.quiet_seconds,
                   scan_interval_s=watch.scan_interval_s, start_batch=start_batch,
                   is_known=is_known, on_error=on_error, **kwargs)

    # ---- running ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Scan at start-up, then on file events, on due re-checks and every
        scan_interval_s. `started` comes before the first scan, so a slow start_batch
        never holds up the caller."""
        async with trio.open_nursery() as nursery:
            stop = trio.Event()  # set as soon as we are cancelled: awatch's thread stops
            nursery.start_soon(self._set_when_cancelled, stop)
            nursery.start_soon(self._events, stop)
            task_status.started()
            await self._loop()

    async def _loop(self) -> None:
        next_full = trio.current_time()
        while True:
            await self.scan()
            now_t = trio.current_time()
            if now_t >= next_full:
                next_full = now_t + self.scan_interval_s
            wake = next_full
            if self._due:
                wall_to_trio = trio.current_time() - self._clock()
                wake = min(wake, min(self._due.values()) + wall_to_trio + 0.05)
            with trio.move_on_at(wake):
                await self._poke.wait()
            self._poke = trio.Event()
            await trio.sleep(MIN_RESCAN_S if trio.current_time() < wake else 0)

    @staticmethod
    async def _set_when_cancelled(stop: trio.Event) -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async def _events(self, stop: trio.Event) -> None:
        await poke_on_changes([r for r in self.roots if r.is_dir()], lambda: self._poke.set(),
                              stop, debounce_ms=self.debounce_ms,
                              max_backoff_s=self.scan_interval_s)

    # ---- scanning -----------------------------------------------------------------------

    async def scan(self) -> None:
        """One pass over every root (rules 1–8)."""
        self.scans += 1
        for root in self.roots:
            try:
                names = await trio.to_thread.run_sync(_child_dirs, root)
            except OSError as e:
                if root not in self._missing_roots:
                    self._missing_roots.add(root)
                    await self._report(root, f"{root}: cannot watch this batch root "
                                             f"({e.strerror or e})")
                continue
            self._missing_roots.discard(root)
            present = {root / n for n in names}
            for d in [d for d in self._seen if d.parent == root and d not in present]:
                self._forget(d)
            for d in sorted(present):
                problem = await trio.to_thread.run_sync(intake.root_entry_problem, root, d.name)
                if problem is not None:
                    sig = frozenset[Any]({("<refused>", problem)})
                    if self.failed.get(d) != sig:
                        await self._reject(d, sig, f"{intake.shown(str(d))}: {problem}")
                    continue
                await self._evaluate(d)

    def _forget(self, d: Path) -> None:
        self._seen.pop(d, None)
        self._due.pop(d, None)
        self._asked.discard(d)

    async def _evaluate(self, d: Path) -> None:
        if d in self.done:
            return
        if d not in self._asked and d not in self.failed:
            # First sight: a directory that already is a batch is never listed again.
            if await self._is_known(d):
                self._mark_done(d)
                return
            self._asked.add(d)
        try:
            listing = await trio.to_thread.run_sync(_files, d)
        except FileNotFoundError:
            self._forget(d)
            return
        except OSError as e:
            sig: frozenset[Any] = frozenset({("<unreadable>", e.errno)})
            if self.failed.get(d) != sig:
                await self._reject(d, sig, f"{d}: cannot read the directory "
                                           f"({e.strerror or e})")
            return
        now = self._clock()
        entries = self._observe(d, listing, now)
        sig = frozenset[Any](listing)
        if d in self.failed:
            if self.failed[d] == sig:
                return
            del self.failed[d]  # rule 8: its contents changed, so try it again
        marker, quiet, settle = self.marker, self.quiet_seconds, self.settle_seconds
        if not directory_ready(entries, now=now, marker=marker, quiet_seconds=quiet,
                               settle_seconds=settle):
            due = recheck_at(entries, marker=marker, quiet_seconds=quiet, settle_seconds=settle)
            if due is None:
                self._due.pop(d, None)
            else:
                self._due[d] = due
            return
        self._due.pop(d, None)
        if await self._is_known(d):
            self._mark_done(d)
            return
        try:
            await self._start_batch(d)
        except self._rejects as e:
            await self._reject(d, sig, str(e))
            return
        log.info("batch directory %s started", d)
        self._mark_done(d)

    def _observe(self, d: Path, listing: Iterable[tuple[str, int, int]],
                 now: float) -> list[Entry]:
        """Rule 5: each file's last change as the watcher saw it."""
        before = self._seen.get(d, {})
        after: dict[str, tuple[int, int, float]] = {}
        entries: list[Entry] = []
        for name, size, mtime_ns in listing:
            prev = before.get(name)
            first_seen = prev[2] if prev and prev[:2] == (size, mtime_ns) else now
            after[name] = (size, mtime_ns, first_seen)
            entries.append((name, max(first_seen, min(mtime_ns / 1e9, now)), size))
        self._seen[d] = after
        return entries

    def _mark_done(self, d: Path) -> None:
        self.done.add(d)
        self._forget(d)

    async def _reject(self, d: Path, sig: frozenset[Any], message: str) -> None:
        self.failed[d] = sig
        self._due.pop(d, None)
        log.warning("batch directory %s not started: %s", intake.shown(str(d), 400), message)
        await self._report(d, message)

    async def _report(self, d: Path, message: str) -> None:
        reported = self._on_error(d, message)
        if inspect.isawaitable(reported):
            await reported


# ---- wiring --------------------------------------------------------------------------------


def error_events(writer: Writer) -> OnError:
    """The daemon's on_error: an error event (batch 0, stage "watcher") for each refusal,
    through the writer (batchExecutionLog, WatchEvents)."""
    return lambda d, message: writer.post([], [intake.refused_directory_event(d, message)])


def watcher_for_app(app: App, *, spawn: Callable[..., None] | None = None,
                    on_error: OnError | None = None) -> BatchWatcher:
    """A watcher over app.cfg.watch for a bare App (no tasks): the batch use case's
    prepare_batch, then run_batch handed to `spawn` (default: the App's nursery)."""
    start_soon = spawn or app.nursery.start_soon

    async def start_batch(d: Path) -> None:
        batch_id = await batches.prepare_batch(app, d)
        start_soon(batches.run_batch, app, batch_id)

    async def is_known(d: Path) -> bool:
        key = os.path.realpath(d)
        return await app.db.read(lambda c: batch_rows.by_source(c, key)) is not None

    return BatchWatcher.from_config(app.cfg.watch, start_batch=start_batch, is_known=is_known,
                                    on_error=on_error or error_events(app.writer))


def watcher_for_service(service: Service, *, on_error: OnError | None = None) -> BatchWatcher:
    """A watcher over service.cfg.watch that starts batches with the StartBatch use case
    (a task record, resume rules, the shutdown drain): cofid.service.batches.start_batch.

    A Conflict (queued, running or completed) counts as known; any other refusal of the
    service (InvalidRequest, NotFound, Precondition: a BatchInputError, an unknown
    question set) is the directory's fault (rule 8); anything else propagates. Cancel the
    watcher before the service starts closing.
    """

    async def start_batch(d: Path) -> None:
        try:
            await service.start_batch(str(d), None, None)
        except Conflict:
            return

    async def is_known(d: Path) -> bool:
        key = os.path.realpath(d)
        if key in service.starting_dirs:
            return True
        return await service.app.db.read(lambda c: batch_rows.by_source(c, key)) is not None

    return BatchWatcher.from_config(service.cfg.watch, start_batch=start_batch,
                                    is_known=is_known,
                                    on_error=on_error or error_events(service.app.writer),
                                    rejects=(InvalidRequest, NotFound, Precondition, OSError))
