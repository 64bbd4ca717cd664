"""cofictl tasks, resume and gpus against a real daemon (cofid.testing.daemon)."""

from __future__ import annotations

import json

from cofid.testing.daemon import wait_for
from tests.api.conftest import write_batch_dir
from tests.ctl.conftest import VIEW, Ctl


def test_tasks_lists_newest_first_with_filters(world):
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
    row = next(ln for ln in lines if ln.startswith(world.task_id))
    assert row.split()[1:5] == [
        "batch",
        "completed",
        str(world.batch_id),
        f"{world.expected['total_files']}/{world.expected['total_files']}",
    ]
    r = world.ctl(
        "tasks", "--state", "completed", "--kind", "batch", "--limit", "0", "--json", token=VIEW
    )
    assert r.code == 0, r.err
    tasks = json.loads(r.out)["tasks"]
    assert world.task_id in [t["task_id"] for t in tasks]
    assert {(t["kind"], t["state"]) for t in tasks} == {("batch", "completed")}
    r = world.ctl("tasks", "--state", "done", token=VIEW)
    assert r.code == 2
    assert "--state: done: choose from queued, running, completed, failed, cancelled" in r.err


def test_gpus_table_and_json(world):
    r = world.ctl("gpus", token=VIEW)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["GPU", "URL", "HEALTHY"]
    assert [ln.split()[0] for ln in lines[1:]] == ["gpu-a", "gpu-b"]
    doc = json.loads(world.ctl("gpus", "--json", token=VIEW).out)
    assert [g["name"] for g in doc["gpus"]] == ["gpu-a", "gpu-b"]


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
    assert [t["task_id"] for t in json.loads(r.out)["tasks"]] == [ref["task_id"]]
    r = ctl("resume", ref["task_id"], "--wait")
    assert r.code == 0, r.err
    assert "completed" in r.out and f"resumes {ref['task_id']}" in r.err
    r = ctl("resume", ref["task_id"])
    assert r.code == 5 and "FAILED_PRECONDITION" in r.err and "has a newer task" in r.err
    r = ctl("resume", ref["task_id"], token=VIEW)
    assert r.code == 4, r.err
