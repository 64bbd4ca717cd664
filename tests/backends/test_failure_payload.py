"""A file failed by a model server carries what failed (issue 17, "failure events carry no
request payload"): the batchExecutionLog error event of that file holds, in its payload,
the request's URL as scheme://host:port/path, the model, the HTTP status, the server's
message (one line, control characters removed, bounded) and, for a reply the model got
wrong, the reply's text; the base URL's user, password and query key appear nowhere in the
database (events, processing_logs, failureReason).

Real loopback servers: a cofi-simworker serves what must work, a stand-in answers the one
request that must fail."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.backends.remote_http import REPLY_LIMIT
from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig
from cofid.simworker.http_server import HttpServer, Request, Response, json_response
from cofid.simworker.server import SimWorker
from cofid.store import tables as t

USER, PASSWORD, KEY = "opsuser", "pw-Secret-77", "KEY-Secret-99"
# What the servers say: markup, an escape sequence, a newline and a NUL among the words.
MESSAGE = "model [bold]whisper-x[/bold] is not served\x1b[31m here\n\x00(see /v1/models)"
CLEAN = "model [bold]whisper-x[/bold] is not served [31m here (see /v1/models)"


def write_calls(directory, n: int) -> None:
    directory.mkdir()
    rng = np.random.default_rng(7)
    for i in range(n):
        sf.write(directory / f"call_{i}.wav",
                 (rng.standard_normal(8000 * 8) * 0.05).astype("float32"), 8000)  # fmt: skip


def secret_url(url: str) -> str:
    host = url.removeprefix("http://").rstrip("/")
    return f"http://{USER}:{PASSWORD}@{host}/?api_key={KEY}"


def config(tmp_path, sqlite_url: str, speech: str, chat: str):
    return parse_config({
        "database": {"url": sqlite_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": "g", "url": secret_url(speech), "chat_url": secret_url(chat),
                  "slots": 1, "chat_slots": 1}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off",
                     "ivr": "off", "remote": {"timeout_s": 30.0, "connect_timeout_s": 2.0,
                                              "probe_at_start": False}},
        "pipelines": {"batch": {"denoise": False, "ivr": False}},
        "stages": {"retry": {"attempts": 2, "backoff_s": 0.0, "max_backoff_s": 0.0}},
    })  # fmt: skip


async def run(tmp_path, sqlite_url: str, speech_fails: Response | None,
              chat_fails: Response | None) -> tuple[str, str]:
    """One one-file batch; (the speech server's URL, the chat server's) as served."""
    batch = tmp_path / "batch"
    write_calls(batch, 1)
    speech_worker = SimWorker(SimConfig(seed=1, time_scale=0.0))
    chat_worker = SimWorker(SimConfig(seed=2, time_scale=0.0))

    def handler(worker: SimWorker, fails: Response | None):
        async def handle(request: Request) -> Response:
            assert KEY in request.target or request.method == "GET"  # the key still travels
            if request.method == "POST" and fails is not None:
                return fails
            return await worker.handle(request)

        return handle

    async with trio.open_nursery() as nursery:
        speech = await nursery.start(HttpServer(handler(speech_worker, speech_fails)).serve)
        chat = await nursery.start(HttpServer(handler(chat_worker, chat_fails)).serve)
        async with open_app(config(tmp_path, sqlite_url, speech.url, chat.url)) as app:
            await app.run_batch(await app.prepare_batch(batch))
        nursery.cancel_scope.cancel()
    return speech.url.rstrip("/"), chat.url.rstrip("/")


def stored(sqlite_url: str) -> tuple[list[dict], list[str]]:
    """(the file's error events, every text column of the three tables as one list)."""
    engine = sa.create_engine(sqlite_url)
    log = t.batch_execution_log.c
    with engine.connect() as c:
        errors = [dict(r._mapping) for r in c.execute(
            sa.select(log.stage, log.fileName, log.status, log.payload, log.response,
                      log.errorMessage)
            .where(log.eventType == "error", log.fileName.is_not(None)))]  # fmt: skip
        texts = [str(v) for table in (t.batch_execution_log, t.processing_logs,
                                      t.file_distribution)
                 for row in c.execute(sa.select(table)) for v in row if v is not None]
    engine.dispose()
    return errors, texts


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in (USER, PASSWORD, KEY, "api_key"):
            assert secret not in text, (secret, text)


async def test_a_refused_lid_request_is_in_the_failure_event(tmp_path, sqlite_url):
    refusal = json_response({"error": {"message": MESSAGE, "type": "invalid_request_error"}}, 400)
    speech, _ = await run(tmp_path, sqlite_url, refusal, None)
    errors, texts = stored(sqlite_url)
    url = f"{speech}/v1/audio/transcriptions"
    assert len(errors) == 1
    (ev,) = errors
    assert (ev["stage"], ev["fileName"], ev["status"]) == ("lid", "call_0.wav", "failed")
    assert json.loads(ev["payload"]) == {
        "url": url, "model": "whisper-1", "status": 400, "message": CLEAN,
    }
    assert ev["errorMessage"] == f"{url}: HTTP 400: {CLEAN}"
    assert json.loads(ev["response"])["status"] == 400
    assert_no_secret(texts)


async def test_a_failing_chat_server_is_in_the_failure_event_after_its_retries(
    tmp_path, sqlite_url
):
    body = ("[bold]CUDA out of memory[/] " * 40).encode()  # plain text, over 500 characters
    _, chat = await run(tmp_path, sqlite_url, None,
                        Response(status=500, body=body, content_type="text/plain"))
    errors, texts = stored(sqlite_url)
    (ev,) = errors
    assert (ev["stage"], ev["fileName"]) == ("llm1", "call_0.wav")
    payload = json.loads(ev["payload"])
    message = " ".join(body.decode().split())[:500]
    assert payload == {"url": f"{chat}/v1/chat/completions", "model": "default",
                       "status": 500, "message": message}
    assert len(payload["message"]) == 500
    assert_no_secret(texts)
    retries = [r for r in texts if r == "retry"]
    assert len(retries) == 1  # two attempts: one retry, then the failure


async def test_a_reply_the_model_got_wrong_is_in_the_failure_event(tmp_path, sqlite_url):
    content = "Sure! [red]Here[/red] is \x07the trade:\n" + "x" * 3000
    reply = json_response({"choices": [{"message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}], "model": "default"})
    _, chat = await run(tmp_path, sqlite_url, None, reply)
    errors, texts = stored(sqlite_url)
    (ev,) = errors
    assert (ev["stage"], ev["fileName"]) == ("llm1", "call_0.wav")
    payload = json.loads(ev["payload"])
    assert payload["url"] == f"{chat}/v1/chat/completions"
    assert (payload["model"], payload["status"]) == ("default", 200)
    assert payload["message"].startswith("the reply is not JSON")
    assert payload["reply"] == content.replace("\x07", "")[:REPLY_LIMIT]
    assert_no_secret(texts)
