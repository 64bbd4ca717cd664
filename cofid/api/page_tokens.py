"""Signed page tokens: a client may hold and return one, never make or alter one.

A token is ``<payload>.<mac>``, both url-safe base64 without padding: the payload is the
JSON the paging RPC put in it (its keyset and the digest of the filters it was issued
for), the mac an HMAC-SHA256 of the payload bytes under a key of this daemon instance.

The key is 32 random bytes drawn when the control plane is built
(:func:`new_key`, called by :class:`cofid.api.control_plane.ControlPlane`) and kept only
in memory: a restarted daemon refuses the tokens of the one before (the client starts
again from the first page, as it would after any refusal). Persisting the key would make
paging survive a restart, which no client needs (a keyset page is cheap to re-read), at
the price of one more secret at rest. One control plane per process, as ``cofid serve``
runs it.

:func:`verify` checks the length, the alphabet and the mac (in constant time) before a
byte of the payload is parsed, so forged, truncated, re-encoded or foreign tokens all end
the same way: None, which the callers turn into INVALID_ARGUMENT. What a payload holds is
still range-checked by them (a signed token is ours, but checks cost nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

MAX_TOKEN_CHARS = 512  # ours are < 200; anything longer is not ours and is not decoded
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_key = secrets.token_bytes(32)


def new_key() -> None:
    """A fresh key: every token issued before is refused from now on."""
    global _key
    _key = secrets.token_bytes(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not _ALPHABET.fullmatch(text):
        raise ValueError("not url-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(raw: bytes) -> bytes:
    return hmac.new(_key, raw, hashlib.sha256).digest()


def sign(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(raw)}.{_b64(_mac(raw))}"


def verify(token: str) -> dict[str, Any] | None:
    """The payload of a token this daemon signed, or None for anything else."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    body, dot, mac = token.partition(".")
    if not dot:
        return None
    try:
        raw, got = _unb64(body), _unb64(mac)
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(got, _mac(raw)):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
