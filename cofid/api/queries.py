"""The read-only RPCs on the trio side: ListBatches, GetBatch, GetCall, ListCalls, ListGpus.

Each reads the store in one worker-thread call (``app.db.read``) and, for a batch that is
running, overlays the live counters of its PlanRun; the result is a cofi.v1 message (or
rows / messages plus a "more" flag for paging). Nothing here writes.

ListCalls reads a page with a fixed number of queries whatever its size: the batch row,
the page's call rows, their fileDistribution rows and, for ``full`` pages, the page's
transcript, callConversation, mapped-trade and auditAnswer rows, each table in one query
(``WHERE callId IN (...)``; mapped trades are keyed like GetCall's, by the batch and the
audio names). Converting the rows to messages happens in the same worker thread.
"""

from __future__ import annotations

import time
from datetime import date

import sqlalchemy as sa

from cofid.api import convert
from cofid.api.bridge import not_found
from cofid.domain.model import PIPELINE_ORDER
from cofid.domain.pipeline import FLAG_COLUMN, FLAG_STATUS_COLUMN, STATUS_COLUMN
from cofid.plans import batch as bp
from cofid.store import repo
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb


async def list_batches(app, date_from: date | None, date_to: date | None, size: int,
                       after: tuple[date, int] | None) -> tuple[list, bool]:
    """Newest first; at most ``size`` rows after the (batchDate, batchNumber) ``after``."""
    bs = t.batch_status

    def q(conn):
        stmt = sa.select(bs)
        if date_from is not None:
            stmt = stmt.where(bs.c.batchDate >= date_from)
        if date_to is not None:
            stmt = stmt.where(bs.c.batchDate <= date_to)
        if after is not None:
            d, n = after
            stmt = stmt.where(sa.or_(bs.c.batchDate < d,
                                     sa.and_(bs.c.batchDate == d, bs.c.batchNumber < n)))
        stmt = stmt.order_by(bs.c.batchDate.desc(), bs.c.batchNumber.desc()).limit(size + 1)
        return list(conn.execute(stmt))

    rows = await app.db.read(q)
    return rows[:size], len(rows) > size


async def get_batch(app, batch_id: int) -> pb.Batch:
    fd, c = t.file_distribution, t.call

    def q(conn):
        row = repo.get_batch(conn, batch_id)
        if row is None:
            return None
        flags = conn.execute(sa.select(
            sa.func.count(),
            *[sa.func.coalesce(sa.func.sum(fd.c[col]), 0) for col in FLAG_COLUMN.values()],
        ).where(fd.c.batchId == batch_id)).one()
        failed = dict(conn.execute(
            sa.select(fd.c.failedStage, sa.func.count()).where(
                fd.c.batchId == batch_id, fd.c.failedStage.is_not(None))
            .group_by(fd.c.failedStage)).all())
        calls = dict(conn.execute(
            sa.select(c.c.status, sa.func.count()).where(c.c.batchId == batch_id)
            .group_by(c.c.status)).all())
        return row, flags, failed, calls

    got = await app.db.read(q)
    if got is None:
        raise not_found(f"no batch {batch_id}")
    row, flags, failed, calls = got
    m = row._mapping
    enabled = set(bp.enabled_stages(row.pipeline or {}))
    done_of = dict(zip(FLAG_COLUMN, list(flags)[1:], strict=True))
    total = int(m["totalFiles"])
    run = app.runs.get(batch_id)
    now = time.monotonic()
    msg = pb.Batch(summary=convert.batch_summary(row), process_id=m["processId"],
                   category_mapping_id=m["categoryMappingId"],
                   source_dir=(m["sourceDir"] or "") if m["source"] == "batch" else "")
    for stage in PIPELINE_ORDER:
        if stage not in enabled:
            msg.stages.append(pb.StageState(stage=stage.value, status="Complete"))
            continue
        if stage in FLAG_STATUS_COLUMN:
            status = "Complete" if m[FLAG_STATUS_COLUMN[stage]] else "Pending"
        else:
            status = str(m[STATUS_COLUMN[stage]])
        st = pb.StageState(stage=stage.value, status=status, total=total)
        if run is not None and stage in run.counters:
            cnt = run.counters[stage]
            st.status = str(cnt.status) if status != "Complete" else status
            st.done, st.failed, st.skipped = cnt.done, cnt.failed, cnt.skipped
            st.files_per_minute = cnt.rate_per_minute(now) if cnt.finished_at is None else 0.0
        elif stage in FLAG_COLUMN:
            st.done = int(done_of[stage])
            st.failed = int(failed.get(stage.value, 0))
            if status == "Complete":
                st.skipped = max(0, total - st.done - st.failed)
        elif status == "Complete":
            st.done = total
        msg.stages.append(st)
    for k, v in calls.items():
        msg.call_status_counts[k] = int(v)
    return msg


async def get_call(app, audio_name: str, batch_id: int) -> pb.Call:
    """The call of that name in ``batch_id`` (0: the newest batch holding it)."""
    c, fd, tam, tm = t.call, t.file_distribution, t.trade_audio_mapping, t.trade_metadata

    def q(conn):
        stmt = sa.select(c).where(c.c.audioName == audio_name)
        if batch_id:
            stmt = stmt.where(c.c.batchId == batch_id)
        row = conn.execute(stmt.order_by(c.c.batchId.desc()).limit(1)).first()
        if row is None:
            return None
        f = conn.execute(sa.select(fd).where(fd.c.batchId == row.batchId,
                                             fd.c.file == audio_name)).first()
        tr = list(conn.execute(sa.select(t.transcript).where(t.transcript.c.callId == row.id)
                               .order_by(t.transcript.c.segmentIndex)))
        cc = list(conn.execute(sa.select(t.call_conversation)
                               .where(t.call_conversation.c.callId == row.id)
                               .order_by(t.call_conversation.c.tradeIndex)))
        mapped = list(conn.execute(
            sa.select(tm).select_from(tam.join(tm, sa.and_(tm.c.batchId == tam.c.batchId,
                                                           tm.c.tradeId == tam.c.tradeId)))
            .where(tam.c.batchId == row.batchId, tam.c.audioName == audio_name)
            .order_by(tm.c.tradeTime, tm.c.tradeId)))
        ans = list(conn.execute(sa.select(t.audit_answer)
                                .where(t.audit_answer.c.callId == row.id)
                                .order_by(t.audit_answer.c.questionOrder)))
        return row, f, tr, cc, mapped, ans

    got = await app.db.read(q)
    if got is None:
        where = f" in batch {batch_id}" if batch_id else ""
        raise not_found(f"no call {audio_name!r}{where}")
    row, f, tr, cc, mapped, ans = got
    return convert.call(row, fd=f, transcript=tr, conversations=cc, mapped=mapped,
                        answers=ans)


MAX_PAGE_BYTES = 3 * 1024 * 1024  # a ListCalls reply stays under gRPC's 4 MiB default


def _by(rows, key: str) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r._mapping[key], []).append(r)
    return out


async def list_calls(app, batch_id: int, statuses: list[str], size: int, after: int,
                     full: bool) -> tuple[list[pb.Call], bool]:
    """Calls of ``batch_id`` with id > ``after`` in id order: at most ``size``, fewer when
    the page reaches MAX_PAGE_BYTES (never none while one is left), and a "more" flag."""
    c, fd, tam, tm = t.call, t.file_distribution, t.trade_audio_mapping, t.trade_metadata
    tr, cc, aa = t.transcript, t.call_conversation, t.audit_answer

    def q(conn):
        if repo.get_batch(conn, batch_id) is None:
            return None
        stmt = sa.select(c).where(c.c.batchId == batch_id, c.c.id > after)
        if statuses:
            stmt = stmt.where(c.c.status.in_(statuses))
        calls = list(conn.execute(stmt.order_by(c.c.id).limit(size + 1)))
        more = len(calls) > size
        calls = calls[:size]
        if not calls:
            return [], False
        ids, names = [r.id for r in calls], [r.audioName for r in calls]
        fds = {r.file: r for r in conn.execute(
            sa.select(fd).where(fd.c.batchId == batch_id, fd.c.file.in_(names)))}
        segs = convs = mapped = answers = {}
        if full:
            segs = _by(conn.execute(sa.select(tr).where(tr.c.callId.in_(ids))
                                    .order_by(tr.c.callId, tr.c.segmentIndex)), "callId")
            convs = _by(conn.execute(sa.select(cc).where(cc.c.callId.in_(ids))
                                     .order_by(cc.c.callId, cc.c.tradeIndex)), "callId")
            mapped = _by(conn.execute(
                sa.select(tm, tam.c.audioName.label("mappedTo"))
                .select_from(tam.join(tm, sa.and_(tm.c.batchId == tam.c.batchId,
                                                  tm.c.tradeId == tam.c.tradeId)))
                .where(tam.c.batchId == batch_id, tam.c.audioName.in_(names))
                .order_by(tam.c.audioName, tm.c.tradeTime, tm.c.tradeId)), "mappedTo")
            answers = _by(conn.execute(sa.select(aa).where(aa.c.callId.in_(ids))
                                       .order_by(aa.c.callId, aa.c.questionOrder)), "callId")
        out, used = [], 0
        for r in calls:
            msg = convert.call(r, fd=fds.get(r.audioName), transcript=segs.get(r.id, ()),
                               conversations=convs.get(r.id, ()),
                               mapped=mapped.get(r.audioName, ()),
                               answers=answers.get(r.id, ()))
            used += msg.ByteSize() + 8  # + the field's tag and length
            if out and used > MAX_PAGE_BYTES:
                return out, True
            out.append(msg)
        return out, more

    got = await app.db.read(q)
    if got is None:
        raise not_found(f"no batch {batch_id}")
    return got


def list_gpus(app) -> pb.ListGpusReply:
    """Synchronous: reads the GPU pool's in-memory state on the trio thread."""
    urls = {g.name: g.url for g in app.cfg.gpus}
    return pb.ListGpusReply(gpus=[convert.gpu_state(g, urls.get(g.name, ""))
                                  for g in app.pool.gpus])
