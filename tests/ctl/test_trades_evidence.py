"""cofictl trades, the verdict counts of cofictl batch, and cofictl evidence (fetch and
--verify) against a real daemon (serve_main in a thread, unix socket, viewer token).

The verdicts are written straight into the store (tests/api/verdict_rows.py) on an
uploaded batch, among them a reason with an ANSI escape and BEL, and a trade id and
reasons that start like spreadsheet formulas: none may reach the terminal or a
spreadsheet as such."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from cofid.store import tables as t
from tests.api.conftest import upload_messages, wav_bytes
from tests.api.verdict_rows import ESC_REASON, TRADE_IDS, seed_verdicts
from tests.ctl.conftest import VIEW, Ctl, Daemon, short_root

P1, P2 = wav_bytes(seconds=3.0), wav_bytes(freq=520)
BUNDLE = [
    "recording/p1.wav",
    "transcript.json",
    "extracted_trades.json",
    "booked_trade.json",
    "verdict.json",
    "audit_answers.json",
    "manifest.json",
]


@dataclass
class Seeded:
    daemon: Daemon
    ctl: Ctl
    batch_id: int


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = short_root()
    d = Daemon(root).start()
    up = d.rpc("UploadAudit", iter(upload_messages({"p1.wav": P1, "p2.wav": P2})))
    assert d.wait_task(up.task_id).state == "completed"
    d.run(d.service.app.db.write, lambda c: seed_verdicts(c, up.batch_id))
    yield Seeded(d, Ctl(d, tmp_path_factory.mktemp("xdg")), up.batch_id)
    d.stop()
    shutil.rmtree(root, ignore_errors=True)


def no_controls(text: str) -> None:
    assert not any(ord(ch) < 0x20 and ch != "\n" or 0x7F <= ord(ch) <= 0x9F for ch in text)


def test_trades_text(seeded):
    r = seeded.ctl("trades", "--batch", str(seeded.batch_id), token=VIEW)
    assert (r.code, r.err) == (0, "")
    no_controls(r.out)
    lines = r.out.splitlines()
    assert lines[0].split() == ["TRADE", "ID", "VERDICT", "CALL", "FIELDS", "OFF", "REASON"]
    assert [ln.split()[0] for ln in lines[1:]] == TRADE_IDS
    t2 = lines[1 + TRADE_IDS.index("T2")]
    assert t2.split()[:4] == ["T2", "mismatch", "p1.wav", "quantity"]
    assert t2.endswith("quantity: booked 1000, heard 100 \\x1b[31mRED\\x1b[0m\\x07")
    assert lines[1 + TRADE_IDS.index("=T3")].split()[:3] == ["=T3", "no_call", "-"]
    # the filter, repeated
    r = seeded.ctl(
        "trades",
        "--batch",
        str(seeded.batch_id),
        "--verdict",
        "no_call",
        "--verdict",
        "mismatch",
        token=VIEW,
    )
    assert [ln.split()[0] for ln in r.out.splitlines()[1:]] == ["=T3", "T2"]
    r = seeded.ctl("trades", "--batch", str(seeded.batch_id), "--needs-person", token=VIEW)
    assert [ln.split()[0] for ln in r.out.splitlines()[1:]] == ["=T3", "T2", "T4"]


def test_trades_json_exact(seeded):
    r = seeded.ctl("trades", "--batch", str(seeded.batch_id), "--json", token=VIEW)
    assert r.code == 0
    no_controls(r.out)
    doc = json.loads(r.out)
    assert doc["batch_id"] == seeded.batch_id
    assert [v["trade_id"] for v in doc["verdicts"]] == TRADE_IDS
    t2 = doc["verdicts"][TRADE_IDS.index("T2")]
    assert t2["reason"] == ESC_REASON  # the exact value, escaped only as JSON
    assert t2["decided_at"] == "2026-01-05T04:30:00Z"
    assert t2["fields"][2] == {
        "field": "quantity",
        "booked": "1000",
        "heard": "100",
        "agree": False,
        "note": "",
    }
    assert t2["fields"][4] == {
        "field": "order_type",
        "booked": None,
        "heard": "LIMIT",
        "agree": True,
        "note": "no order type booked",
    }
    assert t2["evidence"] == [
        {"start": 10.0, "end": 22.0, "text": "I would like to buy 100 shares of Infosys"}
    ]
    t3 = doc["verdicts"][TRADE_IDS.index("=T3")]
    assert t3["fields"] == [] and t3["audio_name"] == "" and t3["verdict"] == "no_call"


def test_trades_csv_is_escaped(seeded):
    r = seeded.ctl("trades", "--batch", str(seeded.batch_id), "--format", "csv", token=VIEW)
    assert r.code == 0
    no_controls(r.out)
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert [row["trade_id"] for row in rows] == ["'=T3", "T1", "T2", "T4", "T5"]
    by = {row["trade_id"]: row for row in rows}
    assert by["'=T3"]["reason"] == '\'=HYPERLINK("http://x")'
    assert by["T5"]["reason"] == "'+LLM1 has not run"
    assert by["T2"]["reason"] == "quantity: booked 1000, heard 100 \\x1b[31mRED\\x1b[0m\\x07"
    assert (
        by["T2"]["quantity_booked"],
        by["T2"]["quantity_heard"],
        by["T2"]["quantity_agree"],
    ) == ("1000", "100", "no")
    assert (
        by["T1"]["price_booked"],
        by["T1"]["order_type_booked"],
        by["T1"]["order_type_heard"],
    ) == ("1500.5", "", "LIMIT")
    assert by["T1"]["evidence"] == (
        "[10.0-22.0] I would like to buy 100 shares of Infosys | [32.0-34.0] Yes, I confirm."
    )
    assert by["T4"]["audio_name"] == "p2.wav" and by["T4"]["symbol_booked"] == ""


def test_trades_refusals(seeded):
    r = seeded.ctl("trades", "--batch", "999", token=VIEW)
    assert (r.code, r.err) == (5, "cofictl: NOT_FOUND: no batch 999\n")
    r = seeded.ctl("trades", "--batch", "0", token=VIEW)
    assert (r.code, r.err) == (2, "cofictl: INVALID_ARGUMENT: batch_id must be > 0, got 0\n")
    r = seeded.ctl("trades", "--batch", "1", "--verdict", "maybe", token=VIEW)
    assert r.code == 2 and "invalid choice: 'maybe'" in r.err
    r = seeded.ctl("trades", "--batch", "1", "--json", "--format", "csv", token=VIEW)
    assert (r.code, r.err) == (2, "cofictl: --json and --format exclude each other\n")


def test_batch_shows_verdict_counts(seeded):
    r = seeded.ctl("batch", str(seeded.batch_id), token=VIEW)
    assert r.code == 0
    tail = r.out.split("VERDICT")[1].splitlines()
    assert [ln.split() for ln in tail[1:6]] == [
        ["confirmed", "1"],
        ["mismatch", "1"],
        ["no_call", "1"],
        ["call_unusable", "1"],
        ["pending", "1"],
    ]
    doc = json.loads(seeded.ctl("batch", str(seeded.batch_id), "--json", token=VIEW).out)
    assert doc["summary"]["verdict_counts"] == {
        "call_unusable": 1,
        "confirmed": 1,
        "mismatch": 1,
        "no_call": 1,
        "pending": 1,
    }


def test_evidence_bundle_verifies(seeded, tmp_path):
    out = tmp_path / "T2.zip"
    r = seeded.ctl.run("evidence", "T2", "-o", str(out), token=VIEW)  # a real process
    assert r.code == 0, r.err
    assert r.err.startswith(
        f"cofictl: wrote {out}: trade T2 (batch {seeded.batch_id}, "
        "mismatch), 7 files; recording p1.wav"
    )
    assert not (tmp_path / "T2.zip.partial").exists()
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == BUNDLE
        assert zf.read("recording/p1.wav") == P1
        manifest = json.loads(zf.read("manifest.json"))
        for f in manifest["files"]:
            assert hashlib.sha256(zf.read(f["name"])).hexdigest() == f["sha256"]
        assert json.loads(zf.read("verdict.json"))["reason"] == ESC_REASON
    assert manifest["recording"]["sha256"] == hashlib.sha256(P1).hexdigest()
    assert [f["name"] for f in manifest["files"]] == BUNDLE[:-1]
    r = seeded.ctl("evidence", "--verify", str(out))
    assert r.code == 0, r.err
    assert r.err.splitlines() == [
        f"cofictl: {out}: recording/p1.wav: the recording as first stored "
        f"(sha256 {hashlib.sha256(P1).hexdigest()})",
        f"cofictl: {out}: verified (6 files and the manifest)",
    ]
    assert "recording/p1.wav" in r.out and hashlib.sha256(P1).hexdigest() in r.out
    # tampered: one byte of the transcript changed, a file added
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(
                name, data.replace(b"Infosys", b"Infosyz") if name == "verdict.json" else data
            )
        dst.writestr("extra.txt", b"x")
    r = seeded.ctl("evidence", "--verify", str(bad))
    assert r.code == 1
    lines = r.err.splitlines()
    assert lines[0] == f"cofictl: {bad}: extra.txt: in the zip but not in the manifest"
    assert lines[1].startswith(f"cofictl: {bad}: verdict.json: sha256 ")
    assert lines[-1] == f"cofictl: {bad} does not verify (2 problem(s))"
    r = seeded.ctl("evidence", "--verify", str(tmp_path / "none.zip"))
    assert r.code == 1 and "not a readable zip" in r.err


def test_evidence_refusals(seeded, tmp_path):
    out = tmp_path / "x.zip"
    r = seeded.ctl("evidence", "=T3", "-o", str(out), token=VIEW)
    assert r.code == 5 and r.err.startswith(
        f"cofictl: FAILED_PRECONDITION: trade '=T3' (batch {seeded.batch_id}) is no_call"
    )
    r = seeded.ctl("evidence", "T9", "-o", str(out), token=VIEW)
    assert (r.code, r.err) == (5, "cofictl: NOT_FOUND: no verdict for trade 'T9'\n")
    r = seeded.ctl("evidence", "T1", token=VIEW)
    assert (r.code, r.err) == (2, "cofictl: give TRADE_ID and -o FILE.zip (or --verify FILE.zip)\n")
    fd = t.file_distribution
    path = seeded.daemon.query(
        lambda c: c.execute(
            sa.select(fd.c.filePath).where(fd.c.batchId == seeded.batch_id, fd.c.file == "p2.wav")
        ).scalar_one()
    )
    moved = Path(path).with_name("moved.wav")
    Path(path).rename(moved)
    try:
        r = seeded.ctl("evidence", "T4", "-o", str(out), token=VIEW)
    finally:
        moved.rename(path)
    assert (r.code, r.err) == (
        5,
        f"cofictl: FAILED_PRECONDITION: the recording of trade "
        f"'T4', p2.wav (batch {seeded.batch_id}), is no longer on "
        f"disk at {path}: no bundle without it\n",
    )
    assert not out.exists() and not (tmp_path / "x.zip.partial").exists()


def _p1_path(seeded) -> Path:
    fd = t.file_distribution
    return Path(seeded.daemon.query(
        lambda c: c.execute(
            sa.select(fd.c.filePath).where(fd.c.batchId == seeded.batch_id, fd.c.file == "p1.wav")
        ).scalar_one()
    ))  # fmt: skip


def test_evidence_of_a_recording_altered_since_intake_is_written_and_flagged(seeded, tmp_path):
    """An intact bundle of a recording changed on disk after intake is not evidence of the
    original call: fetch writes it and exits 1 naming both digests; --verify fails on it;
    a manifest edited to claim a match is caught by comparing the digests themselves."""
    path, out = _p1_path(seeded), tmp_path / "T2.zip"
    altered = P1[:-4] + b"\x00\x01\x02\x03"
    was, now = hashlib.sha256(P1).hexdigest(), hashlib.sha256(altered).hexdigest()
    finding = (
        f"recording/p1.wav differs from the recording as first stored: sha256 {now}, "
        f"{len(altered)} bytes in the bundle; {was}, {len(P1)} bytes when first stored"
    )
    path.write_bytes(altered)
    try:
        r = seeded.ctl("evidence", "T2", "-o", str(out), token=VIEW)
    finally:
        path.write_bytes(P1)
    assert r.code == 1
    assert r.err.splitlines()[-1] == f"cofictl: {out}: {finding}"
    with zipfile.ZipFile(out) as zf:
        assert zf.read("recording/p1.wav") == altered
        manifest = json.loads(zf.read("manifest.json"))
    r = seeded.ctl("evidence", "--verify", str(out))
    assert r.code == 1
    assert r.err.splitlines() == [
        f"cofictl: {out}: {finding}",
        f"cofictl: {out} does not verify (1 problem(s))",
    ]
    # A manifest edited to say it matches: the digests still disagree.
    manifest["recording"]["matches_first_stored"] = True
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = json.dumps(manifest).encode() if name == "manifest.json" else src.read(name)
            dst.writestr(name, data)
    r = seeded.ctl("evidence", "--verify", str(forged))
    assert r.code == 1 and f"cofictl: {forged}: {finding}" in r.err.splitlines()
    # The file restored: the bundle is the original recording again.
    r = seeded.ctl("evidence", "T2", "-o", str(out), token=VIEW)
    assert r.code == 0, r.err
    r = seeded.ctl("--json", "evidence", "--verify", str(out))
    assert r.code == 0, r.err
    assert json.loads(r.out)["recording_as_first_stored"] is True
