"""The bad-input corpus, file-system side: hostile batch drops on a real `cofid serve`.

One daemon subprocess per database (SQLite, MariaDB) watches a root, with its operator
token in a token file; each case drops something into the root (or asks StartBatch) and
checks the exact outcome: the message (which never holds a secret or the raw bytes of a
name), the gRPC code, the error event, and that nothing else changed (no batch, task or
call rows beyond the expected ones, the daemon still serving). The rules are
cofid.service.intake's (README, "Batch directory format"). A full data disk is the last
case: a tmpfs of its own, and a real SQLite filling up in the store.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.commands.run_batch import EXIT_FATAL
from cofid.store.db import Database
from cofid.testing.batches import fake_config, to_toml
from protos.cofi.v1 import cofi_pb2 as pb
from tests.reliability.daemon import ENV, ROOT, Daemon, Probe, wait_for

TOKEN = "op-secret-4f1c9e2b7a6d58e3"  # the operator token, in a token file outside the root
C = grpc.StatusCode


def wav(seed: int = 0) -> bytes:
    x = (np.random.default_rng(seed).standard_normal(800) * 0.003).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 8000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class Hostile:
    """The daemon under attack, its root, and probes of what it did."""

    def __init__(self, base: Path, url: str) -> None:
        self.base, self.url = base, url
        self.root, self.outside = base / "root", base / "outside"
        self.root.mkdir()
        self.outside.mkdir()
        self.token_file = base / "secrets" / "operator.token"
        self.token_file.parent.mkdir()
        self.token_file.write_text(TOKEN + "\n")
        cfg = fake_config(url, base / "data")
        cfg["grpc"] = {
            "listen": [f"unix:{base / 'cofid.sock'}"],
            "auth": True,
            "tokens": [{"name": "ops", "role": "operator", "token_file": str(self.token_file)}],
        }
        cfg["watch"] = {"roots": [str(self.root)], "scan_interval_s": 0.2}
        cfg["service"] = {"shutdown_deadline_s": 10.0, "log_level": "INFO"}
        self.cfg = base / "cofid.toml"
        self.cfg.write_text(to_toml(cfg))
        self.daemon = Daemon(self.cfg, base / "cofid.log", base / "cofid.sock")
        self.probe = Probe(url)
        self.channel: grpc.Channel | None = None

    def start(self) -> None:
        before = self.daemon.serving_count()
        self.daemon.start()
        self.daemon.wait_serving(before)
        self.channel, self.stub = self.daemon.stub()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.daemon.stop()
        self.probe.close()

    # ---- acting ---------------------------------------------------------------------

    def batch(self, d: Path | bytes, audio: list[str | bytes], *, ready: bool = True) -> Path:
        """A batch directory: `audio` files (str or raw bytes names), marker last."""
        os.makedirs(d, exist_ok=True)
        for i, name in enumerate(audio):
            raw = os.path.join(os.fsencode(d), os.fsencode(name))
            with open(raw, "wb") as f:
                f.write(wav(i))
        if ready:
            Path(os.fsdecode(d), ".ready").write_text("")
        return Path(os.fsdecode(d))

    def start_batch(self, directory: str) -> tuple[grpc.StatusCode, str]:
        try:
            self.stub.StartBatch(
                pb.StartBatchRequest(directory=directory),
                metadata=(("authorization", f"Bearer {TOKEN}"),),
                timeout=30,
            )
            return C.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details()

    # ---- probing --------------------------------------------------------------------

    def errors(self, stage: str | None = None) -> list[sa.Row]:
        return [
            r
            for r in self.probe.rows(
                "SELECT batchId, stage, fileName, errorMessage FROM batchExecutionLog "
                "WHERE eventType = 'error' ORDER BY id"
            )
            if stage is None or r.stage == stage
        ]

    def wait_error(self, file_name: str, stage: str = "watcher") -> sa.Row:
        def found() -> sa.Row | None:
            rows = [r for r in self.errors(stage) if r.fileName == file_name]
            return rows[0] if rows else None

        return wait_for(found, 30, f"an error event for {file_name!r}")

    def counts(self) -> dict[str, int]:
        return {
            t: self.probe.scalar(f"SELECT COUNT(*) FROM {t}")
            for t in ("batchStatus", "`call`", "task", "fileDistribution")
        }

    def batch_of(self, d: Path) -> Any:
        return self.probe.rows(
            "SELECT id, status FROM batchStatus WHERE sourceDir = :k", k=str(d.resolve())
        )

    def wait_completed(self, d: Path) -> int:
        rows = wait_for(
            lambda: [r for r in self.batch_of(d) if r.status == "Completed"],
            60,
            f"batch {d.name} to complete",
        )
        return rows[0].id

    def calls(self, batch_id: int) -> list[str]:
        return sorted(
            r.audioName
            for r in self.probe.rows("SELECT audioName FROM `call` WHERE batchId = :b", b=batch_id)
        )

    def no_secret_anywhere(self) -> None:
        """Not in the log, nor in any row of any table."""
        assert TOKEN not in self.daemon.log_text()
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as c:
                for table in sa.inspect(c).get_table_names():
                    rows = c.execute(sa.text(f"SELECT * FROM `{table}`")).fetchall()
                    assert all(TOKEN not in str(tuple(r)) for r in rows), table
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def hostile(request, tmp_path_factory) -> Iterator[Hostile]:
    base = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{base / 'cofi.db'}"
    else:
        url = request.getfixturevalue("mariadb").create_database("hostile")
    h = Hostile(base, url)
    h.start()
    yield h
    assert h.daemon.alive(), h.daemon.log_text()[-3000:]
    h.no_secret_anywhere()
    h.close()


@contextlib.contextmanager
def unchanged(h: Hostile) -> Iterator[None]:
    """Nothing of the refused input reached the tables, and the daemon still serves."""
    before = h.counts()
    yield
    assert h.counts() == before
    assert h.daemon.alive(), h.daemon.log_text()[-3000:]


# ---- class 1: secrets ----------------------------------------------------------------------


def test_csv_symlinked_to_the_token_file_is_never_read(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "leak-link", ["a1.wav"], ready=False)
        (d / "callMetadata.csv").symlink_to(h.token_file)
        code, msg = h.start_batch(str(d))
        assert code == C.FAILED_PRECONDITION
        assert msg == (
            f"{d}: callMetadata.csv is a symlink that leads outside the batch "
            f"directory (only links to files inside it are followed)"
        )
        (d / ".ready").write_text("")
        ev = h.wait_error("leak-link")
        assert (ev.batchId, ev.errorMessage) == (0, msg)
    assert TOKEN not in h.daemon.log_text()


def test_csv_hard_linked_to_the_token_file_is_refused_by_inode(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "leak-hardlink", ["a1.wav"], ready=False)
        os.link(h.token_file, d / "callMetadata.csv")
        code, msg = h.start_batch(str(d))
        assert code == C.FAILED_PRECONDITION
        assert msg == (
            f"{d}: callMetadata.csv is one of the daemon's own secret files "
            f"(configuration, token, key, database)"
        )
    assert TOKEN not in msg


def test_a_header_that_is_not_csv_is_never_quoted(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "leak-header", ["a1.wav"], ready=False)
        (d / "tradeMetadata.csv").write_text(f"{TOKEN},tradeId,{TOKEN[::-1]}\n1,2,3\n")
        code, msg = h.start_batch(str(d))
        assert code == C.FAILED_PRECONDITION
        assert msg == (
            f"{d}: tradeMetadata.csv is missing required columns: clientCode, "
            f"symbol, side, quantity, price, tradeTime (its header line has 3 "
            f"column(s), 1 of them required ones)"
        )
        (d / ".ready").write_text("")
        assert h.wait_error("leak-header").errorMessage == msg
    assert TOKEN not in h.daemon.log_text() and TOKEN[::-1] not in h.daemon.log_text()


# ---- class 2: names that are not UTF-8 -----------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_refused_and_the_batch_runs(hostile: Hostile) -> None:
    h = hostile
    d = h.batch(h.root / "bad-file-name", ["ok1.wav", b"caf\xe9.wav", "ok2.wav"])
    batch_id = h.wait_completed(d)
    assert h.calls(batch_id) == ["ok1.wav", "ok2.wav"]
    ev = [r for r in h.errors("file_distribution") if r.batchId == batch_id]
    assert [(r.fileName, r.errorMessage) for r in ev] == [
        (
            "caf\\xe9.wav",
            "name 'caf\\xe9.wav' is not valid UTF-8; the file is not part of the batch",
        )
    ]
    assert h.daemon.alive()


def test_a_directory_name_that_is_not_utf8_survives_scans_and_restarts(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        h.batch(os.fsencode(h.root) + b"/drop\xff\xfe", ["a1.wav"])
        ev = h.wait_error("drop\\xff\\xfe")
        assert ev.errorMessage == (
            f"{h.root}/drop\\xff\\xfe: name 'drop\\xff\\xfe' is not valid UTF-8"
        )
        # The start-up scan meets it again: the daemon serves, and says it once more.
        h.daemon.stop()
        h.start()
        wait_for(
            lambda: len([r for r in h.errors("watcher") if r.fileName == ev.fileName]) == 2,
            30,
            "the start-up scan to refuse it again",
        )
    good = h.batch(h.root / "after-bad-dir", ["g1.wav"])
    assert h.calls(h.wait_completed(good)) == ["g1.wav"]


# ---- class 9: control characters, a root, CSV-named directories, FIFOs ----------------------


def test_names_with_control_characters_are_refused_at_intake(hostile: Hostile) -> None:
    h = hostile
    d = h.batch(
        h.root / "ctrl-names", ["fine.wav", "two\nlines.wav", "red\x1b[31m.wav", "rtl\u202egnp.wav"]
    )
    batch_id = h.wait_completed(d)
    assert h.calls(batch_id) == ["fine.wav"]
    ev = sorted(
        (r.fileName, r.errorMessage) for r in h.errors("file_distribution") if r.batchId == batch_id
    )
    assert ev == sorted(
        [
            (
                n,
                f"name '{n}' contains the control character '{c}'; the file is not part of the batch",
            )
            for n, c in [
                ("two\\x0alines.wav", "\\x0a"),
                ("red\\x1b[31m.wav", "\\x1b"),
                ("rtl\\u202egnp.wav", "\\u202e"),
            ]
        ]
    )
    with unchanged(h):
        h.batch(h.root / "tab\tdir", ["a.wav"])
        ev_dir = h.wait_error("tab\\x09dir")
        assert ev_dir.errorMessage.endswith(
            "name 'tab\\x09dir' contains the control character '\\x09'"
        )
        code, msg = h.start_batch(str(h.root / "tab\tdir"))
        assert (code, msg) == (
            C.INVALID_ARGUMENT,
            f"directory '{h.root}/tab\\x09dir' contains the control character '\\x09'",
        )


def test_start_batch_on_a_root_itself_is_invalid(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        (h.root / "loose.wav").write_bytes(wav())
        assert h.start_batch(str(h.root)) == (
            C.INVALID_ARGUMENT,
            f"directory '{h.root}' is a batch root itself; name a batch directory inside it",
        )
        (h.root / "loose.wav").unlink()


@pytest.mark.parametrize("name", ["tradeMetadata.csv", "callMetadata.csv", "batch.toml"])
def test_a_directory_named_like_an_input_file_is_a_precondition(
    hostile: Hostile, name: str
) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / f"dir-named-{name}", ["a1.wav"], ready=False)
        (d / name).mkdir()
        code, msg = h.start_batch(str(d))
        assert (code, msg) == (C.FAILED_PRECONDITION, f"{d}: {name} is a directory, not a file")


def test_a_fifo_named_like_a_csv_is_refused_without_blocking(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "fifo-csv", ["a1.wav"], ready=False)
        os.mkfifo(d / "callMetadata.csv")
        assert h.start_batch(str(d)) == (
            C.FAILED_PRECONDITION,
            f"{d}: callMetadata.csv is not a regular file",
        )
        (d / ".ready").write_text("")
        assert (
            h.wait_error("fifo-csv").errorMessage == f"{d}: callMetadata.csv is not a regular file"
        )


def test_a_symlink_loop_named_like_a_csv_is_a_precondition(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "loop-csv", ["a1.wav"], ready=False)
        (d / "callMetadata.csv").symlink_to(d / "callMetadata.csv")
        assert h.start_batch(str(d)) == (
            C.FAILED_PRECONDITION,
            f"{d}: callMetadata.csv is a symlink loop",
        )


def test_an_unreadable_csv_is_a_precondition_for_run_batch(tmp_path: Path) -> None:
    """`cofid run-batch` that may not read the CSV (as root: without the capabilities that
    let root read a mode-000 file): refused before anything is written."""
    d = tmp_path / "batch"
    d.mkdir()
    (d / "a1.wav").write_bytes(wav())
    (d / "tradeMetadata.csv").write_text("tradeId\n")
    (d / "tradeMetadata.csv").chmod(0)
    cfg = tmp_path / "cofid.toml"
    cfg.write_text(to_toml(fake_config(f"sqlite:///{tmp_path / 'cofi.db'}", tmp_path / "data")))
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    r = subprocess.run(
        [
            *(drop if os.geteuid() == 0 else []),
            sys.executable,
            "-m",
            "cofid.cli",
            "--config",
            str(cfg),
            "run-batch",
            str(d),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=ENV,
    )
    assert (r.returncode, r.stderr) == (
        EXIT_FATAL,
        f"cofid: {d}: tradeMetadata.csv cannot be read (Permission denied)\n",
    )
    probe = Probe(f"sqlite:///{tmp_path / 'cofi.db'}")
    assert probe.scalar("SELECT COUNT(*) FROM batchStatus", default=0) == 0
    probe.close()


def test_a_refused_directory_gets_one_error_event(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        d = h.batch(h.root / "no-audio", [], ready=True)
        (d / "notes.txt").write_text("nothing to hear")
        ev = h.wait_error("no-audio")
        assert ev.errorMessage.startswith(f"{d}: no audio files")
    # A later batch proves the watcher scanned the refused directory again since.
    h.wait_completed(h.batch(h.root / "after-no-audio", ["n1.wav"]))
    assert [r.fileName for r in h.errors("watcher")].count("no-audio") == 1


# ---- class 3: symlinks -----------------------------------------------------------------


def test_audio_symlinks_are_followed_only_inside_the_batch(hostile: Hostile) -> None:
    h = hostile
    (h.outside / "elsewhere.wav").write_bytes(wav(5))
    d = h.batch(h.root / "audio-links", ["real.wav"], ready=False)
    (d / "inside-link.wav").symlink_to(d / "real.wav")
    (d / "outside-link.wav").symlink_to(h.outside / "elsewhere.wav")
    (d / ".ready").write_text("")
    batch_id = h.wait_completed(d)
    assert h.calls(batch_id) == ["inside-link.wav", "real.wav"]
    ev = [
        (r.fileName, r.errorMessage) for r in h.errors("file_distribution") if r.batchId == batch_id
    ]
    assert ev == [
        (
            "outside-link.wav",
            "outside-link.wav is a symlink that leads outside the "
            "batch directory (only links to files inside it are followed); the file "
            "is not part of the batch",
        )
    ]


def test_a_directory_symlink_leaving_the_root_is_not_a_batch(hostile: Hostile) -> None:
    h = hostile
    with unchanged(h):
        target = h.batch(h.outside / "foreign", ["f1.wav"])
        (h.root / "foreign-link").symlink_to(target, target_is_directory=True)
        ev = h.wait_error("foreign-link")
        assert ev.errorMessage == (
            f"{h.root}/foreign-link: foreign-link is a symlink that "
            f"leads outside the batch root (only links to "
            f"directories inside it are followed)"
        )
        # StartBatch through the link: resolved before the roots are compared.
        assert h.start_batch(str(h.root / "foreign-link")) == (
            C.INVALID_ARGUMENT,
            f"directory '{h.root}/foreign-link' is outside the batch roots ({h.root}) once "
            f"its symlinks are resolved",
        )
        # "..": normalised paths only, and a prefix of the root's name is not the root.
        sibling = h.batch(Path(f"{h.root}-evil") / "b", ["e1.wav"], ready=False)
        assert h.start_batch(str(sibling)) == (
            C.INVALID_ARGUMENT,
            f"directory '{sibling}' is outside the batch roots ({h.root})",
        )


# ---- class 10a: a full data disk ---------------------------------------------------------


def test_sqlite_full_makes_the_store_wait_for_space(tmp_path: Path, caplog) -> None:
    """A real SQLITE_FULL (the database's page limit, which needs no root): the write
    waits, says so, and commits once there is room again."""
    caplog.set_level(logging.WARNING, logger="cofid.store.db")
    url = f"sqlite:///{tmp_path / 'full.db'}"
    limit = {"pages": 0}

    async def main() -> None:
        db = Database(url, unavailable_retry_s=1.0)

        @sa.event.listens_for(db.engine, "checkout")
        def _cap(dbapi_conn, _rec, _proxy):  # noqa: ANN001 - SQLAlchemy's hook
            if limit["pages"]:
                dbapi_conn.execute(f"PRAGMA max_page_count = {limit['pages']}")

        await db.write(lambda c: c.exec_driver_sql("CREATE TABLE t (x TEXT)"))
        pages = await db.read(lambda c: c.exec_driver_sql("PRAGMA page_count").scalar())
        limit["pages"] = pages + 1
        done = trio.Event()

        async def big_write() -> None:
            await db.write(
                lambda c: c.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 200_000,))
            )
            done.set()

        async with trio.open_nursery() as n:
            n.start_soon(big_write)
            while not any("database storage is full" in r.getMessage() for r in caplog.records):
                await trio.sleep(0.05)
            await trio.sleep(1.5)  # past unavailable_retry_s: a full disk has no deadline
            assert not done.is_set()
            limit["pages"] = 10_000
            await done.wait()
        assert await db.read(lambda c: c.exec_driver_sql("SELECT COUNT(*) FROM t").scalar()) == 1
        db.dispose()

    trio.run(main)
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == (
        "database storage is full (database or disk is full); waiting for space, nothing is lost"
    )
    assert said[-1].startswith("database storage has space again after ")


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="a size-limited tmpfs needs root; "
    "test_sqlite_full_makes_the_store_wait_for_space covers the store",
)
def test_a_full_data_disk_makes_the_daemon_wait_not_exit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)], check=True)
    h = None
    try:
        base = tmp_path / "site"
        base.mkdir()
        h = Hostile(base, f"sqlite:///{data / 'cofi.db'}")
        h.start()
        filler = data / "filler"
        with open(filler, "wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * (1 << 20))
        d = h.batch(h.root / "during-full-disk", [f"f{i}.wav" for i in range(6)])
        wait_for(
            lambda: "database storage is full" in h.daemon.log_text() or not h.daemon.alive(),
            60,
            "the daemon to notice the full disk",
        )
        assert h.daemon.alive(), h.daemon.log_text()[-3000:]
        assert h.batch_of(d) == []
        filler.unlink()
        batch_id = h.wait_completed(d)
        assert h.calls(batch_id) == [f"f{i}.wav" for i in range(6)]
        assert (
            h.probe.scalar(
                "SELECT COUNT(*) FROM fileDistribution WHERE batchId = :b "
                "AND failedStage IS NOT NULL",
                b=batch_id,
            )
            == 0
        )
        assert "database storage has space again" in h.daemon.log_text()
        assert h.daemon.alive()
    finally:
        if h is not None:
            h.close()
        subprocess.run(["umount", "-l", str(data)], check=False)
