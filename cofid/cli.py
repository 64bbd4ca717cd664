"""`cofid`: the daemon's command line.

  cofid check-config [--config FILE] [--probe]
                                           print the effective configuration (secrets masked);
                                           --probe: check every model server URL and model
  cofid db upgrade [--config FILE]         create / migrate the schema (idempotent)
  cofid db ddl [--version N]               print the MySQL DDL of the table definitions
                                           (--version N: that migration's tables)
  cofid run-batch DIR [--config FILE] [--json]
                                           process one batch directory to the end
  cofid serve [--config FILE]              the daemon (gRPC control plane, watcher, engine)

Exit codes: 0 ok (a batch that completed, even with failed files); 1 a fatal error
(bad directory, unreachable database, invalid CSV header); 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from cofid.config import Config, ConfigError, effective_config, load_config

EXIT_OK, EXIT_FATAL, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cofid", description="cofi call-audit daemon")
    p.add_argument("--config", "-c", help="cofid.toml (default: $COFID_CONFIG, else the embedded default)")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    sub = p.add_subparsers(dest="command", required=True)
    cc = sub.add_parser("check-config", help="print the effective configuration, secrets masked")
    cc.add_argument("--probe", action="store_true",
                    help="also check that every configured model server URL and model answers")
    db = sub.add_parser("db", help="schema management")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="create or migrate the schema (idempotent)")
    ddl = dbsub.add_parser("ddl", help="print the MySQL DDL generated from the table definitions")
    ddl.add_argument("--version", type=int, default=None, metavar="N",
                     help="only the tables schema version N added (sql/migrations/NNNN_*.sql)")
    rb = sub.add_parser(
        "run-batch",
        help="process one batch directory to the end",
        epilog="example: cofid run-batch /data/batches/2026-11-22 --json",
    )
    rb.add_argument("directory", type=Path)
    rb.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    sv = sub.add_parser("serve", help="run the daemon")
    sv.add_argument("--no-watch", action="store_true", help="do not watch batch roots")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config_path = args.config or os.environ.get("COFID_CONFIG")
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        print(f"cofid: configuration error: {e}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level or cfg.service.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "check-config":
        print(f"# effective configuration (from {cfg.source})")
        print(json.dumps(effective_config(cfg), indent=2, default=str))
        if args.probe:
            from cofid.backends.probe import probe_command

            return probe_command(cfg)
        return EXIT_OK
    probed: list[Any] = []  # the start probe's results: failing hosts start unhealthy
    if args.command in ("run-batch", "serve"):
        from cofid.backends.probe import startup_probe

        problem, probed = startup_probe(cfg)  # a wrong URL stops here, not after minutes of retries
        if problem:
            print(f"cofid: {problem}", file=sys.stderr)
            return EXIT_FATAL
    if args.command == "db":
        if args.db_command == "ddl":
            from cofid.store.migrate import mysql_ddl

            sys.stdout.write(mysql_ddl(args.version))
            return EXIT_OK
        return _db_upgrade(cfg)
    if args.command == "run-batch":
        from cofid.commands.run_batch import run_batch_command

        return run_batch_command(cfg, args.directory, as_json=args.json, probe_results=probed)
    if args.command == "serve":
        from cofid.commands.serve import serve_command

        return serve_command(cfg, watch=not args.no_watch, probe_results=probed)
    return EXIT_USAGE


def _db_upgrade(cfg: Config) -> int:
    from cofid.store.db import create_engine
    from cofid.store.migrate import upgrade
    from cofid.store.types import DatabaseError

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(cfg.database_url, pool_size=1)
    try:
        applied = upgrade(engine)
    except DatabaseError as e:
        print(f"cofid: database unreachable: {e.orig}", file=sys.stderr)
        return EXIT_FATAL
    finally:
        engine.dispose()
    print(f"schema: applied {applied}" if applied else "schema: up to date")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
