"""Where `cofi-tui` connects and with which token, resolved as cofictl does.

Target: --target, then $COFI_TARGET, then the daemon's default unix socket
(var/cofid.sock, when it exists) and otherwise 127.0.0.1:50051.
Token: --token-file (first line), then $COFI_TOKEN; none for auth-disabled daemons.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = Path("var") / "cofid.sock"
DEFAULT_TCP = "127.0.0.1:50051"


@dataclass(frozen=True)
class Settings:
    target: str
    token: str | None
    batch_id: int | None = None
    ca_file: str | None = None


def resolve_target(arg: str | None, env: Mapping[str, str], socket: Path = DEFAULT_SOCKET) -> str:
    if arg:
        return arg
    if env.get("COFI_TARGET"):
        return env["COFI_TARGET"]
    return f"unix:{socket}" if socket.exists() else DEFAULT_TCP


def resolve_token(token_file: str | None, env: Mapping[str, str]) -> str | None:
    if token_file:
        text = Path(token_file).read_text(encoding="utf-8").strip()
        return text.splitlines()[0].strip() if text else None
    return env.get("COFI_TOKEN") or None


def parse_args(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(prog="cofi-tui", description="Live monitoring of cofid.")
    p.add_argument("--target", help="unix:PATH or HOST:PORT (default: $COFI_TARGET, "
                   f"then unix:{DEFAULT_SOCKET} if it exists, then {DEFAULT_TCP})")
    p.add_argument("--token-file", help="file holding the bearer token (default: $COFI_TOKEN)")
    p.add_argument("--batch", type=int, default=None,
                   help="open this batch id (default: follow the newest batch)")
    p.add_argument("--ca-file", default=None,
                   help="PEM root certificate: connect with TLS (remote daemons)")
    a = p.parse_args(argv)
    try:
        token = resolve_token(a.token_file, env)
    except OSError as e:
        p.error(f"cannot read --token-file: {e}")
    return Settings(resolve_target(a.target, env), token, a.batch, a.ca_file)
