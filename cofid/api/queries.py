"""The read-only RPCs on the trio side: ListBatches, GetBatch, GetCall, ListCalls, ListGpus.

Each reads the store in one worker-thread call (``app.db.read`` of a function of
:mod:`cofid.store.queries`, which returns field-named records) and, for a batch that is
running, overlays the live counters of its PlanRun; the result is a cofi.v1 message (or
records / messages plus a "more" flag for paging). Nothing here writes.

ListCalls reads a page with a fixed number of queries whatever its size (see
:func:`cofid.store.queries.calls_page`); converting the records to messages, and cutting
the page at MAX_PAGE_BYTES, happens in the same worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import Protocol

from cofid.api import convert
from cofid.api.bridge import not_found
from cofid.config import Config
from cofid.domain.model import PIPELINE_ORDER
from cofid.domain.pipeline import DONE_FLAG_FIELD, FLAG_STATUS_FIELD
from cofid.engine.gpus import GpuPool
from cofid.engine.plan_run import PlanRun
from cofid.plans import batch as bp
from cofid.store import queries as sq
from cofid.store import verdict_queries as vq
from cofid.store.db import Connection, Database
from cofid.store.stage_activity import StageActivity, batch_activity
from protos.cofi.v1 import cofi_pb2 as pb


class AppLike(Protocol):
    """What the read RPCs use of the daemon's App: its store, running plans, config and
    GPU pool (structural, so this module names no class of the layers above it)."""

    @property
    def db(self) -> Database: ...

    @property
    def runs(self) -> Mapping[int, PlanRun]: ...

    @property
    def cfg(self) -> Config: ...

    @property
    def pool(self) -> GpuPool: ...


async def list_batches(app: AppLike, date_from: date | None, date_to: date | None,
                       size: int, after: tuple[date, int] | None
                       ) -> tuple[list[sq.Record], bool]:
    """Newest first; at most ``size`` batch records after the (batch date, batch number)
    ``after``, and whether more follow; each record with its ``verdict_counts``."""

    def q(conn: Connection) -> tuple[list[sq.Record], bool]:
        rows, more = sq.list_batches(conn, date_from, date_to, size, after)
        counts = vq.counts_by_batch(conn, [r["id"] for r in rows])
        return [{**r, "verdict_counts": counts.get(r["id"], {})} for r in rows], more

    return await app.db.read(q)


async def get_batch(app: AppLike, batch_id: int) -> pb.Batch:
    def q(conn: Connection) -> tuple[sq.BatchCounts, dict[str, StageActivity]] | None:
        got = sq.batch_counts(conn, batch_id)
        if got is None:
            return None
        got.batch["verdict_counts"] = vq.counts_by_batch(conn, [batch_id]).get(batch_id, {})
        return got, batch_activity(conn, batch_id)

    read: tuple[sq.BatchCounts, dict[str, StageActivity]] | None = await app.db.read(q)
    if read is None:
        raise not_found(f"no batch {batch_id}")
    got, activity = read
    b = got.batch
    enabled = set(bp.enabled_stages(b["pipeline"] or {}))
    total = int(b["total_files"])
    run = app.runs.get(batch_id)
    now = time.monotonic()
    msg = pb.Batch(summary=convert.batch_summary(b), process_id=b["process_id"],
                   category_mapping_id=b["category_mapping_id"],
                   source_dir=(b["source_dir"] or "") if b["source"] == "batch" else "")
    for stage in PIPELINE_ORDER:
        if stage not in enabled:
            msg.stages.append(pb.StageState(stage=stage.value, status="Complete", disabled=True))
            continue
        if stage in FLAG_STATUS_FIELD:
            status = "Complete" if got.stage_status[stage] else "Pending"
        else:
            status = str(got.stage_status[stage])
        st = pb.StageState(stage=stage.value, status=status, total=total)
        act = activity.get(stage.value)
        if act is not None:
            st.retries = act.retries
            st.measured_files_per_minute = act.files_per_minute()
        if run is not None and stage in run.counters:
            cnt = run.counters[stage]
            st.status = str(cnt.status) if status != "Complete" else status
            if stage in DONE_FLAG_FIELD:
                # The files' own state, not this run's counters: a restarted run counts
                # the files done before it as skipped (cofid.engine.run), which made
                # every client's numbers jump. Skipped: what this run's rule left alone.
                st.done = got.done[stage]
                st.failed = got.failed.get(stage.value, 0)
                st.skipped = cnt.gated
            else:
                st.done, st.failed, st.skipped = cnt.done, cnt.failed, cnt.skipped
            st.files_per_minute = cnt.rate_per_minute(now) if cnt.finished_at is None else 0.0
        elif stage in DONE_FLAG_FIELD:
            st.done = got.done[stage]
            st.failed = got.failed.get(stage.value, 0)
            if status == "Complete":
                st.skipped = max(0, total - st.done - st.failed)
        elif status == "Complete":
            st.done = total
        msg.stages.append(st)
    for k, v in got.call_statuses.items():
        msg.call_status_counts[k] = v
    finished = [a.last_success_at for a in activity.values() if a.last_success_at is not None]
    if finished:
        msg.last_file_finished_at.CopyFrom(convert.ts(max(finished)))
    return msg


def _call_message(r: sq.CallRecords) -> pb.Call:
    return convert.call(r.call, fd=r.file, transcript=r.transcript,
                        conversations=r.conversations, mapped=r.mapped, answers=r.answers)


async def get_call(app: AppLike, audio_name: str, batch_id: int) -> pb.Call:
    """The call of that name in ``batch_id`` (0: the newest batch holding it)."""
    got: sq.CallRecords | None = await app.db.read(
        lambda conn: sq.find_call(conn, audio_name, batch_id))
    if got is None:
        where = f" in batch {batch_id}" if batch_id else ""
        raise not_found(f"no call {audio_name!r}{where}")
    return _call_message(got)


MAX_PAGE_BYTES = 3 * 1024 * 1024  # a ListCalls reply stays under gRPC's 4 MiB default


async def list_calls(app: AppLike, batch_id: int, statuses: list[str], size: int, after: int,
                     full: bool) -> tuple[list[pb.Call], bool]:
    """Calls of ``batch_id`` with id > ``after`` in id order: at most ``size``, fewer when
    the page reaches MAX_PAGE_BYTES (never none while one is left), and a "more" flag."""

    def q(conn: Connection) -> tuple[list[pb.Call], bool] | None:
        page = sq.calls_page(conn, batch_id, statuses, size, after, full)
        if page is None:
            return None
        records, more = page
        out: list[pb.Call] = []
        used = 0
        for r in records:
            msg = _call_message(r)
            used += msg.ByteSize() + 8  # + the field's tag and length
            if out and used > MAX_PAGE_BYTES:
                return out, True
            out.append(msg)
        return out, more

    got = await app.db.read(q)
    if got is None:
        raise not_found(f"no batch {batch_id}")
    return got


def list_gpus(app: AppLike) -> pb.ListGpusReply:
    """Synchronous: reads the GPU pool's in-memory state on the trio thread."""
    urls = {g.name: g.url for g in app.cfg.gpus}
    return pb.ListGpusReply(gpus=[convert.gpu_state(g, urls.get(g.name, ""))
                                  for g in app.pool.gpus])
