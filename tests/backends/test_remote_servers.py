"""Each dialect against a loopback server that replays its real server's request handling
and reply shapes (issue 20): faster-whisper-server 0.0.3, speaches, whisper.cpp's server,
vLLM, llama.cpp's llama-server, llama-cpp-python's server and Ollama.

The stand-ins check what the real servers check (the form field the model is read from,
the response_format types they accept) and answer with the shapes they send, errors
included, so a request shape a server refuses fails here as it failed there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from cofid.backends.base import AudioRef, BackendError, PermanentBackendError
from cofid.backends.dialects import resolve_dialect
from cofid.backends.endpoints import Endpoint
from cofid.backends.probe import probe_url
from cofid.backends.remote import RemoteChat, RemoteLid, RemoteOptions, RemoteStt
from cofid.backends.remote_chat import ModelReplyError
from cofid.domain.prompts import build_llm1_request, build_llm2_request
from cofid.domain.questions import default_question_set
from cofid.simworker.http_server import Request, Response, json_response

QUESTIONS = default_question_set().questions
IDS = [q.id for q in QUESTIONS]
LOOP_TEXT = " ".join(["विगर"] * 60)


def options(dialect: str, **overrides: Any) -> RemoteOptions:
    return RemoteOptions(
        timeout_s=5.0, connect_timeout_s=2.0, dialect=resolve_dialect(dialect, overrides)
    )


@pytest.fixture
def call_wav(tmp_path: Path) -> AudioRef:
    t = np.arange(8000 * 12) / 8000
    path = tmp_path / "call.wav"
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 8000)
    return AudioRef(path=path, name="CALL-7.wav")


def fw_segment(text: str, *, start: float = 0.0, end: float = 6.0, logprob: float = -0.3,
               no_speech: float = 0.02, ratio: float = 1.2, temperature: float = 0.0) -> dict:
    """A segment as faster-whisper-server / speaches send it (verbose_json)."""
    return {"id": 1, "seek": 0, "start": start, "end": end, "text": " " + text,
            "tokens": [50364, 1], "temperature": temperature, "avg_logprob": logprob,
            "compression_ratio": ratio, "no_speech_prob": no_speech}  # fmt: skip


def fw_reply(language: str, segments: list[dict]) -> dict:
    """faster-whisper-server's verbose_json: no language probabilities at all."""
    return {"task": "transcribe", "language": language, "duration": 12.0,
            "text": "".join(s["text"] for s in segments), "words": None,
            "segments": segments}  # fmt: skip


# -- faster-whisper-server 0.0.3 -----------------------------------------------------------


def faster_whisper_server(replies: list[dict]):
    """Reads the model from `model_name` (its 0.0.x form field); a reply per request in turn."""

    async def reply(request: Request) -> Response:
        form = request.form()
        if "model_name" not in form:
            return json_response({"detail": {"error": {"message": "model_name is required",
                                                       "type": "invalid_request_error"}}}, 422)
        return json_response(replies[min(len(request_log) - 1, len(replies) - 1)])

    request_log: list[Request] = []

    async def logged(request: Request) -> Response:
        request_log.append(request)
        return await reply(request)

    return logged


async def test_faster_whisper_server_probe_asks_health_only(serve, client):
    """0.0.3 serves /health and answers /v1/models with FastAPI's 404 (seen on the real
    server): the probe must not warn about the dialect for it."""

    async def routes(request: Request) -> Response:
        if request.path == "/health":
            return json_response({"status": "ok"})
        return json_response({"detail": "Not Found"}, 404)

    recorder, url = await serve(routes)
    dialect = resolve_dialect("faster-whisper-server")
    endpoint = Endpoint("stt", url, dialect, "whisper-1", 1)
    result = await probe_url(client, "fws", url, "", dialect, {"stt": endpoint}, 5.0)
    assert (result.status, result.checked) == ("ok", ["GET /health: HTTP 200"])
    assert [r.path for r in recorder.requests] == ["/health"]


async def test_faster_whisper_server_gets_both_model_fields_and_a_temperature_fallback(
    serve, client, call_wav
):
    loop = fw_reply("hi", [fw_segment(LOOP_TEXT, ratio=13.3)])
    clean = fw_reply("hi", [fw_segment("सौ शेयर खरीदने हैं", temperature=0.4)])
    recorder, url = await serve(faster_whisper_server([loop, clean]))
    result = await RemoteStt(url, client, options("faster-whisper-server")).transcribe(call_wav, "hi")

    forms = [r.form() for r in recorder.requests]
    assert [f["model_name"].text() for f in forms] == ["whisper-1", "whisper-1"]
    assert [f["model"].text() for f in forms] == ["whisper-1", "whisper-1"]
    assert [f["temperature"].text() for f in forms] == ["0.0", "0.4"]
    assert [s.text for s in result.segments] == ["सौ शेयर खरीदने हैं"]
    assert result.request["temperature_attempts"] == [
        {"temperature": 0.0, "repetition_loops": 1},
        {"temperature": 0.4, "repetition_loops": 0},
    ]


async def test_a_loop_at_every_temperature_is_dropped_not_kept(serve, client, call_wav):
    loop = fw_reply("hi", [fw_segment(LOOP_TEXT, ratio=13.3)])
    recorder, url = await serve(faster_whisper_server([loop]))
    result = await RemoteStt(url, client, options("faster-whisper-server")).transcribe(call_wav, "hi")
    assert len(recorder.requests) == 3  # 0.0, 0.4, 0.8
    assert result.segments == ()
    assert result.response["repetition_loops"] == 1


async def test_faster_whisper_server_lid_without_probabilities_uses_the_decode_score(
    serve, client, call_wav
):
    # The Hindi call of issue 20: detected as Latin, no probabilities, a poor decode.
    unsure = fw_reply("la", [fw_segment("Vigor et vigor", logprob=-1.4, no_speech=0.3)])
    _, url = await serve(faster_whisper_server([unsure]))
    result = await RemoteLid(url, client, options("faster-whisper-server")).identify(call_wav)
    assert result.language == "other"
    assert result.confidence == pytest.approx(np.exp(-1.4) * 0.7, abs=1e-6)
    assert result.confidence < 0.3
    assert result.response["confidence_source"] == "decode_score"


async def test_a_poor_decode_of_english_abstains_to_other(serve, client, call_wav):
    unsure = fw_reply("en", [fw_segment("I want to buy", logprob=-1.6, no_speech=0.4)])
    _, url = await serve(faster_whisper_server([unsure]))
    result = await RemoteLid(url, client, options("faster-whisper-server")).identify(call_wav)
    assert (result.language, result.response["abstained_from"]) == ("other", "en")


async def test_a_clear_decode_keeps_the_label_with_its_score(serve, client, call_wav):
    clear = fw_reply("en", [fw_segment("I want to buy 100 shares", logprob=-0.2)])
    _, url = await serve(faster_whisper_server([clear]))
    result = await RemoteLid(url, client, options("faster-whisper-server")).identify(call_wav)
    assert result.language == "en"
    assert result.confidence == pytest.approx(np.exp(-0.2) * 0.98, abs=1e-6)


async def test_faster_whisper_server_errors_are_clean_messages(serve, client, call_wav):
    async def refuse(request: Request) -> Response:
        return json_response({"detail": {"error": {"message": "Unsupported language 'xx'",
                                                   "type": "invalid_request_error"}}}, 400)

    _, url = await serve(refuse)
    with pytest.raises(PermanentBackendError) as info:
        await RemoteLid(url, client, options("faster-whisper-server")).identify(call_wav)
    assert str(info.value).endswith("HTTP 400: Unsupported language 'xx'")
    assert "{" not in str(info.value)


async def test_undecodable_audio_answered_with_a_bare_500_is_permanent(serve, client, tmp_path):
    async def crash(request: Request) -> Response:
        return Response(status=500, body=b"Internal Server Error", content_type="text/plain")

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....not audio at all")
    _, url = await serve(crash)
    with pytest.raises(PermanentBackendError, match="HTTP 500: Internal Server Error"):
        await RemoteStt(url, client, options("faster-whisper-server")).transcribe(
            AudioRef(path=bad, name="broken.wav"), "en"
        )


async def test_a_bare_500_to_decodable_audio_stays_retryable(serve, client, call_wav):
    async def crash(request: Request) -> Response:
        return Response(status=500, body=b"Internal Server Error", content_type="text/plain")

    _, url = await serve(crash)
    with pytest.raises(BackendError) as info:
        await RemoteStt(url, client, options("faster-whisper-server")).transcribe(call_wav, "en")
    assert not isinstance(info.value, PermanentBackendError)


# -- speaches ------------------------------------------------------------------------------


async def test_speaches_reads_model_and_gets_one_temperature(serve, client, call_wav):
    async def speaches(request: Request) -> Response:
        form = request.form()
        assert "model_name" not in form
        return json_response(fw_reply("en", [fw_segment("Buy 100 INFY.")]))

    recorder, url = await serve(speaches)
    stt = RemoteStt(url, client, options("speaches", model="Systran/faster-whisper-small"))
    result = await stt.transcribe(call_wav, "en")
    form = recorder.requests[0].form()
    assert form["model"].text() == "Systran/faster-whisper-small"
    assert form["temperature"].text() == "0.0"
    assert result.request["model"] == "Systran/faster-whisper-small"
    assert [s.text for s in result.segments] == ["Buy 100 INFY."]


# -- whisper.cpp ---------------------------------------------------------------------------


def whisper_cpp(reply_body: dict):
    """whisper-server: POST /inference, default language "en" unless the form says so."""

    async def reply(request: Request) -> Response:
        if request.path != "/inference":
            return Response(status=404, body=b"File Not Found", content_type="text/plain")
        form = request.form()
        if "file" not in form:
            return json_response({"error": "no 'file' field in the request"}, 400)
        language = form["language"].text() if "language" in form else "en"
        body = dict(reply_body)
        if language != "auto":
            body["language"] = {"en": "english", "hi": "hindi"}.get(language, language)
        return json_response(body)

    return reply


WHISPER_CPP_HINDI = {
    "task": "transcribe", "language": "hindi", "duration": 12.0, "text": " सौ शेयर",
    "segments": [{"id": 0, "text": " सौ शेयर खरीदने हैं", "start": 0.0, "end": 6.0,
                  "tokens": [1], "temperature": 0.0, "avg_logprob": -0.4,
                  "no_speech_prob": 0.02}],
    "detected_language": "hindi", "detected_language_probability": 0.81,
    "language_probabilities": {"hi": 0.81, "ur": 0.09, "en": 0.05},
}  # fmt: skip


async def test_whisper_cpp_lid_asks_for_auto_detection_on_inference(serve, client, call_wav):
    recorder, url = await serve(whisper_cpp(WHISPER_CPP_HINDI))
    result = await RemoteLid(url, client, options("whisper.cpp")).identify(call_wav)
    form = recorder.requests[0].form()
    assert recorder.requests[0].path == "/inference"
    assert form["language"].text() == "auto"
    assert "model" not in form
    assert (form["temperature"].text(), form["temperature_inc"].text()) == ("0.0", "0.2")
    assert result.language == "hi"
    assert result.confidence == pytest.approx(0.9)  # hi + ur
    assert result.response["confidence_source"] == "probabilities"


async def test_whisper_cpp_loops_are_caught_without_a_sent_ratio(serve, client, call_wav):
    looped = {**WHISPER_CPP_HINDI, "segments": [
        {"id": 0, "text": LOOP_TEXT, "start": 0.0, "end": 6.0, "avg_logprob": -0.2,
         "no_speech_prob": 0.01},
        {"id": 1, "text": " सौ शेयर खरीदने हैं", "start": 6.0, "end": 9.0, "avg_logprob": -0.3,
         "no_speech_prob": 0.01},
    ]}  # fmt: skip
    recorder, url = await serve(whisper_cpp(looped))
    result = await RemoteStt(url, client, options("whisper.cpp")).transcribe(call_wav, "hi")
    assert len(recorder.requests) == 1  # whisper.cpp falls back itself (temperature_inc)
    assert [s.text for s in result.segments] == ["सौ शेयर खरीदने हैं"]


async def test_whisper_cpp_errors(serve, client, call_wav):
    async def refuse(request: Request) -> Response:
        return json_response({"error": "failed to read audio data"}, 400)

    _, url = await serve(refuse)
    with pytest.raises(PermanentBackendError, match="HTTP 400: failed to read audio data$"):
        await RemoteStt(url, client, options("whisper.cpp")).transcribe(call_wav, "en")


# -- vLLM ------------------------------------------------------------------------------------

CHAT_LLM1 = build_llm1_request(
    templates=None,
    transcript=[{"start": 0.0, "end": 4.0, "text": "Buy 100 INFY at market."}],
    call_metadata={"audioName": "CALL-7.wav"},
    trades=[{"trade_id": "T1", "symbol": "INFY", "side": "BUY", "quantity": 100, "price": 1500}],
)
CHAT_LLM2 = build_llm2_request(
    templates=None,
    transcript=[{"start": 0.0, "end": 4.0, "text": "Buy 100 INFY at market."}],
    call_metadata={"audioName": "CALL-7.wav"},
    trades=[],
    extracted_trades=[],
    questions=QUESTIONS,
)
TRADE = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": None,
         "order_type": "MARKET", "trade_id": "T1", "evidence": "Buy 100 INFY at market."}  # fmt: skip
KEYED = {"answers": {qid: {"answer": "Yes", "evidence": ""} for qid in IDS}}


def completion(content: str, finish_reason: str = "stop", model: str = "m") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}}  # fmt: skip


def chat_server(content: str, *, accepts: tuple[str, ...], finish_reason: str = "stop",
                refusal_status: int = 400, refusal: dict | None = None):
    """A chat server that accepts only the response_format types in `accepts`."""

    async def reply(request: Request) -> Response:
        body = request.json()
        kind = body.get("response_format", {}).get("type")
        if kind not in accepts:
            default = {"error": {"message": f"response_format type {kind!r} is not supported",
                                 "type": "invalid_request_error"}}
            return json_response(refusal or default, refusal_status)
        return json_response(completion(content, finish_reason))

    return reply


async def test_vllm_gets_json_schema_and_max_tokens(serve, client):
    recorder, url = await serve(
        chat_server(json.dumps({"trades": [TRADE]}), accepts=("json_schema",))
    )
    result = await RemoteChat(url, client, options("vllm")).complete(CHAT_LLM1)
    sent = recorder.requests[0].json()
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["trades"]["maxItems"] == 20
    assert sent["max_tokens"] == 2048
    assert sent["temperature"] == 0.0
    assert result.data == {"trades": [TRADE]}


async def test_vllm_old_error_envelope_is_a_clean_message(serve, client):
    async def refuse(request: Request) -> Response:
        return json_response({"object": "error", "message": "The model `x` does not exist.",
                              "type": "NotFoundError", "param": None, "code": 404}, 404)

    _, url = await serve(refuse)
    with pytest.raises(PermanentBackendError, match=r"HTTP 404: The model `x` does not exist\.$"):
        await RemoteChat(url, client, options("vllm")).complete(CHAT_LLM1)


# -- llama-cpp-python ------------------------------------------------------------------------

LLAMA_CPP_PYTHON_REFUSAL = {"error": {
    "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
               "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
    "type": "internal_server_error", "param": None, "code": None}}  # fmt: skip


async def test_llama_cpp_python_refuses_json_schema_with_a_500_that_is_permanent(serve, client):
    recorder, url = await serve(chat_server(
        "{}", accepts=("text", "json_object"), refusal_status=500, refusal=LLAMA_CPP_PYTHON_REFUSAL
    ))
    with pytest.raises(PermanentBackendError, match="Input should be 'text' or 'json_object'"):
        await RemoteChat(url, client, options("openai")).complete(CHAT_LLM1)
    assert len(recorder.requests) == 1


async def test_llama_cpp_python_gets_json_object_with_the_schema(serve, client):
    recorder, url = await serve(chat_server(
        json.dumps(KEYED), accepts=("text", "json_object"), refusal_status=500,
        refusal=LLAMA_CPP_PYTHON_REFUSAL,
    ))
    result = await RemoteChat(url, client, options("llama-cpp-python")).complete(CHAT_LLM2)
    sent = recorder.requests[0].json()
    assert sent["response_format"] == {"type": "json_object", "schema": CHAT_LLM2.schema}
    # Stages read the list form, in question order.
    assert [a["question_id"] for a in result.data["answers"]] == IDS
    assert result.data["answers"][0] == {"question_id": IDS[0], "answer": "Yes", "evidence": ""}


async def test_repeated_question_ids_are_a_model_error_with_the_reply(serve, client):
    # What SmolLM2 did without a grammar for "each id once": one id repeated.
    repeated = "{\"answers\": {" + ", ".join(
        f'"{IDS[0]}": {{"answer": "Yes", "evidence": ""}}' for _ in IDS) + "}}"
    _, url = await serve(chat_server(repeated, accepts=("json_object",)))
    with pytest.raises(ModelReplyError, match="repeats the key") as info:
        await RemoteChat(url, client, options("llama-cpp-python")).complete(CHAT_LLM2)
    assert not isinstance(info.value, PermanentBackendError)
    assert info.value.details["reply"] == repeated
    assert info.value.details["model_error"] is True


@pytest.mark.parametrize(
    ("trade", "problem"),
    [
        ({**TRADE, "quantity": -5}, "quantity is not positive"),
        ({**TRADE, "price": 0}, "price is not positive"),
        ({**TRADE, "quantity": 1e20}, "quantity is too large"),
    ],
)
async def test_unstorable_trades_are_model_errors(serve, client, trade, problem):
    _, url = await serve(chat_server(json.dumps({"trades": [trade]}), accepts=("json_object",)))
    with pytest.raises(ModelReplyError, match=problem) as info:
        await RemoteChat(url, client, options("llama-cpp-python")).complete(CHAT_LLM1)
    assert info.value.details["problems"]


async def test_nan_is_a_model_error(serve, client):
    content = json.dumps({"trades": [TRADE]}).replace('"quantity": 100', '"quantity": NaN')
    _, url = await serve(chat_server(content, accepts=("json_object",)))
    with pytest.raises(ModelReplyError, match="not JSON: NaN"):
        await RemoteChat(url, client, options("llama-cpp-python")).complete(CHAT_LLM1)


# -- llama.cpp's llama-server ----------------------------------------------------------------


async def test_llama_server_gets_json_object_and_a_cut_off_reply_names_max_tokens(serve, client):
    looping = '{"trades": [' + ", ".join([json.dumps(TRADE)] * 30)
    recorder, url = await serve(chat_server(
        looping, accepts=("json_object", "json_schema"), finish_reason="length"
    ))
    with pytest.raises(ModelReplyError, match=r"max_tokens=512") as info:
        await RemoteChat(url, client, options("llama.cpp", max_tokens=512)).complete(CHAT_LLM1)
    sent = recorder.requests[0].json()
    assert sent["response_format"]["type"] == "json_object"
    assert sent["max_tokens"] == 512
    assert len(info.value.details["reply"]) == 2000


async def test_llama_server_loading_is_retryable_with_its_message(serve, client):
    async def loading(request: Request) -> Response:
        return json_response(
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}, 503
        )

    _, url = await serve(loading)
    with pytest.raises(BackendError, match="HTTP 503: Loading model$") as info:
        await RemoteChat(url, client, options("llama.cpp")).complete(CHAT_LLM1)
    assert not isinstance(info.value, PermanentBackendError)


async def test_llama_server_500_for_a_response_format_is_permanent(serve, client):
    refusal = {"error": {"code": 500, "type": "server_error", "message":
               'response_format type must be one of "text" or "json_object", but got: json_schema'}}
    _, url = await serve(chat_server("{}", accepts=("json_object",), refusal_status=500,
                                     refusal=refusal))
    with pytest.raises(PermanentBackendError, match="response_format type must be one of"):
        await RemoteChat(url, client, options("openai")).complete(CHAT_LLM1)


# -- Ollama ----------------------------------------------------------------------------------


async def test_ollama_gets_json_schema_with_its_model_name(serve, client):
    recorder, url = await serve(chat_server(json.dumps(KEYED), accepts=("json_schema",)))
    chat = RemoteChat(url + "/v1", client, options("ollama", model="qwen2.5:7b"))
    result = await chat.complete(CHAT_LLM2)
    sent = recorder.requests[0].json()
    assert recorder.requests[0].path == "/v1/chat/completions"
    assert sent["model"] == "qwen2.5:7b"
    assert sent["response_format"]["json_schema"]["name"] == "llm2_answers"
    assert len(result.data["answers"]) == len(IDS)
