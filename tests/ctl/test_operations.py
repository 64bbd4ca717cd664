"""cofictl tasks, resume and gpus against a real daemon (cofid.testing.daemon); the ones
that read tasks on SQLite and on MariaDB with the server zone at +05:30."""

from __future__ import annotations

import json

import sqlalchemy as sa

from cofid.store import tables as t
from cofid.testing.daemon import wait_for
from tests.api.conftest import write_batch_dir
from tests.ctl.conftest import VIEW, Ctl


def _task_rows(daemon) -> list[tuple]:
    tk = t.task
    return daemon.query(lambda c: [tuple(r) for r in c.execute(sa.select(
        tk.c.id, tk.c.kind, tk.c.state, tk.c.batchId, tk.c.error, tk.c.createdAt
    ).order_by(tk.c.createdAt.desc(), tk.c.id))])


def test_tasks_lists_newest_first_with_filters(zoned_world):
    world = zoned_world
    [row] = _task_rows(world.daemon)  # the fixture batch's task, and nothing else
    assert row[:5] == (world.task_id, "batch", "completed", world.batch_id, None)
    r = world.ctl("tasks", token=VIEW)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == [
        "TASK",
        "KIND",
        "STATE",
        "BATCH",
        "PROGRESS",
        "CREATED",
        "UPDATED",
        "ERROR",
    ]
    assert len(lines) == 2, lines
    # CREATED is the row's createdAt, in UTC (cofid writes UTC whatever the server's zone).
    assert lines[1].split()[:6] == [
        world.task_id,
        "batch",
        "completed",
        str(world.batch_id),
        f"{world.expected['total_files']}/{world.expected['total_files']}",
        row[5].replace(microsecond=0, tzinfo=None).isoformat() + "Z",
    ]
    r = world.ctl(
        "tasks", "--state", "completed", "--kind", "batch", "--limit", "0", "--json", token=VIEW
    )
    assert r.code == 0, r.err
    tasks = json.loads(r.out)["tasks"]
    assert [(x["task_id"], x["kind"], x["state"], int(x["batch_id"])) for x in tasks] == [
        (world.task_id, "batch", "completed", world.batch_id)]
    r = world.ctl("tasks", "--kind", "upload", "--json", token=VIEW)
    assert (r.code, json.loads(r.out)["tasks"]) == (0, [])
    r = world.ctl("tasks", "--state", "done", token=VIEW)
    assert r.code == 2
    assert "--state: done: choose from queued, running, completed, failed, cancelled" in r.err


def test_gpus_table_and_json(zoned_world):
    world = zoned_world
    r = world.ctl("gpus", token=VIEW)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["GPU", "URL", "HEALTHY"]
    assert [ln.split()[0] for ln in lines[1:]] == ["gpu-a", "gpu-b"]
    doc = json.loads(world.ctl("gpus", "--json", token=VIEW).out)
    gpus = doc["gpus"]
    assert [g["name"] for g in gpus] == ["gpu-a", "gpu-b"]
    assert [(g["healthy"], g["slots"], g["slots_in_use"]) for g in gpus] == [(True, 2, 0)] * 2
    # The counters agree with the rows of the one batch the daemon ran: every file
    # assigned once, a file-stage success per processing_logs success row, a failed
    # request per 'retry' or 'failed' row (the fixture's flaky and corrupt calls).
    pl, bs = t.processing_logs, t.batch_status
    logs = dict(world.daemon.query(lambda c: [tuple(r) for r in c.execute(
        sa.select(pl.c.status, sa.func.count()).group_by(pl.c.status))]))
    [total] = world.daemon.query(lambda c: list(c.execute(sa.select(bs.c.totalFiles)).scalars()))
    assert sum(g["files_assigned"] for g in gpus) == total == world.expected["total_files"]
    assert sum(g["files_done"] for g in gpus) == logs["success"]
    assert sum(g["requests_failed"] for g in gpus) == logs["retry"] + logs["failed"] > 0
    assert [ln.split()[:4] for ln in lines[1:]] == [
        [g["name"], "yes", "2", "0"] for g in gpus  # an empty URL column: fake hosts
    ]


def test_resume_a_cancelled_batch_and_wait(slow_daemon, tmp_path):
    ctl = Ctl(slow_daemon, tmp_path / "xdg")
    write_batch_dir(tmp_path / "slow", [f"s{i}.wav" for i in range(6)])
    ref = json.loads(ctl("start-batch", str(tmp_path / "slow"), "--json").out)
    wait_for(
        lambda: json.loads(ctl("status", ref["task_id"], "--json").out)["stages"],
        10,
        "the batch to run",
    )
    assert ctl("cancel", ref["task_id"]).code == 0
    r = ctl("tasks", "--state", "cancelled", "--json", token=VIEW)
    assert [x["task_id"] for x in json.loads(r.out)["tasks"]] == [ref["task_id"]]
    r = ctl("resume", ref["task_id"], "--wait")
    assert r.code == 0, r.err
    assert "completed" in r.out and f"resumes {ref['task_id']}" in r.err
    rows = _task_rows(slow_daemon)
    new, bid = next((row[0], row[3]) for row in rows if row[0] != ref["task_id"])
    assert bid and [row[:5] for row in rows] == [  # newest first: the resuming task first
        (new, "batch", "completed", bid, None),
        (ref["task_id"], "batch", "cancelled", bid, "cancelled by request"),
    ]
    r = ctl("tasks", "--json", token=VIEW)
    assert [x["task_id"] for x in json.loads(r.out)["tasks"]] == [new, ref["task_id"]]
    r = ctl("resume", ref["task_id"])
    assert r.code == 5 and "FAILED_PRECONDITION" in r.err and "has a newer task" in r.err
    r = ctl("resume", ref["task_id"], token=VIEW)
    assert r.code == 4, r.err
