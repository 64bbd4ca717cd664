"""Database faults: MariaDB killed and restarted mid-batch; unreachable at start."""

import logging
import subprocess
import sys

import pytest
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.testing.batches import fake_config, to_toml, write_fixture_batch
from cofid.testing.dbdump import diff_dumps, normalized_dump
from tests.mariadb_server import MariaDBServer


@pytest.fixture(scope="module")
def own_mariadb(mariadb):  # noqa: ARG001 - the session fixture decides skip/fail when absent
    server = MariaDBServer()
    server.start()
    yield server
    server.stop()


async def run_batch(cfg, directory, during=None):
    async with open_app(cfg) as app:
        batch_id = await app.prepare_batch(directory)
        async with trio.open_nursery() as n:
            if during is not None:
                n.start_soon(during, app)
            run = await app.run_batch(batch_id)
            n.cancel_scope.cancel()
        return run


async def test_mariadb_restarted_mid_batch_loses_nothing(tmp_path, own_mariadb, caplog):
    caplog.set_level(logging.WARNING)
    expected = write_fixture_batch(tmp_path / "batch", extra_calls=30)
    reference_url = own_mariadb.create_database("reference")
    ref_cfg = parse_config(fake_config(reference_url, tmp_path / "ref"))
    await run_batch(ref_cfg, tmp_path / "batch")

    url = own_mariadb.create_database("faulty")
    cfg_dict = fake_config(url, tmp_path / "faulty", latency_s=0.01)
    cfg_dict["database"]["unavailable_retry_s"] = 60
    cfg = parse_config(cfg_dict)
    restarted = trio.Event()

    async def restart_when_busy(app):
        while app.writer.items_committed < 60:
            await trio.sleep(0.01)
        await trio.to_thread.run_sync(own_mariadb.restart)
        restarted.set()

    run = await run_batch(cfg, tmp_path / "batch", during=restart_when_busy)
    assert restarted.is_set()
    assert sum(c.done for c in run.counters.values()) > 0
    assert any("database unreachable" in r.getMessage() for r in caplog.records)
    diff = diff_dumps(normalized_dump(reference_url), normalized_dump(url))
    assert not diff, "\n".join(diff)
    assert expected["total_files"] > 30


def test_unreachable_database_at_start_is_a_clear_error(tmp_path):
    cfg = fake_config(f"mysql+pymysql://root@/x?unix_socket={tmp_path}/gone.sock", tmp_path)
    (tmp_path / "cofid.toml").write_text(to_toml(cfg))
    write_fixture_batch(tmp_path / "batch")
    r = subprocess.run([sys.executable, "-m", "cofid.cli", "--config", str(tmp_path / "cofid.toml"),
                        "run-batch", str(tmp_path / "batch")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "database unreachable" in r.stderr
    assert "Traceback" not in r.stderr
