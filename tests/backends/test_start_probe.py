"""The start probe's failures (issue 20, point 6): a host whose URL is unreachable or lacks its
model starts unhealthy, so no file is sent to it (no retries, no breaker cool-downs), and
every run posts an error event naming it; `cofid check-config --probe` prints one `failed:`
line per failing URL and exits 1.

`cofid.cli.main` runs in a worker thread (its own trio.run) against a cofi-simworker and a
closed port served from this test's loop: the command path a site runs, end to end.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid import cli
from cofid.simworker import SimConfig, serve_simworker
from cofid.store import tables as t


async def closed_port() -> int:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path, good_url: str, dead_port: int, sqlite_url: str, chat_model: str):
    path = tmp_path / "cofid.toml"
    path.write_text(f"""
[database]
url = "{sqlite_url}"
[paths]
data = "{tmp_path / "var"}"
[backends]
lid = "remote"
stt = "remote"
chat = "remote"
denoise = "off"
ivr = "off"
[backends.remote]
probe_timeout_s = 2.0
timeout_s = 5.0
cooldown_s = 600.0
chat_model = "{chat_model}"
[pipelines.batch]
denoise = false
ivr = false
[stages.retry]
attempts = 3
backoff_s = 0.01
max_backoff_s = 0.05
[[gpus]]
name = "good"
url = "{good_url}"
[[gpus]]
name = "dead"
url = "http://127.0.0.1:{dead_port}"
[[gpus]]
name = "nomodel"
url = "{good_url}"
chat_url = "{good_url}/v1"
chat_dialect = "vllm"
[gpus.chat_options]
model = "llama3"
""")
    return path


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def write_calls(directory, n: int) -> None:
    directory.mkdir()
    rng = np.random.default_rng(9)
    for i in range(n):
        sf.write(directory / f"call_{i}.wav",
                 (rng.standard_normal(8000 * 8) * 0.05).astype("float32"), 8000)  # fmt: skip


async def test_failing_urls_start_unhealthy_and_are_error_events(tmp_path, sqlite_url):
    batch = tmp_path / "batch"
    write_calls(batch, 6)
    dead_port = await closed_port()
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, SimConfig(seed=3, time_scale=0.0))
        cfg = write_config(tmp_path, worker.url, dead_port, sqlite_url, "default")

        rc, out, _ = await trio.to_thread.run_sync(
            run_cli, ["--config", str(cfg), "check-config", "--probe"]
        )
        failed = [line for line in out.splitlines() if line.startswith("failed: ")]
        assert rc == 1
        assert failed == [
            f"failed: dead http://127.0.0.1:{dead_port}: unreachable: ConnectError: "
            f"all attempts to connect to 127.0.0.1:{dead_port} failed",
            f"failed: nomodel {worker.url}/v1: chat model 'llama3' is not in /v1/models "
            "(whisper-1, default)",
        ]
        assert "probe: 4 URL(s), 2 with errors" in out

        before = dict(worker.requests)
        rc, _, err = await trio.to_thread.run_sync(
            run_cli, ["--config", str(cfg), "run-batch", str(batch)]
        )
        assert rc == 0, err
        nursery.cancel_scope.cancel()

    engine = sa.create_engine(sqlite_url)
    with engine.connect() as c:
        errors = c.execute(sa.select(t.batch_execution_log.c.gpuIp, t.batch_execution_log.c.errorMessage)
                           .where(t.batch_execution_log.c.eventType == "error")
                           .order_by(t.batch_execution_log.c.gpuIp)).all()  # fmt: skip
        gpus_used = set(c.execute(sa.select(t.file_distribution.c.gpuIp)).scalars())
        calls = c.execute(sa.select(t.call.c.status)).scalars().all()
        retries = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                            .where(t.processing_logs.c.status == "retry")).scalar()  # fmt: skip
    engine.dispose()
    # One error event per failing host, with the probe's message; nothing else failed.
    assert [g for g, _ in errors] == ["dead", "nomodel"]
    assert errors[0][1].startswith(
        f"GPU dead marked unhealthy at start: http://127.0.0.1:{dead_port} (lid, stt, chat): "
        "unreachable: ConnectError"
    )
    assert errors[1][1] == (
        f"GPU nomodel marked unhealthy at start: {worker.url}/v1 (chat): chat model 'llama3' "
        "is not in /v1/models (whisper-1, default)"
    )
    # No file went to a failing host: no retries, every call done on the good one.
    assert retries == 0
    assert calls == ["Complete"] * 6
    assert gpus_used == {"good"}
    assert worker.requests["lid"] - before.get("lid", 0) == 6
