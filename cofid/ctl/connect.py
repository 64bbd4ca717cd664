"""cofictl: where the daemon is, which token to send, the channel, and error mapping.

Target, first found wins:
  1. ``--target`` (``unix:/run/cofid/cofid.sock``, ``host:port``);
  2. ``$COFI_TARGET``;
  3. the daemon's configuration (``--config``, else ``$COFID_CONFIG``, else the embedded
     default): the first ``unix:`` listen address whose socket exists, else the first
     TCP address (a wildcard host becomes loopback), else the first address.

Token, first found wins (never a command-line value: it would land in shell history):
  1. ``--token-file FILE``;
  2. ``$COFI_TOKEN``;
  3. ``$XDG_CONFIG_HOME/cofi/token`` (default ``~/.config/cofi/token``) if it exists.
No token: no authorization metadata (a daemon with ``grpc.auth = false``).

Every gRPC error becomes a :class:`CtlError` with the status name, the daemon's message
and an exit code (see :data:`EXIT_CODES_HELP`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import grpc

from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from cofid.config import Config

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3, 4
EXIT_REFUSED, EXIT_INTERRUPTED = 5, 130

EXIT_CODES_HELP = """\
exit codes:
  0    ok
  1    the task failed or was cancelled (status, --wait); export incomplete;
       an evidence bundle that does not verify
  2    usage error (bad arguments, or the daemon answered INVALID_ARGUMENT)
  3    daemon unreachable or unavailable (UNAVAILABLE, DEADLINE_EXCEEDED)
  4    authentication / authorisation (UNAUTHENTICATED, PERMISSION_DENIED)
  5    the daemon refused the request (NOT_FOUND, ALREADY_EXISTS,
       FAILED_PRECONDITION, RESOURCE_EXHAUSTED, INTERNAL, ...)
  130  interrupted (Ctrl-C) while waiting; the task itself goes on
"""

_CODE_EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNREACHABLE,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
}


class CtlError(Exception):
    """A failure to report on stderr (one line, no traceback) with an exit code."""

    def __init__(self, message: str, code: int, status: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def from_rpc_error(e: grpc.RpcError, target: str, token_source: str) -> CtlError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else "") or ""
    name = code.name if code is not None else "UNKNOWN"
    msg = f"{name}: {details}"
    if code == grpc.StatusCode.UNAVAILABLE:
        msg = f"{name}: cofid at {target} is unreachable or unavailable ({details})"
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        msg = f"{name}: {details} (token from {token_source})"
    return CtlError(msg, _CODE_EXIT.get(code, EXIT_REFUSED), name)


def is_unavailable(e: BaseException) -> TypeGuard[grpc.RpcError]:
    return isinstance(e, grpc.RpcError) and e.code() in (
        grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


# ---- target ---------------------------------------------------------------------------


def _client_address(addr: str) -> str:
    if addr.startswith("unix:"):
        return addr
    host, _, port = addr.rpartition(":")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("[::]", "::"):
        host = "[::1]"
    return f"{host}:{port}"


def target_from_config(config_path: str | None) -> tuple[str, Config]:
    from cofid.config import ConfigError, load_config

    path = config_path or os.environ.get("COFID_CONFIG") or None
    try:
        cfg = load_config(path)
    except ConfigError as e:
        raise CtlError(f"configuration error: {e}", EXIT_USAGE) from None
    addrs = list(cfg.listen_addresses)
    for a in addrs:
        if a.startswith("unix:") and Path(a[5:]).exists():
            return a, cfg
    for a in addrs:
        if not a.startswith("unix:"):
            return _client_address(a), cfg
    return addrs[0], cfg


def resolve_target(args: argparse.Namespace) -> tuple[str, str, Config | None]:
    """(target, where it came from, config or None)."""
    if getattr(args, "target", None):
        return args.target, "--target", None
    env = os.environ.get("COFI_TARGET", "").strip()
    if env:
        return env, "$COFI_TARGET", None
    target, cfg = target_from_config(getattr(args, "config", None))
    return target, f"configuration {cfg.source}", cfg


# ---- token ----------------------------------------------------------------------------


def default_token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cofi" / "token"


def _read_token(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as e:
        raise CtlError(f"cannot read token file {path}: {e.strerror}", EXIT_AUTH) from None
    if not text:
        raise CtlError(f"token file {path} is empty", EXIT_AUTH)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"cofictl: warning: token file {path} is readable by others (chmod 600 it)",
              file=sys.stderr)
    return text


def resolve_token(args: argparse.Namespace) -> tuple[str | None, str]:
    """(token or None, where it came from)."""
    explicit = getattr(args, "token_file", None)
    if explicit:
        return _read_token(Path(explicit)), f"--token-file {explicit}"
    env = os.environ.get("COFI_TOKEN", "").strip()
    if env:
        return env, "$COFI_TOKEN"
    default = default_token_file()
    if default.is_file():
        return _read_token(default), str(default)
    return None, "nowhere (no --token-file, $COFI_TOKEN or ~/.config/cofi/token)"


# ---- channel --------------------------------------------------------------------------


@dataclass
class Connection:
    """A channel and stub to cofid plus the call metadata; methods raise CtlError."""

    target: str
    target_source: str
    token: str | None
    token_source: str
    ca_file: str | None = None
    tls: bool = False
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.channel: grpc.Channel | None = None
        self.stub: pb_grpc.CofiStub | None = None
        self.open()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        return (("authorization", f"Bearer {self.token}"),) if self.token else None

    def open(self) -> None:
        self.close()
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
        if self.ca_file or (self.tls and not self.target.startswith("unix:")):
            roots = Path(self.ca_file).read_bytes() if self.ca_file else None
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.secure_channel(self.target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(self.target, options=options)
        self.stub = pb_grpc.CofiStub(self.channel)

    def close(self) -> None:
        if self.channel is not None:
            with contextlib.suppress(Exception):
                self.channel.close()
        self.channel = None

    def error(self, e: grpc.RpcError) -> CtlError:
        return from_rpc_error(e, self.target, self.token_source)

    def call(self, method: str, request: Message | Iterator[Message], *,
             timeout: float | None = None) -> Any:
        """A unary (or client-streaming) call; grpc errors become CtlError."""
        try:
            return getattr(self.stub, method)(request, metadata=self.metadata,
                                              timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise self.error(e) from None

    def raw(self, method: str, request: Message, *, timeout: float | None = None) -> Any:
        """Like call() but grpc errors propagate (callers that retry)."""
        return getattr(self.stub, method)(request, metadata=self.metadata,
                                          timeout=timeout or self.timeout)

    def stream(self, method: str, request: Message, *, timeout: float | None = None) -> Any:
        """A server-streaming call (the iterator; grpc errors propagate while iterating)."""
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)


def connect(args: argparse.Namespace) -> Connection:
    target, target_source, cfg = resolve_target(args)
    token, token_source = resolve_token(args)
    ca_file = getattr(args, "ca_file", None) or os.environ.get("COFI_CA_FILE") or None
    tls = bool(getattr(args, "tls", False))
    if cfg is not None and not target.startswith("unix:") and cfg.grpc.tls.cert_file:
        ca_file = ca_file or cfg.grpc.tls.cert_file
    return Connection(target, target_source, token, token_source, ca_file=ca_file, tls=tls,
                      timeout=float(getattr(args, "timeout", 30.0) or 30.0))
