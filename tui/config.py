"""Where `cofi-tui` connects and with which token: exactly as cofictl resolves them
(cofid.ctl.connect) — --target, then $COFI_TARGET, then the daemon's configuration (its
unix socket when it exists, else its TCP address); the token from --token-file, then
$COFI_TOKEN, then ~/.config/cofi/token; none for auth-disabled daemons."""

from __future__ import annotations

import argparse
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


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="cofi-tui", description="Live monitoring of cofid.")
    p.add_argument("--target", help="unix:PATH or HOST:PORT (default: $COFI_TARGET, then "
                   "the daemon's configuration: its unix socket if it exists, else its TCP "
                   f"address — {DEFAULT_TCP} by default)")
    p.add_argument("--config", help="the daemon's cofid.toml to find it by (default: "
                   "$COFID_CONFIG, else the embedded default)")
    p.add_argument("--token-file", help="file holding the bearer token (default: $COFI_TOKEN, "
                   "then ~/.config/cofi/token)")
    p.add_argument("--batch", type=int, default=None,
                   help="open this batch id (default: follow the newest batch)")
    p.add_argument("--ca-file", default=None,
                   help="PEM root certificate: connect with TLS (remote daemons)")
    a = p.parse_args(argv)
    try:
        target, _where, _cfg = resolve_target(a)
        token, _source = resolve_token(a)
    except CtlError as e:
        p.error(str(e))
    return Settings(target, token, a.batch, a.ca_file, _source)
