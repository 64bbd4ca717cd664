"""`cofid serve`: the daemon (gRPC control plane over the engine).

The daemon is cofid.daemon.serve_main. Start-up: open the App (migrations, writer, GPU pool), apply the task restart rule and
resume every unfinished batch (directory and upload batches), start the gRPC server and
log one line with the listen addresses; then `on_ready(addresses)` is called (the hook
for systemd's READY=1). A unix socket is made mode 0o660 after binding, whatever the
umask (group `cofi` connects, nobody else); a non-loopback TCP address without TLS is
refused (exit 2) unless grpc.tls.require_for_remote = false.

SIGINT/SIGTERM: health NOT_SERVING, event streams end, the gRPC server stops (grace)
while trio still runs, in-flight plan runs drain (no new files; files in flight finish)
up to service.shutdown_deadline_s, then what is left is cancelled; a drained batch
resumes at the next start. Exit 0 after a clean shutdown.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import trio

from cofid.config import Config, ConfigError
from cofid.store.db import DatabaseUnavailable
from cofid.store.types import DatabaseError

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def serve_command(cfg: Config, watch: bool,
                  on_ready: Callable[[list[str]], None] | None = None,
                  probe_results: Sequence[Any] = ()) -> int:
    from cofid.api.server import ListenError
    from cofid.daemon import serve_main
    from cofid.service.app import freeze_startup_heap

    logging.basicConfig(
        level=getattr(logging, cfg.service.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        try:
            freeze_startup_heap()
            trio.run(lambda: serve_main(cfg, watch=watch, on_ready=on_ready,
                                        probe_results=probe_results))
        except BaseExceptionGroup as eg:
            raise _single(eg) from None
    except (ListenError, ConfigError) as e:
        print(f"cofid: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except (DatabaseUnavailable, DatabaseError) as e:
        print(f"cofid: database unreachable ({cfg.database_url.split('@')[-1]}): "
              f"{getattr(e, 'orig', e)}", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_OK


def _single(eg: BaseExceptionGroup[BaseException] | BaseException) -> BaseException:
    """The one error inside nested nursery groups (or the group itself)."""
    while isinstance(eg, BaseExceptionGroup) and len(eg.exceptions) == 1:
        eg = eg.exceptions[0]
    return eg
