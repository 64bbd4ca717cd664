"""cofictl's operator subcommands against a real daemon: start-batch, upload, reaudit,
cancel, status --wait, export; and auth, target and token resolution."""

from __future__ import annotations

import csv
import io
import json
import os
import time

import sqlalchemy as sa
import trio

from cofid.ctl.commands import export
from cofid.ctl.connect import Connection
from cofid.store import tables as t
from cofid.testing.batches import write_fixture_batch
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import wav_bytes, write_batch_dir
from tests.ctl.conftest import OP, VIEW, Ctl


def test_start_batch_wait_then_already_exists(world, tmp_path, monkeypatch):
    write_batch_dir(tmp_path / "b1", ["sb_a.wav", "sb_b.wav"])
    monkeypatch.chdir(tmp_path)  # a relative directory is made absolute
    r = world.ctl("start-batch", "b1", "--wait")
    assert r.code == 0, r.err
    assert "waiting for it to finish" in r.err and "state:" in r.out and "completed" in r.out
    r = world.ctl("start-batch", str(tmp_path / "b1"), "--json")
    assert r.code == 5 and r.err.startswith("cofictl: ALREADY_EXISTS:") and r.out == ""
    r = world.ctl("start-batch", str(tmp_path / "missing"))
    assert r.code == 5 and "NOT_FOUND" in r.err
    write_batch_dir(tmp_path / "b2", ["sb_c.wav"])
    r = world.ctl("start-batch", str(tmp_path / "b2"), "--json")
    ref = json.loads(r.out)
    assert r.code == 0 and ref["state"] in ("queued", "running") and ref["task_id"]
    doc = json.loads(world.ctl("status", ref["task_id"], "--wait", "--json").out)
    assert doc["state"] == "completed" and doc["batch_id"] > 0


def test_upload_wait_human_and_json(world, tmp_path):
    files = []
    for i in range(2):
        p = tmp_path / f"up_{i}.wav"
        p.write_bytes(wav_bytes(seconds=1.0 + i))
        files.append(str(p))
    big = tmp_path / "up_big.wav"  # more than one 1 MiB chunk
    big.write_bytes(wav_bytes(seconds=80.0, rate=8000))
    assert big.stat().st_size > 1024 * 1024
    files.append(str(big))
    r = world.ctl("upload", *files, "--process-id", "1", "--category-mapping-id", "1",
                  "--wait", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["stored_names"] == ["up_0.wav", "up_1.wav", "up_big.wav"]
    assert doc["status"] == "queued" and doc["task"]["state"] == "completed"
    assert doc["task"]["kind"] == "upload" and doc["batch_id"] > 0
    call = json.loads(world.ctl("call", "up_big.wav", "--json").out)
    assert call["batch_id"] == doc["batch_id"]
    # the same name again without --replace: the daemon refuses
    r = world.ctl("upload", files[0], "--process-id", "1", "--category-mapping-id", "1")
    assert r.code == 5 and "ALREADY_EXISTS" in r.err
    r = world.ctl("upload", files[0], "--process-id", "1", "--category-mapping-id", "1",
                  "--replace")
    assert r.code == 0 and "uploaded 1 file(s)" in r.out and "upload:" in r.err
    r = world.ctl("upload", str(tmp_path / "nope.wav"), "--process-id", "1",
                  "--category-mapping-id", "1")
    assert r.code == 2 and "no such file" in r.err
    r = world.ctl("upload", files[0], "--process-id", "1")
    assert r.code == 2 and "--category-mapping-id" in r.err


def test_reaudit_names_from_args_file_and_stdin(world, tmp_path):
    r = world.ctl("reaudit", "--stages", "stt,llm2", "call_01_long.wav", "ghost.wav", "--wait")
    assert r.code == 0, r.err
    assert "1 unknown audio name(s)" in r.err and "ghost.wav" in r.err
    assert "re-auditing 1 call(s)" in r.err and "completed" in r.out
    names = tmp_path / "names.txt"
    names.write_text("# to redo\ncall_02_long.wav\n\ncall_03_hi_long.wav\n")
    r = world.ctl("reaudit", "--stages", "llm2", "--from-file", str(names), "--json", "--wait")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["matched_calls"] == 2 and doc["unknown_audio_names"] == []
    assert doc["task"]["state"] == "completed" and doc["task"]["kind"] == "reaudit"
    r = world.ctl("reaudit", "--stages", "llm1,llm2", "-", "--json",
                  stdin="call_02_long.wav\n")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["matched_calls"] == 1 and doc["task_id"]
    world.daemon.wait_task(doc["task_id"])
    r = world.ctl("reaudit", "--stages", "stt", "call_01_long.wav", token=VIEW)
    assert r.code == 4 and r.err.startswith("cofictl: PERMISSION_DENIED:")


def test_cancel_and_failed_status_exit_1(slow_daemon, tmp_path):
    ctl = Ctl(slow_daemon, tmp_path / "xdg")
    write_batch_dir(tmp_path / "slow", [f"s{i}.wav" for i in range(20)])
    ref = json.loads(ctl("start-batch", str(tmp_path / "slow"), "--json").out)
    r = ctl("cancel", ref["task_id"])
    assert r.code == 0, r.err
    assert "cancelled" in r.out
    r = ctl("status", ref["task_id"], "--json")
    assert r.code == 1 and json.loads(r.out)["state"] == "cancelled"
    r = ctl("status", ref["task_id"], "--wait")
    assert r.code == 1 and "cancelled" in r.err
    r = ctl("cancel", "no-such-task")
    assert r.code == 5 and "NOT_FOUND" in r.err


def test_auth_errors_exit_4(world, tmp_path):
    r = world.ctl("batches", token="wrong-token")
    assert r.code == 4 and r.err.startswith("cofictl: UNAUTHENTICATED: unknown token")
    assert "$COFI_TOKEN" in r.err and "wrong-token" not in r.err
    r = world.ctl("batches", token=None)
    assert r.code == 4 and "UNAUTHENTICATED" in r.err and "nowhere" in r.err
    r = world.ctl.run("batch", str(world.batch_id), token="wrong-token")
    assert r.code == 4 and "UNAUTHENTICATED" in r.err and "Traceback" not in r.err
    bad = tmp_path / "missing-token"
    r = world.ctl("batches", "--token-file", str(bad), token=None)
    assert r.code == 4 and "cannot read token file" in r.err


def test_token_sources(world, tmp_path):
    # --token-file beats $COFI_TOKEN; the default file is used when nothing else is set
    f = tmp_path / "tok"
    f.write_text(OP + "\n")
    os.chmod(f, 0o600)
    r = world.ctl("reaudit", "--stages", "llm2", "call_02_long.wav", "--token-file", str(f),
                  "--json", token=VIEW)
    assert r.code == 0, r.err
    world.daemon.wait_task(json.loads(r.out)["task_id"])
    default = world.ctl.home / "cofi" / "token"
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text(VIEW)
    try:
        r = world.ctl("batches", token=None)
        assert r.code == 0, r.err
        r = world.ctl("reaudit", "--stages", "stt", "call_02_long.wav", token=None)
        assert r.code == 4 and "PERMISSION_DENIED" in r.err
    finally:
        default.unlink()


def test_target_sources_and_unreachable(world, tmp_path):
    env = world.ctl.env()
    # --target beats $COFI_TARGET
    env["COFI_TARGET"] = "unix:/nonexistent/cofid.sock"
    r = world.ctl("batches", env=env)
    assert r.code == 3 and r.err.startswith("cofictl: UNAVAILABLE: cofid at unix:/nonexistent")
    r = world.ctl("--target", world.daemon.target, "batches", env=env)
    assert r.code == 0, r.err
    r = world.ctl("batches", "--target", world.daemon.target, env=env)
    assert r.code == 0, r.err
    # the configuration: its unix socket (COFID_CONFIG or --config)
    cfg = tmp_path / "cofid.toml"
    cfg.write_text(f'[paths]\ndata = "{world.daemon.root / "data"}"\n'
                   f'[grpc]\nlisten = ["unix:{world.daemon.sock}", "127.0.0.1:1"]\n')
    del env["COFI_TARGET"]
    r = world.ctl("batches", "--config", str(cfg), env=env)
    assert r.code == 0, r.err
    r = world.ctl("batches", env={**env, "COFID_CONFIG": str(cfg)})
    assert r.code == 0, r.err
    # no socket there: the TCP address next (nothing listens: unreachable, exit 3)
    cfg.write_text('[grpc]\nlisten = ["unix:/nonexistent/x.sock", "0.0.0.0:1"]\n')
    r = world.ctl.run("batches", "--config", str(cfg), env=env)
    assert r.code == 3 and "cofid at 127.0.0.1:1 is unreachable" in r.err
    r = world.ctl("batches", "--config", str(tmp_path / "none.toml"), env=env)
    assert r.code == 2 and "configuration error" in r.err


def test_export_answers_transcripts_trades(world, tmp_path):
    bid = str(world.batch_id)
    c, a = t.call, t.audit_answer
    ids = world.daemon.query(lambda conn: list(conn.execute(
        sa.select(c.c.id).where(c.c.batchId == world.batch_id).order_by(c.c.id)).scalars()))
    assert len(ids) == len(world.expected["files"])
    out = tmp_path / "answers.csv"
    r = world.ctl("export", "--batch", bid, "--what", "answers", "--format", "csv",
                  "-o", str(out), token=VIEW)
    assert r.code == 0, r.err
    assert f"batch {bid}: {len(ids)} call(s)" in r.err
    assert not (tmp_path / "answers.csv.partial").exists()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    n_answers = world.daemon.count(a, a.c.callId.in_(
        sa.select(c.c.id).where(c.c.batchId == world.batch_id)))
    assert len(rows) == n_answers > 0
    assert list(rows[0]) == export.COLUMNS["answers"]
    # calls in call id order, each call's answers in question order
    answered = [i for i in ids if str(i) in {x["call_id"] for x in rows}]
    assert list(dict.fromkeys(int(x["call_id"]) for x in rows)) == answered
    want = world.daemon.query(lambda conn: [(x.callId, x.questionId) for x in conn.execute(
        sa.select(a).where(a.c.callId.in_(ids)).order_by(a.c.callId, a.c.questionOrder))])
    assert [(int(x["call_id"]), x["question_id"]) for x in rows] == want
    r = world.ctl("export", "--batch", bid, "--what", "transcripts", "--format", "jsonl")
    assert r.code == 0, r.err
    segs = [json.loads(ln) for ln in r.out.splitlines()]
    tr = t.transcript
    assert len(segs) == world.daemon.count(tr, tr.c.callId.in_(
        sa.select(c.c.id).where(c.c.batchId == world.batch_id)))
    assert list(segs[0]) == export.COLUMNS["transcripts"]
    assert [(x["call_id"], x["segment"]) for x in segs] == sorted(
        (x["call_id"], x["segment"]) for x in segs)
    r = world.ctl("export", "--batch", bid, "--what", "trades", "--format", "csv")
    assert r.code == 0, r.err
    trades = list(csv.DictReader(io.StringIO(r.out)))
    mapped = {x["trade_id"] for x in trades if x["kind"] == "mapped"}
    assert mapped == {tid for tid, name in world.expected["trades"].items() if name}
    assert {x["kind"] for x in trades} == {"extracted", "mapped"}
    r = world.ctl("export", "--batch", "999999", "--what", "trades")
    assert r.code == 5 and "NOT_FOUND" in r.err
    r = world.ctl("export", "--batch", bid, "--what", "votes")
    assert r.code == 2


def test_export_streams_page_by_page(world, tmp_path, monkeypatch):
    """Each page is written before the next is asked for; -o writes FILE.partial first."""
    bid = str(world.batch_id)
    whole = world.ctl("export", "--batch", bid, "--what", "transcripts", "--format", "csv")
    assert whole.code == 0, whole.err
    out = tmp_path / "t.csv"
    partial = tmp_path / "t.csv.partial"
    seen: list[tuple[int, bool, int]] = []
    real = Connection.call

    def call(self, method, request, **kw):
        if method == "ListCalls":
            assert request.full and request.page_size == 2
            seen.append((partial.stat().st_size, out.exists(), len(request.page_token)))
        return real(self, method, request, **kw)

    monkeypatch.setattr(export, "PAGE_SIZE", 2)
    monkeypatch.setattr(Connection, "call", call)
    r = world.ctl("export", "--batch", bid, "--what", "transcripts", "--format", "csv",
                  "-o", str(out))
    assert r.code == 0, r.err
    n_calls = len(world.expected["files"])
    assert len(seen) == (n_calls + 1) // 2
    sizes = [size for size, _, _ in seen]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]  # flushed page by page
    assert not any(exists for _, exists, _ in seen)  # the target appears at the end only
    assert seen[0][2] == 0 and all(n for _, _, n in seen[1:])
    assert out.read_text(encoding="utf-8") == whole.out and not partial.exists()


def test_export_refuses_running_batch_partial_and_incomplete(slow_daemon, tmp_path,
                                                             monkeypatch):
    ctl = Ctl(slow_daemon, tmp_path / "xdg")
    write_fixture_batch(tmp_path / "fx", extra_calls=0, first_stage="ivr")
    ref = json.loads(ctl("start-batch", str(tmp_path / "fx"), "--json").out)
    while not (running := slow_daemon.rpc("GetTask", pb.GetTaskRequest(
            task_id=ref["task_id"]))).batch_id:
        time.sleep(0.02)
    c = t.call
    while not slow_daemon.count(c, c.c.batchId == running.batch_id):
        time.sleep(0.02)
    r = ctl("export", "--batch", str(running.batch_id), "--what", "answers")
    assert r.code == 2 and "not Completed" in r.err and r.out == ""
    # --partial: every call, with the results so far
    r = ctl("export", "--batch", str(running.batch_id), "--what", "transcripts",
            "--format", "jsonl", "--partial", "-o", str(tmp_path / "p.jsonl"))
    assert r.code == 0, r.err
    assert "warning:" in r.err and "7 call(s)" in r.err and (tmp_path / "p.jsonl").exists()
    task = slow_daemon.wait_task(ref["task_id"], timeout=30)
    bid = str(task.batch_id)
    # the event log does not matter any more: drop the batch's events, the export is whole
    tbl = t.batch_execution_log

    def drop(conn):
        conn.execute(sa.delete(tbl).where(tbl.c.batchId == task.batch_id))

    trio.from_thread.run(slow_daemon.service.app.db.write, drop,
                         trio_token=slow_daemon.token)
    out = tmp_path / "x.csv"
    r = ctl("export", "--batch", bid, "--what", "answers", "-o", str(out))
    assert r.code == 0, r.err
    assert "of 7 call(s)" in r.err and out.exists()
    # fewer calls listed than GetBatch counts (a batch changing under the export): exit 1,
    # and neither the file nor the partial file is left behind
    out.unlink()
    real = Connection.call

    def call(self, method, request, **kw):
        reply = real(self, method, request, **kw)
        if method == "GetBatch":
            reply.call_status_counts["Complete"] += 1
        return reply

    monkeypatch.setattr(Connection, "call", call)
    r = ctl("export", "--batch", bid, "--what", "answers", "-o", str(out))
    assert r.code == 1 and "incomplete: listed 7 of 8 calls" in r.err
    assert not out.exists() and not (tmp_path / "x.csv.partial").exists()
