"""`cofictl`: the operators' command line over gRPC (cofi.v1).

Parsing and dispatch only; the subcommands live in cofid/ctl/commands/, the connection
(target, token, errors) in cofid/ctl/connect.py, output in cofid/ctl/output.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from cofid.ctl.commands import (
    SubParsers,
    batches,
    evidence,
    export,
    operations,
    tasks,
    trades,
    upload,
    watch,
)
from cofid.ctl.connect import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CtlError,
    connect,
)
from cofid.ctl.escape import terminal_text

DESCRIPTION = """\
cofictl talks to cofid over gRPC.

target: --target, else $COFI_TARGET, else the daemon's configuration (--config or
$COFID_CONFIG): its unix socket when present, else its TCP address.
token: --token-file FILE, else $COFI_TOKEN, else ~/.config/cofi/token when present.
Results go to stdout (tables, or JSON with --json); messages go to stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with the usage, like argparse, but one line
        self.print_usage(sys.stderr)
        raise CtlError(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def _common(json: bool = True) -> argparse.ArgumentParser:
    """Connection options, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    s = argparse.SUPPRESS
    g.add_argument("--target", default=s, help="unix:/path/cofid.sock or host:port")
    g.add_argument("--config", default=s, help="cofid.toml to find the target in")
    g.add_argument("--token-file", default=s, metavar="FILE", help="file holding the token")
    g.add_argument("--ca-file", default=s, metavar="FILE", help="TLS: the CA (or server) cert")
    g.add_argument("--tls", action="store_true", default=s, help="TLS with the system CAs")
    g.add_argument("--timeout", type=float, default=s, metavar="SECONDS",
                   help="deadline of each request (default 30)")
    if json:
        p.add_argument("--json", action="store_true", default=s,
                       help="one JSON document (JSON lines for watch) on stdout")
    return p


def _make(sub: SubParsers, name: str, help_: str, examples: str,
          common: argparse.ArgumentParser, json: bool = True) -> argparse.ArgumentParser:
    parents = [common if json else _common(json=False)]
    return sub.add_parser(name, help=help_, description=help_, parents=parents,
                          epilog=f"{examples}\n\n{EXIT_CODES_HELP}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def parser() -> argparse.ArgumentParser:
    common = _common()
    p = _Parser(prog="cofictl", description=DESCRIPTION, parents=[common],
                epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (tasks, operations, upload, batches, trades, evidence, watch, export):
        module.register(sub, common, _make)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = parser().parse_args(argv)
        except SystemExit as e:  # --help
            return int(e.code or 0)
        args.json = getattr(args, "json", False)
        conn = connect(args)
        try:
            return args.func(conn, args)
        finally:
            conn.close()
    except CtlError as e:
        print(f"cofictl: {terminal_text(e.message)}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("cofictl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `cofictl ... | head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
