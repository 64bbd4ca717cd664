"""cofictl's read-only subcommands against a real daemon: batches, batch, call, status,
watch (replay), their --json forms, help texts, and the error exit codes."""

from __future__ import annotations

import json

import pytest

from cofid.store import tables as t
from tests.ctl.conftest import VIEW

SUBCOMMANDS = ["start-batch", "reaudit", "status", "cancel", "upload", "batches", "batch",
               "call", "watch", "export"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_shows_an_example_and_exit_codes(world, cmd):
    r = world.ctl(cmd, "--help")
    assert r.code == 0
    assert "example" in r.out and f"cofictl {cmd}" in r.out.split("example", 1)[1]
    assert "3    daemon unreachable" in r.out


def test_usage_errors_exit_2(world):
    for argv in (["batch"], ["nope"], ["batch", "x"], ["batches", "--date", "2026-13-01"],
                 ["batches", "--date", "2026-01-01", "--since", "2026-01-01"],
                 ["reaudit", "--stages", "denoise", "a.wav"], ["reaudit", "--stages", "stt"]):
        r = world.ctl(*argv)
        assert r.code == 2, (argv, r)
        assert "Traceback" not in r.err and r.err.startswith(("usage", "cofictl:"))
        assert r.out == ""


def test_batches_human_and_json(world):
    r = world.ctl("batches")
    assert r.code == 0, r.err
    header, *rows = r.out.splitlines()
    assert header.split() == ["ID", "DATE", "NO", "STATUS", "SOURCE", "FILES", "CREATED",
                              "COMPLETED"]
    mine = [ln for ln in rows if ln.split()[0] == str(world.batch_id)]
    assert len(mine) == 1 and "Completed" in mine[0] and " batch " in mine[0]
    r = world.ctl("batches", "--json", token=VIEW)
    doc = json.loads(r.out)
    b = next(x for x in doc["batches"] if x["batch_id"] == world.batch_id)
    assert b["status"] == "Completed" and b["total_files"] == world.expected["total_files"]
    assert b["completed_at"].endswith("Z") and isinstance(b["batch_id"], int)
    day = b["batch_date"]
    on_day = json.loads(world.ctl("--json", "batches", "--date", day).out)["batches"]
    assert world.batch_id in [x["batch_id"] for x in on_day]
    assert json.loads(world.ctl("batches", "--since", "2999-01-01", "--json").out) == {
        "batches": []}
    r = world.ctl("batches", "--since", "2999-01-01")
    assert r.code == 0 and r.out.splitlines()[1:] == []


def test_batch_stage_table_and_json(world):
    r = world.ctl("batch", str(world.batch_id))
    assert r.code == 0, r.err
    assert "status:" in r.out and "Completed" in r.out
    lines = r.out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("STAGE"))
    assert lines[head].split() == ["STAGE", "STATUS", "TOTAL", "DONE", "FAILED", "SKIPPED",
                                   "RATE/MIN"]
    stages = {ln.split()[0]: ln.split() for ln in lines[head + 1:head + 11]}
    assert list(stages)[0] == "file_distribution" and len(stages) == 10
    assert stages["ivr"][1] == "Complete" and stages["ivr"][4] == "1"  # the corrupt file
    assert "CALL STATUS" in r.out
    doc = json.loads(world.ctl("batch", str(world.batch_id), "--json").out)
    assert doc["summary"]["batch_id"] == world.batch_id
    assert [s["stage"] for s in doc["stages"]][-1] == "llm2"
    assert sum(doc["call_status_counts"].values()) == world.expected["total_files"]
    assert set(doc["stages"][0]) >= {"status", "done", "failed", "files_per_minute"}


def test_call_human_and_json(world):
    r = world.ctl("call", "call_01_long.wav")
    assert r.code == 0, r.err
    for needle in ("language:", "en (1)", "duration:", "status:", "Complete",
                   "transcript (", "extracted trades (", "mapped trades (2)",
                   "audit answers ("):
        assert needle in r.out, needle
    doc = json.loads(world.ctl("call", "call_01_long.wav", "--batch", str(world.batch_id),
                               "--json").out)
    assert doc["audio_name"] == "call_01_long.wav" and doc["batch_id"] == world.batch_id
    assert doc["lang"] == "en" and doc["transcript"] and doc["audit_answers"]
    assert len(doc["mapped_trades"]) == 2
    assert world.ctl("call", "call_06_corrupt.wav").out.count("failed:") == 1


def test_unknown_names_are_not_found(world):
    r = world.ctl("call", "no_such_call.wav")
    assert r.code == 5 and r.out == ""
    assert r.err.strip() == "cofictl: NOT_FOUND: no call 'no_such_call.wav'"
    r = world.ctl("batch", "999999")
    assert (r.code, r.err.strip()) == (5, "cofictl: NOT_FOUND: no batch 999999")
    r = world.ctl("status", "no-such-task")
    assert (r.code, r.err.strip()) == (5, "cofictl: NOT_FOUND: no task no-such-task")
    r = world.ctl("reaudit", "--stages", "stt", "nobody.wav", "nobody2.wav")
    assert r.code == 5 and r.err.startswith("cofictl: NOT_FOUND:") and "Traceback" not in r.err
    r = world.ctl("batch", "0")  # the daemon's INVALID_ARGUMENT is a usage error
    assert r.code == 2 and "INVALID_ARGUMENT: batch_id must be > 0" in r.err


def test_status_of_completed_task(world):
    r = world.ctl("status", world.task_id, token=VIEW)
    assert r.code == 0, r.err
    assert "state:" in r.out and "completed" in r.out and "STAGE" in r.out
    assert "call_06_corrupt.wav" in r.out  # failures listed
    doc = json.loads(world.ctl("status", world.task_id, "--json", "--wait").out)
    assert doc["state"] == "completed" and doc["kind"] == "batch"
    assert doc["batch_id"] == world.batch_id
    assert {f["audio_name"] for f in doc["failures"]} == {"call_06_corrupt.wav"}


def test_watch_replay_human_json_and_filters(world):
    ids = world.daemon.event_ids(t.batch_execution_log.c.batchId == world.batch_id)
    r = world.ctl("watch", "--batch", str(world.batch_id), "--from-event-id", "0", "--json",
                  "--count", "25", token=VIEW)
    assert r.code == 0, r.err
    got = [json.loads(ln) for ln in r.out.splitlines()]
    assert [e["id"] for e in got] == ids[:25]
    assert all(e["batch_id"] == world.batch_id for e in got)
    r = world.ctl("watch", "--batch", str(world.batch_id), "--from-event-id", str(ids[3]),
                  "--count", "3")
    assert [int(ln.split()[0]) for ln in r.out.splitlines()] == ids[4:7]
    assert f"batch={world.batch_id}" in r.out
    r = world.ctl("watch", "--batch", str(world.batch_id), "--errors", "--from-event-id", "0",
                  "--count", "1", "--json")
    e = json.loads(r.out)
    assert e["file_name"] == "call_06_corrupt.wav" and e["event_type"] == "error"
    r = world.ctl("watch", "--batch", str(world.batch_id), "--stage", "stt", "--from-event-id",
                  "0", "--count", "5", "--json")
    assert {json.loads(ln)["stage"] for ln in r.out.splitlines()} == {"stt"}
    r = world.ctl("watch", "--stage", "bogus", "--from-event-id", "0")
    assert r.code == 2 and "INVALID_ARGUMENT: unknown stage 'bogus'" in r.err
