"""Remote backends against real loopback servers that replay real servers' reply shapes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import trio

from cofid.backends.base import AudioRef, BackendError, ChatRequest, PermanentBackendError
from cofid.backends.dialects import Dialect
from cofid.backends.json_schema import SchemaViolation, example_instance, validate
from cofid.backends.remote import (
    RemoteChat,
    RemoteLid,
    RemoteOptions,
    RemoteStt,
    make_remote_backends,
    parse_verbose_json,
)
from cofid.simworker.http_server import (
    DropConnection,
    Request,
    Response,
    json_response,
)

FAST = RemoteOptions(timeout_s=5.0, connect_timeout_s=2.0)


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    return path


def replying(body, status: int = 200):
    async def reply(request: Request) -> Response:
        return json_response(body, status)

    return reply


@pytest.fixture
def call_wav(tmp_path) -> AudioRef:
    return AudioRef(path=write_wav(tmp_path / "denoised.wav", 20.0), name="CALL-0001.wav")


# -- reply shapes of three real servers --------------------------------------------------

TEXTS = ["I want to buy 100 shares of INFY.", "Yes, confirmed."]

SPEACHES = {  # faster-whisper based: the full OpenAI verbose_json, ids from 1
    "task": "transcribe",
    "language": "en",
    "duration": 20.0,
    "text": " ".join(TEXTS),
    "words": None,
    "segments": [
        {"id": 1, "seek": 0, "start": 0.0, "end": 9.5, "text": " " + TEXTS[0],
         "tokens": [50364, 286], "temperature": 0.0, "avg_logprob": -0.21,
         "compression_ratio": 1.1, "no_speech_prob": 0.02, "words": None},
        {"id": 2, "seek": 950, "start": 9.5, "end": 20.0, "text": " " + TEXTS[1],
         "tokens": [50839], "temperature": 0.0, "avg_logprob": -0.3,
         "compression_ratio": 0.9, "no_speech_prob": 0.01, "words": None},
    ],
}  # fmt: skip
VLLM = {  # duration as a string, placeholder scores
    "text": " ".join(TEXTS),
    "language": "en",
    "duration": "20.0",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 9.5, "text": " " + TEXTS[0], "tokens": [1],
         "temperature": 0.0, "avg_logprob": -1.0, "compression_ratio": 0.0, "no_speech_prob": 0.0},
        {"id": 1, "seek": 0, "start": 9.5, "end": 20.0, "text": " " + TEXTS[1], "tokens": [2],
         "temperature": 0.0, "avg_logprob": -1.0, "compression_ratio": 0.0, "no_speech_prob": 0.0},
    ],
    "words": None,
}  # fmt: skip
WHISPER_CPP = {  # language as a name, probabilities, a segment without scores
    "task": "transcribe",
    "language": "english",
    "duration": 20.0,
    "text": " ".join(TEXTS),
    "segments": [
        {"id": 0, "text": " " + TEXTS[0], "start": 0.0, "end": 9.5, "tokens": [1, 2],
         "words": [], "temperature": 0.0, "avg_logprob": -0.25, "no_speech_prob": 0.01},
        {"id": 1, "text": " " + TEXTS[1], "start": 9.5, "end": 20.0},
    ],
    "detected_language": "english",
    "detected_language_probability": 0.93,
    "language_probabilities": {"en": 0.93, "hi": 0.04, "ur": 0.01},
}  # fmt: skip


@pytest.mark.parametrize(
    "shape", [SPEACHES, VLLM, WHISPER_CPP], ids=["speaches", "vllm", "whisper.cpp"]
)
async def test_three_servers_normalize_to_the_same_transcript(shape, serve, client, call_wav):
    stand_in, url = await serve(replying(shape))
    result = await RemoteStt(url, client, FAST).transcribe(call_wav, "en")

    assert [s.text for s in result.segments] == TEXTS
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 9.5), (9.5, 20.0)]
    assert result.language == "en"
    assert result.duration_s == pytest.approx(20.0)
    assert result.response["segments"] == 2
    assert result.response["text"] == " ".join(TEXTS)

    form = stand_in.requests[0].form()
    assert stand_in.requests[0].path == "/v1/audio/transcriptions"
    assert form["model"].text() == "whisper-1"
    assert form["response_format"].text() == "verbose_json"
    assert form["language"].text() == "en"
    assert form["file"].filename == "CALL-0001.wav"
    assert soundfile.info(io.BytesIO(form["file"].data)).duration == pytest.approx(20.0)
    # The summary names the file and its size, never its bytes.
    assert result.request["file"] == {
        "name": "CALL-0001.wav",
        "size": len(form["file"].data),
        "source_duration_s": 20.0,
    }
    json.dumps(result.request)


@pytest.mark.parametrize(
    "shape", [SPEACHES, VLLM, WHISPER_CPP], ids=["speaches", "vllm", "whisper.cpp"]
)
async def test_three_servers_give_the_same_lid_label(shape, serve, client, call_wav):
    stand_in, url = await serve(replying(shape))
    result = await RemoteLid(url, client, FAST).identify(call_wav)
    assert result.language == "en"
    assert result.duration_s == pytest.approx(20.0)
    assert "language" not in stand_in.requests[0].form()  # Whisper detects it


def test_parse_verbose_json_fills_what_servers_leave_out():
    language, duration, segments, probs = parse_verbose_json(VLLM)
    assert (language, duration, probs) == ("en", 20.0, None)
    assert all(s.avg_logprob is None and s.no_speech_prob is None for s in segments)

    # vLLM without segments: one segment from the text.
    language, duration, segments, _ = parse_verbose_json(
        {"text": " Hello there ", "language": "en", "duration": "7.5"}
    )
    assert [(s.start, s.end, s.text) for s in segments] == [(0.0, 7.5, "Hello there")]

    # whisper.cpp: names, and the detected probability when no table is given.
    language, _, segments, probs = parse_verbose_json(WHISPER_CPP)
    assert language == "en" and probs == {"en": 0.93, "hi": 0.04, "ur": 0.01}
    assert segments[1].avg_logprob is None
    _, _, _, probs = parse_verbose_json(
        {"text": "x", "detected_language": "hindi", "detected_language_probability": 0.7}
    )
    assert probs == {"hi": 0.7}

    # openai-whisper tuples; no duration -> the last segment's end.
    _, duration, segments, _ = parse_verbose_json(
        {"text": "a", "segments": [[0, 0, 0.0, 4.0, " a", [1], 0.0, -0.3, 1.2, 0.05]]}
    )
    assert duration == 4.0 and segments[0].no_speech_prob == 0.05


@pytest.mark.parametrize(
    "body",
    [[], {"text": 3}, {"text": "a", "segments": "x"}, {"text": "a", "segments": [{"start": 0}]}],
)
def test_parse_verbose_json_refuses_malformed_replies(body):
    with pytest.raises(BackendError):
        parse_verbose_json(body)


async def test_lid_sends_only_the_first_seconds_and_reports_the_whole_duration(
    serve, client, tmp_path
):
    audio = AudioRef(path=write_wav(tmp_path / "long.flac", 60.0), name="CALL-0002.flac")
    stand_in, url = await serve(replying(SPEACHES))
    options = RemoteOptions(lid_seconds=12.5)
    result = await RemoteLid(url, client, options).identify(audio)

    upload = stand_in.requests[0].form()["file"]
    assert upload.filename == "CALL-0002.wav"
    assert soundfile.info(io.BytesIO(upload.data)).duration == pytest.approx(12.5)
    assert result.duration_s == pytest.approx(60.0)
    assert result.request["file"]["cut_s"] == 12.5
    assert result.request["file"]["size"] == len(upload.data)


async def test_lid_labels_hindi_speech_written_in_latin_script_as_hinglish(serve, client, call_wav):
    body = {
        "language": "hindi",
        "duration": 20.0,
        "text": "haan ji, INFY ke sau shares buy karo",
        "language_probabilities": {"hindi": 0.55, "english": 0.35, "urdu": 0.05},
    }
    _, url = await serve(replying(body))
    result = await RemoteLid(url, client, FAST).identify(call_wav)
    assert result.language == "hinglish"
    assert result.confidence == pytest.approx(0.95)
    assert result.response["label"] == "hinglish"


async def test_stt_drops_hallucinated_segments(serve, client, call_wav):
    body = {
        "language": "en",
        "duration": 20.0,
        "text": "...",
        "segments": [
            {
                "start": 0,
                "end": 5,
                "text": "Buy 100 INFY.",
                "avg_logprob": -0.2,
                "no_speech_prob": 0.1,
            },
            {
                "start": 5,
                "end": 9,
                "text": "Thank you.",
                "avg_logprob": -0.2,
                "no_speech_prob": 0.9,
            },
            {"start": 9, "end": 20, "text": "la la", "avg_logprob": -1.6, "no_speech_prob": 0.8},
        ],
    }
    _, url = await serve(replying(body))
    result = await RemoteStt(url, client, FAST).transcribe(call_wav, "en")
    assert [s.text for s in result.segments] == ["Buy 100 INFY."]
    assert (result.response["segments"], result.response["segments_kept"]) == (3, 1)


URDU_REPLY = {"language": "hindi", "duration": 20.0, "text": "مجھے سو شیئر خریدنے ہیں"}
DEVANAGARI_REPLY = {"language": "hindi", "duration": 20.0, "text": "मुझे सौ शेयर खरीदने हैं"}


async def test_urdu_script_hindi_is_asked_again_with_a_devanagari_prompt(serve, client, call_wav):
    async def reply(request: Request) -> Response:
        return json_response(DEVANAGARI_REPLY if "prompt" in request.form() else URDU_REPLY)

    stand_in, url = await serve(reply)
    options = RemoteOptions(stt_options={"hi": {"language": "hi"}})
    result = await RemoteStt(url, client, options).transcribe(call_wav, "hi")

    assert len(stand_in.requests) == 2
    first, second = (r.form() for r in stand_in.requests)
    assert "prompt" not in first
    assert second["prompt"].text() == options.devanagari_prompt
    assert second["language"].text() == "hi"
    assert [s.text for s in result.segments] == [DEVANAGARI_REPLY["text"]]
    assert result.language == "hi"
    assert result.request["retry_reason"] == "urdu_script"
    assert result.request["first_attempt"]["response"]["text"] == URDU_REPLY["text"]


async def test_devanagari_hindi_is_not_asked_again(serve, client, call_wav):
    stand_in, url = await serve(replying(DEVANAGARI_REPLY))
    await RemoteStt(url, client, FAST).transcribe(call_wav, "hi")
    assert len(stand_in.requests) == 1


async def test_stt_options_choose_language_and_prompt_per_label(serve, client, call_wav):
    stand_in, url = await serve(replying(SPEACHES))
    options = RemoteOptions(
        stt_model="large-v3", stt_options={"hinglish": {"language": "hi", "prompt": "Haan ji"}}
    )
    await RemoteStt(url, client, options).transcribe(call_wav, "hinglish")
    await RemoteStt(url, client, options).transcribe(call_wav, "other")
    hinglish, other = (r.form() for r in stand_in.requests)
    assert hinglish["language"].text() == "hi" and hinglish["prompt"].text() == "Haan ji"
    assert hinglish["model"].text() == "large-v3"
    assert "language" not in other


# -- chat --------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "trades": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string"},
                    "side": {"type": "string", "enum": ["BUY", "SELL"]},
                    "quantity": {"type": "integer", "minimum": 1},
                    "price": {"type": ["number", "null"]},
                },
                "required": ["symbol", "side", "quantity", "price"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["trades"],
    "additionalProperties": False,
}
CHAT_REQUEST = ChatRequest(
    purpose="llm1",
    system="Extract trades.",
    user="Buy 100 INFY.",
    schema_name="trades",
    schema=SCHEMA,
)
GOOD = {"trades": [{"symbol": "INFY", "side": "BUY", "quantity": 100, "price": None}]}


def chat_reply(content, finish_reason="stop"):
    return replying(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "qwen",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content},
                 "finish_reason": finish_reason}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
        }
    )  # fmt: skip


async def test_chat_sends_the_nested_json_schema_form_and_returns_the_data(serve, client):
    stand_in, url = await serve(chat_reply(json.dumps(GOOD)))
    options = RemoteOptions(
        chat_model="qwen2.5-7b", api_key="sekret", dialect=Dialect(chat_temperature=0.1)
    )
    result = await RemoteChat(url + "/v1/", client, options).complete(CHAT_REQUEST)

    sent = stand_in.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sekret"
    assert sent.json() == {
        "model": "qwen2.5-7b",
        "messages": [
            {"role": "system", "content": "Extract trades."},
            {"role": "user", "content": "Buy 100 INFY."},
        ],
        "max_tokens": 2048,  # always sent (issue 20)
        "temperature": 0.1,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "trades", "schema": SCHEMA, "strict": True},
        },
    }
    assert result.data == GOOD
    assert result.response["usage"]["total_tokens"] == 29
    assert result.response["content"] == json.dumps(GOOD)
    assert result.request["purpose"] == "llm1"


async def test_chat_accepts_a_json_code_fence(serve, client):
    _, url = await serve(chat_reply("```json\n" + json.dumps(GOOD) + "\n```"))
    assert (await RemoteChat(url, client, FAST).complete(CHAT_REQUEST)).data == GOOD


@pytest.mark.parametrize(
    ("content", "finish_reason", "message"),
    [
        ('{"trades": [{"symbol": "INFY"', "stop", "not JSON"),
        (
            '{"trades": [{"symbol": "INFY", "side": "HOLD", "quantity": 1, "price": 1}]}',
            "stop",
            "schema",
        ),
        ('{"trades": [], "extra": 1}', "stop", "schema"),
        ("[1, 2]", "stop", "not a JSON object"),
        (json.dumps(GOOD)[:20], "length", "token limit"),
    ],
)
async def test_invalid_chat_replies_are_backend_errors_with_the_reply(
    serve, client, content, finish_reason, message
):
    _, url = await serve(chat_reply(content, finish_reason))
    with pytest.raises(BackendError, match=message) as info:
        await RemoteChat(url, client, FAST).complete(CHAT_REQUEST)
    assert not isinstance(info.value, PermanentBackendError)
    assert info.value.details["reply"] == content


async def test_chat_reply_without_content_is_a_backend_error(serve, client):
    _, url = await serve(
        replying(
            {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "no"}}]}
        )
    )
    with pytest.raises(BackendError, match="no content") as info:
        await RemoteChat(url, client, FAST).complete(CHAT_REQUEST)
    assert info.value.details["refusal"] == "no"


async def test_chat_reply_is_truncated_in_errors(serve, client):
    content = "x" * 5000
    _, url = await serve(chat_reply(content))
    with pytest.raises(BackendError) as info:
        await RemoteChat(url, client, FAST).complete(CHAT_REQUEST)
    assert info.value.details["reply"] == "x" * 2000


# -- transport and HTTP failures ---------------------------------------------------------


async def test_a_hung_server_is_a_backend_error_within_the_timeout(serve, client, call_wav):
    handler_cancelled = trio.Event()

    async def hang(request: Request) -> Response:
        try:
            await trio.sleep_forever()
        finally:
            handler_cancelled.set()

    _, url = await serve(hang)
    options = RemoteOptions(timeout_s=0.3, connect_timeout_s=0.3)
    started = trio.current_time()
    with pytest.raises(BackendError, match="timed out") as info:
        await RemoteStt(url, client, options).transcribe(call_wav, "en")
    assert not isinstance(info.value, PermanentBackendError)
    assert trio.current_time() - started < 1.5
    # The client went away, so the server stopped working on it.
    with trio.fail_after(2):
        await handler_cancelled.wait()


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
async def test_server_errors_and_throttling_are_retryable(serve, client, status):
    async def reply(request: Request) -> Response:
        return Response(
            status=status, body=b'{"error": {"message": "busy"}}', headers=(("retry-after", "3"),)
        )

    _, url = await serve(reply)
    with pytest.raises(BackendError, match="busy") as info:
        await RemoteChat(url, client, FAST).complete(CHAT_REQUEST)
    assert not isinstance(info.value, PermanentBackendError)
    assert info.value.details["status"] == status
    assert info.value.details["retry_after_s"] == 3.0


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": {"message": "could not decode audio"}}, "could not decode audio"),
        (422, {"detail": "language 'xx' is not supported"}, "language 'xx'"),  # FastAPI
        (404, {"error": "model not found"}, "model not found"),  # whisper.cpp
        (413, "payload too large", "payload too large"),
    ],
)
async def test_client_errors_are_permanent_with_the_servers_message(
    serve, client, call_wav, status, body, message
):
    async def reply(request: Request) -> Response:
        data = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
        return Response(status=status, body=data)

    _, url = await serve(reply)
    with pytest.raises(PermanentBackendError, match=message):
        await RemoteLid(url, client, FAST).identify(call_wav)


async def test_a_dropped_connection_is_a_backend_error(serve, client, call_wav):
    async def drop(request: Request) -> Response:
        raise DropConnection

    _, url = await serve(drop)
    with pytest.raises(BackendError) as info:
        await RemoteStt(url, client, FAST).transcribe(call_wav, "en")
    assert not isinstance(info.value, PermanentBackendError)


async def test_a_reply_that_is_not_json_is_a_backend_error(serve, client, call_wav):
    async def broken(request: Request) -> Response:
        return Response(body=b'{"text": "I want')

    _, url = await serve(broken)
    with pytest.raises(BackendError, match="not JSON") as info:
        await RemoteStt(url, client, FAST).transcribe(call_wav, "en")
    assert info.value.details["reply"] == '{"text": "I want'


async def test_nobody_listening_is_a_backend_error(client, call_wav):
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(BackendError) as info:
            await RemoteLid(f"http://127.0.0.1:{port}", client, FAST).identify(call_wav)
    assert not isinstance(info.value, PermanentBackendError)


async def test_a_missing_audio_file_is_permanent(client, tmp_path):
    audio = AudioRef(path=tmp_path / "gone.wav", name="gone.wav")
    with pytest.raises(PermanentBackendError):
        await RemoteLid("http://127.0.0.1:9", client, FAST).identify(audio)


async def test_make_remote_backends_shares_base_url_and_client(serve, client, call_wav):
    stand_in, url = await serve(replying(SPEACHES))
    backends = make_remote_backends(url, client, FAST)
    assert isinstance(backends["lid"], RemoteLid)
    assert isinstance(backends["stt"], RemoteStt)
    assert isinstance(backends["chat"], RemoteChat)
    await backends["lid"].identify(call_wav)
    await backends["stt"].transcribe(call_wav, "en")
    assert len(stand_in.requests) == 2


# -- the JSON-Schema subset --------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "path"),
    [
        ({}, "$"),
        ({"trades": {}}, "$.trades"),
        (
            {"trades": [{"symbol": "A", "side": "BUY", "quantity": 0, "price": 1}]},
            "$.trades[0].quantity",
        ),
        (
            {"trades": [{"symbol": "A", "side": "BUY", "quantity": True, "price": 1}]},
            "$.trades[0].quantity",
        ),
        (
            {"trades": [{"symbol": "A", "side": "BUY", "quantity": 1.5, "price": 1}]},
            "$.trades[0].quantity",
        ),
        (
            {"trades": [{"symbol": "A", "side": "BUY", "quantity": 1, "price": "1"}]},
            "$.trades[0].price",
        ),
        (
            {"trades": [{"symbol": 1, "side": "BUY", "quantity": 1, "price": 1}]},
            "$.trades[0].symbol",
        ),
        ({"trades": [{"symbol": "A", "side": "BUY", "quantity": 1}]}, "$.trades[0]"),
    ],
)
def test_validate_reports_the_json_path(instance, path):
    with pytest.raises(SchemaViolation) as info:
        validate(instance, SCHEMA)
    assert info.value.path == path


def test_validate_accepts_valid_instances():
    validate(GOOD, SCHEMA)
    validate({"trades": [{"symbol": "A", "side": "SELL", "quantity": 2.0, "price": 3}]}, SCHEMA)
    validate({"trades": []}, SCHEMA)


def test_validate_array_bounds_refs_anyof_and_strings():
    schema = {
        "$defs": {
            "answer": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"}
        },
        "type": "array",
        "minItems": 1,
        "maxItems": 2,
        "items": {"anyOf": [{"$ref": "#/$defs/answer"}, {"type": "integer", "maximum": 9}]},
    }
    validate(["ab", 9], schema)
    for bad in ([], ["ab", "cd", "ef"], ["a"], ["abcde"], ["AB"], [10], [None]):
        with pytest.raises(SchemaViolation):
            validate(bad, schema)


def test_example_instance_validates_and_spreads_enums_over_fixed_arrays():
    schema = {
        "type": "object",
        "properties": {
            "answers": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "question_id": {"type": "integer", "enum": [11, 12, 13]},
                        "answer": {"type": "string", "enum": ["Yes", "No"]},
                        "reason": {"type": ["string", "null"], "minLength": 12},
                    },
                    "required": ["question_id", "answer", "reason"],
                    "additionalProperties": False,
                },
            },
            "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
        },
        "required": ["answers", "score"],
        "additionalProperties": False,
    }
    instance = example_instance(schema, salt="abcdef123456")
    validate(instance, schema)
    assert [a["question_id"] for a in instance["answers"]] == [11, 12, 13]
    assert [a["answer"] for a in instance["answers"]] == ["Yes", "No", "Yes"]
    validate(example_instance(SCHEMA), SCHEMA)
