"""A real cofid control plane on loopback with fake backends, and a blocking grpc client
driven from worker threads (a blocking call on the trio thread would stall the server's
trio side, which the handlers call into)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.api.auth import bearer_metadata
from cofid.backends.fake import FakeBackends
from cofid.config import parse_config
from cofid.store import tables as t
from cofid.testing.daemon import InProcessDaemon
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

OP, VIEW = "op-secret-token", "view-secret-token"


def wav_bytes(seconds: float = 0.5, rate: int = 8000, freq: float = 440.0) -> bytes:
    x = 0.1 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)
    buf = io.BytesIO()
    sf.write(buf, x.astype("float32"), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_batch_dir(d: Path, names: list[str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        (d / n).write_bytes(wav_bytes(freq=300.0 + 10 * i))
    return d


def upload_messages(files: dict[str, bytes], *, replace: bool = False, chunk: int = 4096,
                    sha: bool = True, header_extra: dict | None = None) -> list[pb.UploadRequest]:
    header = pb.UploadHeader(replace=replace, **(header_extra or {}))
    for name, data in files.items():
        f = pb.UploadFile(name=name, size_bytes=len(data))
        if sha:
            f.sha256 = hashlib.sha256(data).hexdigest()
        header.files.append(f)
    msgs = [pb.UploadRequest(header=header)]
    for i, data in enumerate(files.values()):
        for off in range(0, len(data), chunk):
            msgs.append(pb.UploadRequest(chunk=pb.UploadChunk(
                file_index=i, data=data[off:off + chunk], offset=off)))
    return msgs


@dataclass
class Harness:
    cfg: Any
    service: Any
    address: str
    fake: FakeBackends
    channel: grpc.Channel
    stub: pb_grpc.CofiStub
    stop: trio.Event
    finished: trio.Event
    tmp: Path
    extra: dict = field(default_factory=dict)

    @property
    def app(self):
        return self.service.app

    async def call(self, method: str, request, token: str | None = OP, **kw):
        md = bearer_metadata(token) if token else None
        fn = getattr(self.stub, method)
        return await trio.to_thread.run_sync(lambda: fn(request, metadata=md, timeout=30, **kw))

    async def code_of(self, method: str, request, token: str | None = OP):
        try:
            await self.call(method, request, token)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""

    async def upload(self, files: dict[str, bytes], token: str | None = OP, **kw):
        msgs = upload_messages(files, **kw)
        return await self.call("UploadAudit", iter(msgs), token)

    async def wait_task(self, task_id: str, timeout: float = 20.0) -> pb.Task:
        with trio.fail_after(timeout):
            while True:
                task = await self.call("GetTask", pb.GetTaskRequest(task_id=task_id), VIEW)
                if task.state not in ("queued", "running"):
                    return task
                await trio.sleep(0.02)

    async def query(self, fn: Callable):
        return await self.app.db.read(fn)

    async def count(self, table, *where) -> int:
        return await self.query(lambda c: c.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)).scalar())

    async def rows(self, table, *where, order=None) -> list:
        def q(c):
            stmt = sa.select(table).where(*where)
            return list(c.execute(stmt.order_by(order if order is not None else table.c.id)))

        return await self.query(q)


def make_cfg(tmp: Path, db_url: str | None = None, grpc_extra: dict | None = None,
             **extra) -> Any:
    raw: dict[str, Any] = {
        "paths": {"data": str(tmp / "data")},
        "grpc": {
            "listen": ["127.0.0.1:0"],
            "tokens": [{"name": "op", "role": "operator", "token": OP},
                       {"name": "view", "role": "viewer", "token": VIEW}],
            "heartbeat_s": 0.2,
            **(grpc_extra or {}),
        },
        "stages": {"retry": {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02}},
        "service": {"shutdown_deadline_s": 5.0},
    }
    if db_url:
        raw["database"] = {"url": db_url}
    for k, v in extra.items():
        raw.setdefault(k, {}).update(v)
    return parse_config(raw)


@pytest.fixture
async def start_server(tmp_path, nursery):
    started: list[tuple[InProcessDaemon, Harness]] = []

    async def start(db_url: str | None = None, grpc_extra: dict | None = None,
                    fake: FakeBackends | None = None, subdir: str = "srv", **extra) -> Harness:
        cfg = make_cfg(tmp_path / subdir, db_url, grpc_extra, **extra)
        fake = fake or FakeBackends()
        d = InProcessDaemon(cfg, fake, nursery)
        await d.start()
        channel = grpc.insecure_channel(d.bound[0])
        h = Harness(cfg, d.service, d.bound[0], fake, channel, pb_grpc.CofiStub(channel),
                    d.stop, d.finished, tmp_path / subdir)
        started.append((d, h))
        return h

    yield start
    for d, h in started:
        await d.shutdown()
        h.channel.close()


def seed_counts_query(batch_id: int):
    def q(c):
        def n(table, *where):
            return c.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()

        calls = [t.call.c.id.in_(sa.select(t.call.c.id).where(t.call.c.batchId == batch_id))]
        return {
            "fd": n(t.file_distribution, t.file_distribution.c.batchId == batch_id),
            "call": n(t.call, t.call.c.batchId == batch_id),
            "lid": n(t.lid_status, t.lid_status.c.batchId == batch_id),
            "transcript": n(t.transcript, t.transcript.c.callId.in_(
                sa.select(t.call.c.id).where(*calls))),
            "conversation": n(t.call_conversation, t.call_conversation.c.callId.in_(
                sa.select(t.call.c.id).where(*calls))),
            "answer": n(t.audit_answer, t.audit_answer.c.callId.in_(
                sa.select(t.call.c.id).where(*calls))),
        }

    return q
