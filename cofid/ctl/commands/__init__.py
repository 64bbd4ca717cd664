"""cofictl subcommands, one module per group; each has register(sub, common, make)."""

from __future__ import annotations

import argparse
from typing import Protocol, TypeAlias

# A string: _SubParsersAction is generic only in typeshed, not subscriptable at run time.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class MakeParser(Protocol):
    """main._make: adds one subcommand's parser with the shared options and epilog."""

    def __call__(self, sub: SubParsers, name: str, help_: str, examples: str,
                 common: argparse.ArgumentParser,
                 json: bool = True) -> argparse.ArgumentParser: ...
