"""Where `cofi-tui` connects and with which token: exactly as cofictl resolves them
(cofid.ctl.connect) — --target, then $COFI_TARGET, then the daemon's configuration (its
unix socket when it exists, else its TCP address); the token from --token-file, then
$COFI_TOKEN, then ~/.config/cofi/token; none for auth-disabled daemons.

The operator actions (reaudit, cancel a task) send a second token, the operator's, and only
that one: --operator-token-file PATH, else $COFI_OPERATOR_TOKEN (the token itself, as
$COFI_TOKEN is for cofictl). It is read once, at start, with cofictl's rules (an empty or
unreadable file is refused, a file others can read is warned about) and never shown. Without
it the action keys say so in one line and send nothing; viewing never uses it."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from cofid.ctl.connect import CtlError, resolve_target, resolve_token

DEFAULT_TCP = "127.0.0.1:50051"


@dataclass(frozen=True)
class Settings:
    target: str
    token: str | None
    batch_id: int | None = None
    ca_file: str | None = None
    token_source: str = ""  # where the token came from, for the banner's auth line
    # The operator actions' token (module docstring); None: the actions send nothing.
    operator_token: str | None = None
    operator_token_source: str = ""

    def __repr__(self) -> str:  # never show a token, not even in a traceback
        return (f"Settings(target={self.target!r}, batch_id={self.batch_id!r}, "
                f"token from {self.token_source or 'nowhere'!r}, operator token from "
                f"{self.operator_token_source or 'nowhere'!r})")


OPERATOR_TOKEN_ENV = "COFI_OPERATOR_TOKEN"


def resolve_operator_token(path: str | None) -> tuple[str | None, str]:
    """(the operator token or None, where it came from): --operator-token-file, then
    $COFI_OPERATOR_TOKEN. A file is read as cofictl reads its --token-file."""
    if path:
        token, _ = resolve_token(argparse.Namespace(token_file=path))
        return token, f"--operator-token-file {path}"
    env = os.environ.get(OPERATOR_TOKEN_ENV, "").strip()
    if env:
        return env, f"${OPERATOR_TOKEN_ENV}"
    return None, ""


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="cofi-tui", description="Live monitoring of cofid.")
    p.add_argument("--target", help="unix:PATH or HOST:PORT (default: $COFI_TARGET, then "
                   "the daemon's configuration: its unix socket if it exists, else its TCP "
                   f"address — {DEFAULT_TCP} by default)")
    p.add_argument("--config", help="the daemon's cofid.toml to find it by (default: "
                   "$COFID_CONFIG, else the embedded default)")
    p.add_argument("--token-file", help="file holding the bearer token (default: $COFI_TOKEN, "
                   "then ~/.config/cofi/token)")
    p.add_argument("--operator-token-file", metavar="PATH",
                   help="file holding an operator token, sent only by the actions (reaudit, "
                   f"cancel a task); default: ${OPERATOR_TOKEN_ENV}, else none: the action "
                   "keys then say so and send nothing")
    p.add_argument("--batch", type=int, default=None,
                   help="open this batch id (default: follow the newest batch)")
    p.add_argument("--ca-file", default=None,
                   help="PEM root certificate: connect with TLS (remote daemons)")
    a = p.parse_args(argv)
    try:
        target, _where, _cfg = resolve_target(a)
        token, _source = resolve_token(a)
        operator, operator_source = resolve_operator_token(a.operator_token_file)
    except CtlError as e:
        p.error(str(e))
    return Settings(target, token, a.batch, a.ca_file, _source, operator, operator_source)
