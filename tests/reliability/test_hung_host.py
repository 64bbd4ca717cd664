"""A GPU host that accepts TCP and never answers (SIGSTOPped: the kernel still completes
the handshakes into the listen backlog) is suspect after its first timeout: the retries
go to the healthy host, which does every file, and the hung host gets no new request
(issue 14, class 10b). Real HTTP: a simulated host and a listening socket nobody serves."""

from __future__ import annotations

import socket

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.backends.health import CircuitBreaker
from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig, serve_simworker
from cofid.store import tables as t

N_FILES = 12
SLOTS = 2


def write_calls(directory) -> None:
    directory.mkdir()
    rng = np.random.default_rng(7)
    for i in range(N_FILES):
        sf.write(
            directory / f"h{i:02}.wav",
            (rng.standard_normal(8000 * 7) * 0.05).astype("float32"),
            8000,
        )


def stopped_host() -> socket.socket:
    """A listener that never accepts: what a SIGSTOPped server looks like from outside."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def connections_made(s: socket.socket) -> int:
    """The connections the daemon opened to the stopped host (still in the backlog)."""
    s.setblocking(False)
    n = 0
    while True:
        try:
            conn, _addr = s.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


async def test_retries_leave_a_hung_host_for_the_idle_healthy_one(tmp_path, sqlite_url):
    write_calls(tmp_path / "batch")
    hung = stopped_host()
    async with trio.open_nursery() as nursery:
        healthy = await nursery.start(serve_simworker, SimConfig(seed=3, time_scale=0.0))
        cfg = parse_config(
            {
                "database": {"url": sqlite_url},
                "paths": {"data": str(tmp_path / "var")},
                # the hung host first: on equal load the pool picks it
                "gpus": [
                    {
                        "name": "gpu-hung",
                        "url": f"http://127.0.0.1:{hung.getsockname()[1]}",
                        "slots": SLOTS,
                    },
                    {"name": "gpu-ok", "url": healthy.url, "slots": SLOTS},
                ],
                "backends": {
                    "lid": "remote",
                    "stt": "remote",
                    "chat": "remote",
                    # 5 failures in a row would open the breaker without the timeout
                    # rule; no probe during the batch (cooldown)
                    "remote": {
                        "timeout_s": 0.5,
                        "connect_timeout_s": 0.5,
                        "failure_threshold": 5,
                        "cooldown_s": 600,
                    },
                },
                "pipelines": {"batch": {"denoise": False, "ivr": False}},
                "stages": {"retry": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.02}},
            }
        )
        async with open_app(cfg) as app:
            run = await app.run_batch(await app.prepare_batch(tmp_path / "batch"))
            pool = {g.name: g for g in app.pool.gpus}
            assert not pool["gpu-hung"].healthy and pool["gpu-hung"].done == 0
            assert pool["gpu-ok"].healthy
        nursery.cancel_scope.cancel()
    sent_to_hung = connections_made(hung)
    hung.close()

    e = sa.create_engine(sqlite_url)
    with e.connect() as c:
        status = c.execute(sa.select(t.batch_status.c.status)).scalar_one()
        files = c.execute(
            sa.select(
                t.file_distribution.c.file,
                t.file_distribution.c.gpuIp,
                t.file_distribution.c.failedStage,
            )
        ).all()
        calls = c.execute(sa.select(t.call.c.status)).scalars().all()
        logs = c.execute(sa.select(t.processing_logs.c.status, t.processing_logs.c.details)).all()
    e.dispose()
    assert status == "Completed"
    assert len(files) == N_FILES and all(f.failedStage is None for f in files), files
    assert {f.gpuIp for f in files} == {"gpu-ok"}
    assert set(calls) <= {"Complete", "ShortCall"} and len(calls) == N_FILES
    for stage, cnt in run.counters.items():
        assert cnt.failed == 0 and cnt.done + cnt.skipped == N_FILES, stage
    # The hung host got at most what its slots held before the first timeout; each of
    # those requests was retried once, and every success came from the healthy host.
    retries = [d for s, d in logs if s == "retry"]
    assert 1 <= sent_to_hung <= SLOTS
    assert len(retries) == sent_to_hung
    assert {(d or {}).get("gpu") for s, d in logs if s == "success"} == {"gpu-ok"}


def test_a_timeout_opens_a_closed_breaker_at_once_and_a_later_one_changes_nothing():
    now = [0.0]
    b = CircuitBreaker(failure_threshold=5, cooldown_s=10, clock=lambda: now[0])
    b.record_failure()
    assert b.state == "closed"  # an ordinary failure counts towards the threshold
    b.record_timeout()
    assert (b.state, b.consecutive_failures) == ("open", 2)
    now[0] = 5.0
    b.record_timeout()  # a request sent before it opened: the cooldown is not restarted
    now[0] = 10.0
    assert b.allow_request() and not b.allow_request()  # the one probe
    b.record_timeout()  # the probe timed out too: open again, a new cooldown
    assert b.state == "open"
    now[0] = 20.0
    assert b.allow_request()
    b.record_success()
    assert (b.state, b.consecutive_failures) == ("closed", 0)
