"""`cofi-simworker` (and `python -m cofid.simworker`): flags -> `SimConfig`, then serve.

It prints "listening on HOST:PORT" once bound (tests and benchmarks read that line to learn
the port of `--listen 127.0.0.1:0`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from cofid.simworker.config import SimConfig, load_manifest
from cofid.simworker.server import serve_simworker


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {value}")
    return rate


def parse_args(argv: list[str] | None = None) -> SimConfig:
    parser = argparse.ArgumentParser(
        prog="cofi-simworker", description="A simulated OpenAI-compatible GPU host."
    )
    parser.add_argument(
        "--listen", type=_host_port, default=("127.0.0.1", 8000), metavar="HOST:PORT"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--fail-rate", type=_rate, default=0.0)
    parser.add_argument("--hang-rate", type=_rate, default=0.0)
    parser.add_argument("--drop-rate", type=_rate, default=0.0)
    parser.add_argument("--malformed-rate", type=_rate, default=0.0)
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--manifest", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.time_scale < 0:
        parser.error("--time-scale must not be negative")
    if args.slots is not None and args.slots < 1:
        parser.error("--slots must be at least 1")
    if args.fail_rate + args.hang_rate + args.drop_rate + args.malformed_rate > 1.0:
        parser.error("the fault rates add up to more than 1")
    try:
        manifest = load_manifest(args.manifest) if args.manifest else None
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    host, port = args.listen
    return SimConfig(
        host=host,
        port=port,
        seed=args.seed,
        time_scale=args.time_scale,
        fail_rate=args.fail_rate,
        hang_rate=args.hang_rate,
        drop_rate=args.drop_rate,
        malformed_rate=args.malformed_rate,
        slots=args.slots,
        manifest=manifest,
    )


async def _run(config: SimConfig) -> None:
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, config)
        print(f"listening on {config.host}:{worker.port}", flush=True)


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    try:
        trio.run(_run, config)
    except KeyboardInterrupt:
        sys.exit(130)
