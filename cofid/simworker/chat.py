"""POST /v1/chat/completions with a json_schema response_format (or llama.cpp's
json_object + schema).

A reply is `example_instance` of the request's schema, salted with the hash of the request
body: the same request always gets the same reply. A "malformed" fault answers broken JSON
or, half the time, JSON that breaks the schema, so the client's schema check (not only its
JSON parse) is exercised.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from cofid.backends.json_schema import SchemaViolation, example_instance, validate
from cofid.simworker.config import JobRunner
from cofid.simworker.http_server import Request, Response, error_response, json_response

CHAT_PATH = "/v1/chat/completions"


def _violating_content(schema: Mapping[str, Any] | None) -> str:
    # An object first, so the client's schema check (not only its JSON parse) is exercised.
    candidates: tuple[Any, ...] = ({}, {"malformed": True}, [], "malformed", 1.5, None)
    for candidate in candidates:
        try:
            validate(candidate, schema or {})
        except SchemaViolation:
            return json.dumps(candidate)
    return '{"malformed": '


async def chat(worker: JobRunner, request: Request) -> Response:
    try:
        body = request.json()
    except ValueError as exc:
        return error_response(400, f"body is not JSON: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return error_response(400, "'messages' must be a list")
    response_format = body.get("response_format") or {}
    schema = None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            return error_response(400, "response_format.json_schema.schema is required")
    elif response_format.get("type") == "json_object" and "schema" in response_format:
        # llama.cpp's and llama-cpp-python's shape of the same request.
        schema = response_format["schema"]
        if not isinstance(schema, dict):
            return error_response(400, "response_format.schema must be an object")

    fault, failure = await worker.run_job("chat", 0.0)
    if failure is not None:
        return failure

    digest = hashlib.sha256(request.body).hexdigest()
    if fault == "malformed":
        content = _violating_content(schema) if int(digest, 16) % 2 else '{"answers": [{"'
    elif schema is not None:
        content = json.dumps(example_instance(schema, salt=digest))
    else:
        content = "simulated reply"
    prompt_chars = sum(
        len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict)
    )
    usage = {
        "prompt_tokens": prompt_chars // 4,
        "completion_tokens": len(content) // 4,
        "total_tokens": prompt_chars // 4 + len(content) // 4,
    }
    return json_response(
        {
            "id": f"chatcmpl-{digest[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "default"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )
