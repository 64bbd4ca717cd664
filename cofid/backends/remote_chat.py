"""Chat completions over OpenAI-compatible HTTP (vLLM, llama.cpp's server,
llama-cpp-python, Ollama), in the server's dialect (cofid.backends.dialects): its
response_format shape, `max_tokens` always, the temperature when the dialect sends one.

Every reply is checked on our side, in this order, and each failure is a ModelReplyError
(a BackendError: the engine retries it; its details carry the reply, cut at REPLY_LIMIT,
the finish reason, and a note that it is the model's error, not the store's):

1. cut off at max_tokens (finish_reason "length");
2. not JSON, JSON with NaN / Infinity (no JSON spelling, nothing a column can hold), or an
   object that repeats a key (Python's json keeps the last one silently);
3. not an object, or not matching the request's schema;
4. schema-valid but not storable (cofid.domain.replies: unique and complete question
   ids, finite positive amounts, ...).

LLM2 replies come keyed by question id; `ChatResult.data["answers"]` is handed to the
stage as the list of {question_id, answer, evidence} in question order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from cofid.backends.base import BackendError, ChatRequest, ChatResult
from cofid.backends.dialects import response_format
from cofid.backends.json_schema import SchemaViolation, validate
from cofid.backends.remote_http import (  # noqa: F401 (ModelReplyError: imported from here)
    MODEL_ERROR_NOTE,
    REPLY_LIMIT,
    Endpoint,
    ModelReplyError,
    RemoteOptions,
    describing,
)
from cofid.domain.replies import llm1_problems, llm2_problems, normalized_llm2

CHAT_PATH = "/v1/chat/completions"
REPLY_SUMMARY_CHARS = REPLY_LIMIT


class _RepeatedKey(ValueError):
    pass


def _strip_code_fence(content: str) -> str:
    # Some servers (Ollama, llama.cpp without grammar) wrap JSON in a ```json fence.
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3]
        first_line, _, rest = text.partition("\n")
        text = rest if first_line.strip().isalpha() or not first_line.strip() else text
    return text.strip()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(f"the reply repeats the key {key!r}")
        out[key] = value
    return out


def parse_reply(content: str) -> Any:
    """The reply's JSON value; ValueError for NaN / Infinity or a repeated key."""
    return json.loads(
        _strip_code_fence(content), parse_constant=_no_constant, object_pairs_hook=_unique_keys
    )


def question_ids(request: ChatRequest) -> list[str]:
    """The asked question ids: the context's, else the schema's (keyed or list form)."""
    asked = request.context.get("questions") if isinstance(request.context, Mapping) else None
    if isinstance(asked, list) and asked:
        return [str(q["id"]) for q in asked if isinstance(q, Mapping) and "id" in q]
    answers = request.schema.get("properties", {}).get("answers", {})
    if answers.get("type") == "object":
        return [str(qid) for qid in answers.get("required", ())]
    enum = answers.get("items", {}).get("properties", {}).get("question_id", {}).get("enum")
    return [str(qid) for qid in enum or ()]


def reply_problems(request: ChatRequest, data: Mapping[str, Any]) -> list[str]:
    """What makes a schema-valid reply unstorable, by purpose (cofid.domain.replies)."""
    if request.purpose == "llm1":
        return llm1_problems(data)
    if request.purpose == "llm2":
        return llm2_problems(data, question_ids(request))
    return []


class RemoteChat:
    """Structured chat: the reply must be JSON matching the request's schema."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of the chat request, in this server's dialect."""
        dialect = self.options.dialect
        payload: dict[str, Any] = {
            "model": dialect.model or self.options.chat_model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": dialect.max_tokens,
            "response_format": response_format(dialect, request.schema_name, request.schema),
        }
        if dialect.chat_temperature is not None:
            payload["temperature"] = dialect.chat_temperature
        return payload

    async def complete(self, request: ChatRequest) -> ChatResult:
        payload = self.payload(request)
        summary = {
            "url": self.endpoint.public_url(CHAT_PATH),
            "model": payload["model"],
            "dialect": self.options.dialect.name,
            "max_tokens": payload["max_tokens"],
            "purpose": request.purpose,
            "schema_name": request.schema_name,
            "system_chars": len(request.system),
            "user_chars": len(request.user),
        }
        url = self.endpoint.url(CHAT_PATH)
        body, status = await self.endpoint.post_json(CHAT_PATH, model=payload["model"], json=payload)
        with describing(url, model=payload["model"], status=status):
            content, finish_reason = _first_choice(body)
        # A reply the model got wrong: its failure event shows the reply's text.
        with describing(url, model=payload["model"], status=status, reply=content):
            return self._checked(request, payload, summary, body, content, finish_reason)

    def _checked(self, request: ChatRequest, payload: dict[str, Any], summary: dict[str, Any],
                 body: Any, content: str, finish_reason: str | None) -> ChatResult:
        reply = content[:REPLY_SUMMARY_CHARS]
        details: dict[str, Any] = {"reply": reply, "finish_reason": finish_reason}
        if finish_reason == "length":
            raise ModelReplyError(
                f"the reply was cut off at the token limit (max_tokens={payload['max_tokens']})",
                details=details,
            )
        try:
            data = parse_reply(content)
        except _RepeatedKey as exc:
            raise ModelReplyError(str(exc), details=details) from exc
        except ValueError as exc:
            raise ModelReplyError(f"the reply is not JSON: {exc}", details=details) from exc
        if not isinstance(data, dict):
            raise ModelReplyError("the reply is not a JSON object", details=details)
        try:
            validate(data, request.schema)
        except SchemaViolation as exc:
            details["violation"] = str(exc)
            raise ModelReplyError(f"the reply breaks the schema: {exc}", details=details) from exc
        problems = reply_problems(request, data)
        if problems:
            details["problems"] = problems
            raise ModelReplyError(
                "the reply cannot be stored: " + "; ".join(problems), details=details
            )
        if request.purpose == "llm2":
            data = normalized_llm2(data, question_ids(request))
        response = {
            "model": body.get("model"),
            "content": reply,
            "finish_reason": finish_reason,
            "usage": body.get("usage") if isinstance(body.get("usage"), Mapping) else None,
        }
        return ChatResult(data=data, request=summary, response=response)


def _first_choice(body: Any) -> tuple[str, str | None]:
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(
            "chat reply has no choices[0].message",
            details={"reply": json.dumps(body, default=str)[:REPLY_LIMIT]},
        ) from exc
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        raise BackendError(
            "chat reply has no content",
            details={"reply": json.dumps(message, default=str)[:REPLY_LIMIT], "refusal": refusal},
        )
    return content, choice.get("finish_reason") if isinstance(choice, Mapping) else None
