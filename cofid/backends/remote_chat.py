"""Chat completions over OpenAI-compatible HTTP (vLLM, llama.cpp's server, Ollama) with
the nested `json_schema` response_format; every reply is validated against the schema on
our side (an invalid one is a BackendError carrying the reply)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from cofid.backends.base import BackendError, ChatRequest, ChatResult
from cofid.backends.json_schema import SchemaViolation, validate
from cofid.backends.remote_http import Endpoint, RemoteOptions

CHAT_PATH = "/v1/chat/completions"
REPLY_SUMMARY_CHARS = 2000

# -- chat ----------------------------------------------------------------------------------


def _strip_code_fence(content: str) -> str:
    # Some servers (Ollama, llama.cpp without grammar) wrap JSON in a ```json fence.
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3]
        first_line, _, rest = text.partition("\n")
        text = rest if first_line.strip().isalpha() or not first_line.strip() else text
    return text.strip()


class RemoteChat:
    """Structured chat: the reply must be JSON matching the request's schema."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options

    async def complete(self, request: ChatRequest) -> ChatResult:
        payload = {
            "model": self.options.chat_model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "temperature": self.options.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": True,
                },
            },
        }
        summary = {
            "url": self.endpoint.url(CHAT_PATH),
            "model": self.options.chat_model,
            "purpose": request.purpose,
            "schema_name": request.schema_name,
            "system_chars": len(request.system),
            "user_chars": len(request.user),
        }
        body, _ = await self.endpoint.post_json(CHAT_PATH, json=payload)
        content, finish_reason = _first_choice(body)
        reply = content[:REPLY_SUMMARY_CHARS]
        details: dict[str, Any] = {"reply": reply, "finish_reason": finish_reason}
        if finish_reason == "length":
            raise BackendError("the reply was cut off at the token limit", details=details)
        try:
            data = json.loads(_strip_code_fence(content))
        except ValueError as exc:
            raise BackendError(f"the reply is not JSON: {exc}", details=details) from exc
        if not isinstance(data, dict):
            raise BackendError("the reply is not a JSON object", details=details)
        try:
            validate(data, request.schema)
        except SchemaViolation as exc:
            details["violation"] = str(exc)
            raise BackendError(f"the reply breaks the schema: {exc}", details=details) from exc
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
            "chat reply has no choices[0].message", details={"reply": str(body)[:2000]}
        ) from exc
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        raise BackendError(
            "chat reply has no content", details={"reply": str(message)[:2000], "refusal": refusal}
        )
    return content, choice.get("finish_reason") if isinstance(choice, Mapping) else None
