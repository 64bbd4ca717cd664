"""Bearer-token authentication and role checks for the gRPC control plane.

Clients send call metadata ``authorization: Bearer <token>`` (see :func:`bearer_metadata`).
Each configured token has a name and a role:

* ``viewer``   — read-only RPCs: GetTask, ListBatches, GetBatch, GetCall, ListCalls,
  WatchEvents, ListGpus, ListTradeVerdicts, GetEvidence, ListTasks;
* ``operator`` — everything a viewer may do, plus StartBatch, UploadAudit, Reaudit,
  CancelTask and ResumeTask.

grpc.health.v1 and server reflection are public (no token): load balancers, systemd
checks and grpcurl need them before they hold a token. Any other method — a method of
``cofi.v1.Cofi`` missing from :data:`METHOD_ROLES` or a method of some other service —
requires ``operator`` (deny by default: a new RPC is operator-only until it is listed).

:class:`AuthInterceptor` checks every call before the handler runs and, for rejected
calls, returns a handler of the same shape (unary/streaming) that aborts with
``UNAUTHENTICATED`` (missing/malformed metadata, unknown token) or ``PERMISSION_DENIED``
(role too low). A rejected request is never deserialized; a streaming one is never read.

Who is calling: for accepted calls the interceptor wraps the handler so that, while the
handler's code runs (and while a server-streaming response iterator is advanced),
:func:`current_caller` returns the :class:`Caller` (token name and role). ``trio.from_thread``
copies the calling thread's context, so code the handler runs in trio sees it too. With
``auth_enabled=False`` the caller is :data:`ANONYMOUS` (role operator). For public methods
(health, reflection) it is ``None``.

Token values are secrets: :class:`TokenTable` keeps only their SHA-256 digests, compares in
constant time (:func:`hmac.compare_digest` over equal-length digests, against every entry),
and neither its repr nor any message or log line contains a token.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

log = logging.getLogger(__name__)

VIEWER = "viewer"
OPERATOR = "operator"
ROLES: tuple[str, ...] = (VIEWER, OPERATOR)
_ROLE_RANK = {VIEWER: 1, OPERATOR: 2}

SERVICE = "cofi.v1.Cofi"

# Full method name -> role it needs. Methods of our service not listed need operator.
METHOD_ROLES: dict[str, str] = {
    f"/{SERVICE}/StartBatch": OPERATOR,
    f"/{SERVICE}/UploadAudit": OPERATOR,
    f"/{SERVICE}/Reaudit": OPERATOR,
    f"/{SERVICE}/CancelTask": OPERATOR,
    f"/{SERVICE}/ResumeTask": OPERATOR,
    f"/{SERVICE}/ListTasks": VIEWER,
    f"/{SERVICE}/GetTask": VIEWER,
    f"/{SERVICE}/ListBatches": VIEWER,
    f"/{SERVICE}/GetBatch": VIEWER,
    f"/{SERVICE}/GetCall": VIEWER,
    f"/{SERVICE}/ListCalls": VIEWER,
    f"/{SERVICE}/WatchEvents": VIEWER,
    f"/{SERVICE}/ListGpus": VIEWER,
    f"/{SERVICE}/ListTradeVerdicts": VIEWER,
    f"/{SERVICE}/GetEvidence": VIEWER,
}

# Services callable without a token.
PUBLIC_SERVICES: frozenset[str] = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

MSG_MALFORMED = (
    "missing or malformed authorization metadata: expected 'authorization: Bearer <token>'"
)
MSG_UNKNOWN = "unknown token"


def required_role(method: str, method_roles: Mapping[str, str] = METHOD_ROLES) -> str | None:
    """The role ``method`` ("/pkg.Service/Method") needs; None for public methods."""
    service = method.lstrip("/").partition("/")[0]
    if service in PUBLIC_SERVICES:
        return None
    return method_roles.get(method, OPERATOR)


def _short_method(method: str) -> str:
    return method.rpartition("/")[2] or method


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the configured token name and its role (never the token)."""

    name: str
    role: str

    def can(self, required: str) -> bool:
        """True if this caller's role is at least ``required``."""
        return _ROLE_RANK.get(self.role, 0) >= _ROLE_RANK.get(required, len(_ROLE_RANK) + 1)


# The caller used when authentication is disabled.
ANONYMOUS = Caller(name="anonymous", role=OPERATOR)

_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "cofi_grpc_caller", default=None
)


def current_caller() -> Caller | None:
    """The caller of the RPC whose handler is running in this thread/context, if any."""
    return _CALLER.get()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenTable:
    """Configured tokens: ``TokenTable([(name, role, token), ...])``.

    Raises ValueError (naming the entry, never the token) for an empty name or token,
    an unknown role, a duplicate name or a token given twice.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[tuple[str, str, str]]) -> None:
        table: list[tuple[bytes, Caller]] = []
        names: set[str] = set()
        for i, entry in enumerate(entries):
            name, role, token = entry
            label = f"token entry {i} ({name!r})"
            if not name:
                raise ValueError(f"token entry {i}: empty name")
            if role not in ROLES:
                raise ValueError(f"{label}: role {role!r} is not one of {', '.join(ROLES)}")
            if not isinstance(token, str) or not token.strip():
                raise ValueError(f"{label}: empty token")
            if token != token.strip() or any(c.isspace() for c in token):
                raise ValueError(f"{label}: token contains whitespace")
            if name in names:
                raise ValueError(f"{label}: duplicate name")
            digest = _digest(token)
            for other_digest, other in table:
                if hmac.compare_digest(digest, other_digest):
                    raise ValueError(f"{label}: same token as {other.name!r}")
            names.add(name)
            table.append((digest, Caller(name=name, role=role)))
        self._entries: tuple[tuple[bytes, Caller], ...] = tuple(table)

    @classmethod
    def from_config(
        cls, tokens: Iterable[Any], value: Callable[[Any], str] | None = None
    ) -> TokenTable:
        """From ``cofid.config.TokenConfig`` objects (``name``, ``role``, a value read with
        ``value``, by default :func:`cofid.config.token_value`, which reads token_file)."""
        if value is None:
            from cofid.config import token_value

            value = token_value
        read = value  # bound for the generator: mypy does not carry the narrowing into it
        return cls((t.name, t.role, read(t)) for t in tokens)

    def lookup(self, token: str) -> Caller | None:
        """The caller owning ``token``, or None. Compares against every entry."""
        digest = _digest(token)
        found: Caller | None = None
        for entry_digest, caller in self._entries:
            if hmac.compare_digest(digest, entry_digest) and found is None:
                found = caller
        return found

    def callers(self) -> tuple[Caller, ...]:
        return tuple(c for _, c in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.name}:{c.role}" for c in self.callers())
        return f"TokenTable([{inner}])"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:  # keep digests out of pickles too
        raise TypeError("TokenTable cannot be pickled")


def bearer_token(metadata: Iterable[Any] | None) -> str | None:
    """The token of the single ``authorization: Bearer <token>`` entry, else None.

    The scheme is matched case-insensitively (RFC 6750). Two authorization entries, a
    binary value, another scheme or an empty token give None.
    """
    values = []
    for item in metadata or ():
        key, val = item[0], item[1]
        if key.lower() == "authorization":
            values.append(val)
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        return None
    return token


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token``: pass as ``metadata=`` to a stub call."""
    if not token or any(c.isspace() for c in token):
        raise ValueError("token must be non-empty and contain no whitespace")
    return (("authorization", f"Bearer {token}"),)


# ---------------------------------------------------------------------------------------
# Handler wrapping

_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def _kind(handler: grpc.RpcMethodHandler | None) -> str:
    if handler is None:
        return "unary_unary"
    req = "stream" if handler.request_streaming else "unary"
    resp = "stream" if handler.response_streaming else "unary"
    return f"{req}_{resp}"


def _iterate_as(caller: Caller, iterator: Iterator[Any]) -> Iterator[Any]:
    """Advance ``iterator`` with ``caller`` set; closing this closes ``iterator``."""
    try:
        while True:
            token = _CALLER.set(caller)
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                _CALLER.reset(token)
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            token = _CALLER.set(caller)
            try:
                close()
            finally:
                _CALLER.reset(token)


def _with_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    kind = _kind(handler)
    behavior = getattr(handler, kind)
    streaming_response = handler.response_streaming

    def wrapped(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
        token = _CALLER.set(caller)
        try:
            result = behavior(request_or_iterator, context)
        finally:
            _CALLER.reset(token)
        if streaming_response and result is not None:
            return _iterate_as(caller, iter(result))
        return result

    return _FACTORIES[kind](
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _rejecting(
    handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler of ``handler``'s shape that aborts without reading the request."""

    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    # No deserializer: an unauthenticated request is never parsed.
    return _FACTORIES[_kind(handler)](abort)


class AuthInterceptor(grpc.ServerInterceptor):
    """Server interceptor enforcing bearer tokens and roles (see the module docstring).

    ``grpc.server(pool, interceptors=[AuthInterceptor(table)])``.
    """

    def __init__(
        self,
        tokens: TokenTable | None,
        *,
        auth_enabled: bool = True,
        method_roles: Mapping[str, str] = METHOD_ROLES,
    ) -> None:
        if auth_enabled and tokens is None:
            raise ValueError("auth is enabled but no token table was given")
        self._tokens = tokens if tokens is not None else TokenTable([])
        self._enabled = auth_enabled
        self._method_roles = dict(method_roles)
        if auth_enabled and not len(self._tokens):
            log.warning("gRPC auth is enabled with no tokens: every cofi.v1 call is refused")

    @property
    def auth_enabled(self) -> bool:
        return self._enabled

    def replace_tokens(self, tokens: TokenTable) -> None:
        """SIGHUP: new tokens take effect for the next call (one attribute swap)."""
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        required = required_role(method, self._method_roles)
        if required is None:
            return continuation(handler_call_details)
        if not self._enabled:
            handler = continuation(handler_call_details)
            return None if handler is None else _with_caller(handler, ANONYMOUS)

        token = bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            log.info("gRPC %s refused: missing or malformed authorization", method)
            return _rejecting(
                continuation(handler_call_details),
                grpc.StatusCode.UNAUTHENTICATED,
                MSG_MALFORMED,
            )
        caller = self._tokens.lookup(token)
        if caller is None:
            log.warning("gRPC %s refused: unknown token", method)
            return _rejecting(
                continuation(handler_call_details),
                grpc.StatusCode.UNAUTHENTICATED,
                MSG_UNKNOWN,
            )
        if not caller.can(required):
            message = (
                f"token '{caller.name}' has role {caller.role}; "
                f"{_short_method(method)} needs {required}"
            )
            log.warning("gRPC %s refused: %s", method, message)
            return _rejecting(
                continuation(handler_call_details), grpc.StatusCode.PERMISSION_DENIED, message
            )

        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _with_caller(handler, caller)
