"""Dialects in configuration, error envelopes and classification, reply checks, the
repetition-loop rule, endpoints and slots per URL, and the reachability probe (issue 20)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import httpx
import pytest
import trio

from cofid.backends.base import Segment
from cofid.backends.dialects import DialectError, resolve_dialect, response_format
from cofid.backends.endpoints import gpu_endpoints, lane_of, lanes
from cofid.backends.probe import probe_config, unusable_capabilities
from cofid.backends.remote_http import envelope_message, is_permanent, server_message
from cofid.config import ConfigError, effective_config, parse_config
from cofid.domain.replies import keyed_llm2, llm1_problems, llm2_problems, normalized_llm2
from cofid.domain.segments import drop_hallucinations, text_compression_ratio
from cofid.simworker.http_server import HttpServer, Request, Response, json_response


def config(toml: str):
    return parse_config(tomllib.loads(toml))


TWO_SERVERS = """
[backends]
lid = "remote"
stt = "remote"
chat = "remote"
[backends.remote]
chat_model = "smollm2"
[[gpus]]
name = "box1"
url = "http://10.0.0.5:8000"
dialect = "faster-whisper-server"
slots = 1
chat_url = "http://10.0.0.5:8080/v1"
chat_dialect = "llama-server"
chat_slots = 4
[gpus.chat_options]
max_tokens = 1024
chat_temperature = 0.2
"""


# -- dialects in configuration ---------------------------------------------------------------


def test_a_gpu_entry_names_a_dialect_per_url_with_overrides():
    cfg = config(TWO_SERVERS)
    eps = gpu_endpoints(cfg.gpus[0], cfg.backends.remote)
    assert eps["stt"].dialect.name == "faster-whisper-server"
    assert eps["stt"].dialect.model_fields == ("model", "model_name")
    assert eps["chat"].dialect.name == "llama.cpp"
    assert eps["chat"].dialect.response_format == "json_object_schema"
    assert (eps["chat"].dialect.max_tokens, eps["chat"].dialect.chat_temperature) == (1024, 0.2)
    assert eps["stt"].dialect.max_tokens == 2048  # chat_options do not touch the speech side
    assert eps["chat"].model == "smollm2"
    assert eps["stt"].model == "whisper-1"
    # effective_config shows the unset options as null
    shown = effective_config(cfg)["gpus"][0]
    assert shown["chat_options"]["max_tokens"] == 1024
    assert shown["options"]["max_tokens"] is None


def test_slots_belong_to_each_capability_url():
    cfg = config(TWO_SERVERS)
    eps = gpu_endpoints(cfg.gpus[0], cfg.backends.remote)
    assert lanes(eps) == {"http://10.0.0.5:8000": 1, "http://10.0.0.5:8080/v1": 4}
    assert lane_of(eps) == {
        "denoise": "http://10.0.0.5:8000", "ivr": "http://10.0.0.5:8000",
        "lid": "http://10.0.0.5:8000", "stt": "http://10.0.0.5:8000",
        "chat": "http://10.0.0.5:8080/v1",
    }  # fmt: skip


def test_one_url_is_one_lane_with_the_entrys_slots():
    cfg = config('[[gpus]]\nname = "g"\nurl = "http://h:1"\nslots = 3\n')
    assert lanes(gpu_endpoints(cfg.gpus[0], cfg.backends.remote)) == {"http://h:1": 3}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('dialect = "llama"', "gpus[0].dialect: 'llama' is not allowed (one of openai, vllm"),
        ('chat_dialect = "gpt"', "gpus[0].chat_dialect: 'gpt' is not allowed"),
        ('[gpus.options]\nresponse_format = "xml"',
         "gpus[0].options: response_format 'xml' is not one of json_schema, json_object_schema"),
        ("[gpus.chat_options]\nmax_tokens = 0", "gpus[0].chat_options: max_tokens must be at least 1"),
        ("[gpus.options]\ntemperatures = [0.0, 1.5]", "gpus[0].options: temperatures must be"),
        ("[gpus.options]\nmax_token = 5", "gpus[0].options.max_token: unknown key"),
        ("chat_slots = 2", "gpus[0].chat_slots: 2 is not allowed (0 unless chat_url names a separate"),
    ],
)
def test_bad_dialect_settings_name_the_key(extra, message):
    head, _, table = extra.partition("\n")
    toml = '[[gpus]]\nname = "g"\nurl = "http://h:1"\n'
    toml += f"{extra}\n" if not head.startswith("[") else f"{head}\n{table}\n"
    with pytest.raises(ConfigError) as info:
        config(toml)
    assert str(info.value).startswith(message)


def test_unknown_dialects_and_options_are_refused_in_code_too():
    with pytest.raises(DialectError, match="unknown dialect 'tgi'"):
        resolve_dialect("tgi")
    with pytest.raises(DialectError, match="unknown dialect option 'n_predict'"):
        resolve_dialect("llama.cpp", {"n_predict": 5})
    assert resolve_dialect("").name == "openai"
    assert resolve_dialect("whisper-server").transcriptions_path == "/inference"


def test_response_format_shapes():
    schema = {"type": "object"}
    assert response_format(resolve_dialect("llama-cpp-python"), "s", schema) == {
        "type": "json_object", "schema": schema}
    assert response_format(resolve_dialect("vllm"), "s", schema) == {
        "type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}}


# -- error envelopes and classification ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "bad audio", "type": "invalid_request_error"}}, "bad audio"),
        ({"error": "failed to read audio data"}, "failed to read audio data"),  # whisper.cpp
        ({"detail": {"error": {"message": "no such model"}}}, "no such model"),  # fw-server
        ({"detail": "Not Found"}, "Not Found"),  # FastAPI
        ({"detail": [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]},
         "body.file: Field required"),  # FastAPI 422
        ({"object": "error", "message": "too long", "type": "BadRequestError", "code": 400},
         "too long"),  # vLLM before 0.10
        ({"weird": [1, 2]}, '{"weird": [1, 2]}'),  # JSON, never a Python repr
    ],
)
def test_envelopes_give_the_servers_message(body, message):
    assert envelope_message(body) == message


def test_plain_text_errors_are_one_clean_line():
    response = httpx.Response(500, text="500 Internal Server Error\nstd::bad_alloc")
    assert server_message(response) == "500 Internal Server Error std::bad_alloc"


@pytest.mark.parametrize(
    ("status", "message", "undecodable", "permanent"),
    [
        (400, "bad request", False, True),
        (404, "model not found", False, True),
        (422, "Field required", False, True),
        (408, "timeout", False, False),
        (429, "slow down", False, False),
        (500, "Input should be 'text' or 'json_object'", False, True),
        (500, "1 validation error for CreateChatCompletionRequest", False, True),
        (500, "response_format type must be one of", False, True),
        (500, "CUDA out of memory", False, False),
        (500, "Internal Server Error", True, True),
        (502, "Bad Gateway", False, False),
        (503, "Loading model", False, False),
        (503, "validation", True, False),  # overload stays transient whatever it says
    ],
)
def test_http_errors_are_classified_as_the_server_means_them(status, message, undecodable, permanent):
    assert is_permanent(status, message, undecodable_upload=undecodable) is permanent


# -- replies: what the schema cannot say ---------------------------------------------------


def test_keyed_answers_normalize_to_the_list_in_question_order():
    reply = {"answers": {"B": {"answer": "No", "evidence": "x"}, "A": {"answer": "Yes", "evidence": ""}}}
    assert llm2_problems(reply, ["A", "B"]) == []
    assert normalized_llm2(reply, ["A", "B"])["answers"] == [
        {"question_id": "A", "answer": "Yes", "evidence": ""},
        {"question_id": "B", "answer": "No", "evidence": "x"},
    ]
    assert keyed_llm2(normalized_llm2(reply, ["A", "B"])["answers"]) == reply


def test_list_answers_with_repeated_or_missing_ids_are_refused():
    listed = {"answers": [{"question_id": "A", "answer": "Yes", "evidence": ""}] * 2}
    assert llm2_problems(listed, ["A", "B"]) == [
        "question ids answered more than once: A", "questions not answered: B"]
    blank = {"answers": {"A": {"answer": "  ", "evidence": ""}}}
    assert llm2_problems(blank, ["A"]) == ["the answer to 'A' is blank"]


def test_trade_limits():
    trade = {"symbol": "INFY", "quantity": 100, "price": None, "trade_id": "T1"}
    assert llm1_problems({"trades": [trade]}) == []
    assert llm1_problems({"trades": [trade] * 21}) == ["21 trades, at most 20 allowed"]
    assert llm1_problems({"trades": [{**trade, "quantity": float("inf")}]}) == [
        "trades[0].quantity is not a finite number"]
    assert llm1_problems({"trades": [{**trade, "symbol": "X" * 65}]}) == [
        "trades[0].symbol is longer than 64 characters"]


# -- the repetition-loop rule ----------------------------------------------------------------


def test_compression_ratio_is_whispers_and_loops_are_dropped():
    loop = " ".join(["विगर"] * 40)
    assert text_compression_ratio(loop) > 2.4
    assert text_compression_ratio("I want to buy 100 shares of Infosys at 1500.") < 2.4
    normal = Segment(0, 1, "I want to buy", avg_logprob=-0.2, no_speech_prob=0.01)
    sent_high = Segment(1, 2, "ok then", avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=3.1)
    placeholder = Segment(2, 3, loop, avg_logprob=-1.0, no_speech_prob=0.0, compression_ratio=0.0)
    assert drop_hallucinations([normal, sent_high, placeholder]) == [normal]
    assert drop_hallucinations([sent_high], compression_ratio_threshold=3.5) == [sent_high]


# -- the probe -------------------------------------------------------------------------------


def probe_server(routes: dict[str, tuple[int, object]]):
    async def reply(request: Request) -> Response:
        status, body = routes.get(request.path, (404, {"detail": "Not Found"}))
        return json_response(body, status)

    return reply


@pytest.fixture
def start_server(nursery):
    async def start(routes: dict[str, tuple[int, object]]) -> str:
        server = await nursery.start(HttpServer(probe_server(routes)).serve)
        return server.url

    return start


async def closed_port() -> int:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def remote_config(gpus: str, chat_model: str = "default") -> object:
    return config(f"""
[backends]
lid = "remote"
stt = "remote"
chat = "remote"
[backends.remote]
chat_model = "{chat_model}"
probe_timeout_s = 2.0
{gpus}""")


async def test_probe_finds_working_servers_and_names_a_missing_model(start_server):
    speech = await start_server({"/health": (200, {"status": "ok"})})  # whisper.cpp
    chat = await start_server({"/health": (200, {"status": "ok"}),
                               "/v1/models": (200, {"object": "list", "data": [{"id": "qwen"}]})})
    cfg = remote_config(f"""
[[gpus]]
name = "box"
url = "{speech}"
dialect = "whisper.cpp"
chat_url = "{chat}"
chat_dialect = "vllm"
""", chat_model="llama3")
    results = await probe_config(cfg)
    by_url = {r.url: r for r in results}
    assert by_url[speech].status == "ok"
    assert by_url[speech].capabilities == ["lid", "stt"]
    assert by_url[chat].status == "error"
    assert by_url[chat].errors == ["chat model 'llama3' is not in /v1/models (qwen)"]
    assert unusable_capabilities(cfg, results) == ["chat"]


async def test_llama_servers_serve_their_only_model_under_any_name(start_server):
    """llama-server and llama-cpp-python answer any model name with the one model they
    serve: an unlisted name is no warning then, but still one when several are listed."""
    one = {"/health": (200, {"status": "ok"}),
           "/v1/models": (200, {"object": "list", "data": [{"id": "/m/SmolLM2.gguf"}]})}
    two = {"/health": (200, {"status": "ok"}),
           "/v1/models": (200, {"object": "list", "data": [{"id": "a"}, {"id": "b"}]})}
    speech = await start_server({"/health": (200, {"status": "ok"})})
    for dialect in ("llama.cpp", "llama-cpp-python"):
        single, several = await start_server(one), await start_server(two)
        cfg = remote_config(f"""
[[gpus]]
name = "one"
url = "{speech}"
dialect = "whisper.cpp"
chat_url = "{single}"
chat_dialect = "{dialect}"
[[gpus]]
name = "two"
url = "{speech}"
dialect = "whisper.cpp"
chat_url = "{several}"
chat_dialect = "{dialect}"
""")
        by_key = {(r.url, tuple(r.capabilities)): r for r in await probe_config(cfg)}
        chat_one = by_key[(single, ("chat",))]
        assert (chat_one.status, chat_one.warnings, chat_one.errors) == ("ok", [], []), dialect
        assert chat_one.checked[-1].endswith(
            "; chat model 'default' is served by its only model"
        )
        chat_two = by_key[(several, ("chat",))]
        assert chat_two.warnings == ["chat model 'default' is not in /v1/models (a, b)"]


async def test_probe_unreachable_and_refused_keys(start_server):
    port = await closed_port()
    locked = await start_server({"/v1/models": (401, {"error": {"message": "invalid api key"}})})
    cfg = remote_config(f"""
[[gpus]]
name = "dead"
url = "http://127.0.0.1:{port}"
[[gpus]]
name = "locked"
url = "{locked}"
api_key = "nope"
""")
    dead, refused = await probe_config(cfg)
    assert dead.errors[0].startswith("unreachable: ConnectError")
    assert refused.errors == ["/v1/models: HTTP 401: the api_key is refused (invalid api key)"]
    assert unusable_capabilities(cfg, [dead, refused]) == ["lid", "stt", "chat"]
    assert "ERROR   dead http://127.0.0.1:" in dead.lines()[0]


async def test_probe_warns_about_a_wrong_looking_dialect(start_server):
    url = await start_server({"/v1/models": (200, {"data": [{"id": "whisper-1"}]})})
    cfg = remote_config(f'[[gpus]]\nname = "g"\nurl = "{url}"\ndialect = "speaches"\n')
    (result,) = await probe_config(cfg)
    assert result.status == "warning"
    assert result.warnings[0].startswith("/health: HTTP 404: not served here")


def test_check_config_probe_and_run_batch_stop_on_a_wrong_url(tmp_path):
    cfg = tmp_path / "cofid.toml"
    cfg.write_text(f"""
[paths]
data = "{tmp_path / 'var'}"
[backends]
lid = "remote"
[backends.remote]
probe_timeout_s = 2.0
[[gpus]]
name = "typo"
url = "http://127.0.0.1:9"
""")
    probe = subprocess.run([sys.executable, "-m", "cofid.cli", "--config", str(cfg),
                            "check-config", "--probe"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 1
    assert "ERROR   typo http://127.0.0.1:9 (openai; lid)" in probe.stdout
    batch = subprocess.run([sys.executable, "-m", "cofid.cli", "--config", str(cfg),
                            "run-batch", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert batch.returncode == 1
    assert "no usable model server for lid: typo http://127.0.0.1:9: unreachable" in batch.stderr
