"""A weak model's refused reply (issue 20): the retry tells the model why, and the server
that answered stays healthy.

The chat server is a cofi-simworker behind a handler that plays SmolLM2 on llama-server:
its first LLM1 reply for each call runs into max_tokens (finish_reason "length"). A retry
that sends the same request again would get the same greedy decode again; cofid's retry
carries the refusal, and the stand-in answers that one properly. The entry's breaker opens
after one failure, so a refused reply counted as a host failure would show at once.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig
from cofid.simworker.http_server import HttpServer, Request, Response, json_response
from cofid.simworker.server import SimWorker
from cofid.store import tables as t

REFUSAL_TOLD = "Your previous reply was refused: the reply was cut off at the token limit"


def cut_off(model: str) -> Response:
    return json_response({
        "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "finish_reason": "length",
                     "message": {"role": "assistant", "content": '{"trades": [{"symbol": "TATA'}}],
    })  # fmt: skip


async def test_a_cut_off_reply_is_retried_with_the_refusal_and_the_host_stays_healthy(
    tmp_path, sqlite_url
):
    batch = tmp_path / "batch"
    batch.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        sf.write(batch / f"call_{i}.wav",
                 (rng.standard_normal(8000 * 8) * 0.05).astype("float32"), 8000)  # fmt: skip
    worker = SimWorker(SimConfig(seed=4, time_scale=0.0))
    llm1_users: list[str] = []

    async def chat(request: Request) -> Response:
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            body = request.json()
            if body["response_format"]["schema"]["properties"].keys() == {"trades"}:
                user = body["messages"][1]["content"]
                llm1_users.append(user)
                if REFUSAL_TOLD not in user:
                    return cut_off(body["model"])
        return await worker.handle(request)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(HttpServer(chat).serve)
        cfg = parse_config({
            "database": {"url": sqlite_url},
            "paths": {"data": str(tmp_path / "var")},
            "gpus": [{"name": "g", "url": server.url, "chat_dialect": "llama.cpp",
                      "slots": 2}],
            "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off",
                         "ivr": "off", "remote": {"timeout_s": 60.0, "connect_timeout_s": 2.0,
                                                  "failure_threshold": 1}},
            "stages": {"retry": {"attempts": 3, "backoff_s": 0.0}},
            "pipelines": {"batch": {"denoise": False, "ivr": False}},
        })  # fmt: skip
        async with open_app(cfg) as app:
            await app.run_batch(await app.prepare_batch(batch))
            gpu = app.pool.gpus[0]
            assert gpu.healthy and gpu.requests_failed == 2
        nursery.cancel_scope.cancel()

    # Each call: one cut-off reply, then one retry that names the refusal, and no third.
    assert len(llm1_users) == 4
    assert sum(REFUSAL_TOLD in u for u in llm1_users) == 2
    firsts = [u for u in llm1_users if REFUSAL_TOLD not in u]
    retries = [u for u in llm1_users if REFUSAL_TOLD in u]
    assert sorted(u.split("\n\nYour previous reply was refused")[0] for u in retries) == sorted(firsts)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as c:
        calls = c.execute(sa.select(t.call.c.status)).scalars().all()
        logs = c.execute(
            sa.select(t.processing_logs.c.stage_name, t.processing_logs.c.status,
                      t.processing_logs.c.attempt)
            .where(t.processing_logs.c.stage_name == "llm1")
            .order_by(t.processing_logs.c.id)
        ).all()  # fmt: skip
        events = c.execute(sa.select(t.batch_execution_log.c.metadata)).scalars().all()
    engine.dispose()
    assert calls == ["Complete", "Complete"]
    assert sorted((s, a) for _, s, a in logs) == [("retry", 1), ("retry", 1),
                                                  ("success", 2), ("success", 2)]
    unhealthy = [m for m in events if m and m.get("gpu_healthy") is False]
    assert unhealthy == []
