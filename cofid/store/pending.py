"""Which files of a batch still have work in a plan: the resume's question, asked of the
database instead of every file's FileState.

A file still has work when some stage of the plan still needs it, i.e. when
:func:`cofid.domain.pipeline.needs_stage` holds for one of the plan's stages: it has not
failed a stage, and for some stage its done flag is unset and its call's status is one
that stage takes (any status for a stage without input statuses). :func:`work_clause`
spells exactly that over fileDistribution joined to call, so the two sides of a resume
are complementary:

* :func:`load_pending` — the files that still have work, a page at a time in
  fileDistribution order (what the engine is fed);
* :func:`finished_counts` — how many do not, by the stage they failed (None: none), so
  that the run counts them as skipped at every stage without being fed them.

A file neither query sees (a fileDistribution row without its call row) is one the engine
never loads either (cofid.store.repo.load_files joins the two the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.model import Stage
from cofid.domain.pipeline import DONE_FLAG_FIELD, STAGES, FileState, llm2_input_statuses
from cofid.store import repo
from cofid.store import tables as t


def _inputs(stage: Stage, stages: Sequence[Stage]) -> tuple[str, ...] | None:
    """The call statuses `stage` takes in a plan of `stages` (needs_stage's rule 6 too)."""
    if stage is Stage.LLM2:
        return tuple(str(s) for s in llm2_input_statuses(stages))
    got = STAGES[stage].input_statuses
    return None if got is None else tuple(str(s) for s in got)


def work_clause(stages: Sequence[Stage]) -> sa.ColumnElement[bool]:
    """True for a file (fileDistribution ⋈ call) some stage of `stages` still needs.

    NULLs read as the FileState does: a NULL flag is not done, a NULL status takes no
    stage with input statuses."""
    fd, c = t.file_distribution, t.call
    needs = []
    for stage in stages:
        flag = t.column_of("file_distribution", DONE_FLAG_FIELD[stage])
        not_done = sa.func.coalesce(flag, 0) == 0
        inputs = _inputs(stage, stages)
        if inputs is None:
            needs.append(not_done)
        else:
            needs.append(sa.and_(not_done, sa.func.coalesce(c.c.status, "").in_(inputs)))
    if not needs:
        return sa.false()
    return sa.and_(fd.c.failedStage.is_(None), sa.or_(*needs))


def load_pending(conn: Connection, batch_id: int, stages: Sequence[Stage], *,
                 after_fd_id: int = 0, limit: int | None = None) -> list[FileState]:
    """The batch's files some stage of `stages` still needs, in fileDistribution order."""
    return repo.load_files(conn, batch_id, after_fd_id=after_fd_id, limit=limit,
                           where=work_clause(stages))


def finished_counts(conn: Connection, batch_id: int,
                    stages: Sequence[Stage]) -> dict[str | None, int]:
    """The batch's files no stage of `stages` needs, counted by fileDistribution.failedStage
    (None: the file failed nothing; it is done, or settled by a rule such as the STT gate)."""
    fd, c = t.file_distribution, t.call
    stmt = (
        sa.select(fd.c.failedStage, sa.func.count())
        .select_from(fd.join(c, sa.and_(c.c.batchId == fd.c.batchId, c.c.audioName == fd.c.file)))
        .where(fd.c.batchId == batch_id, sa.not_(work_clause(stages)))
        .group_by(fd.c.failedStage)
    )
    return {r[0]: int(r[1]) for r in conn.execute(stmt)}
