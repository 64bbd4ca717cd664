"""`cofid serve`'s body: the daemon's composition root.

:func:`serve_main` builds and runs, in this order: the App (migrations, writer, GPU
pool), the Service (tasks, resumed batches), the gRPC control plane, the batch watcher,
systemd notify; and stops them in the reverse order. READY=1 goes out once the database
is migrated, unfinished work resumed and the server listening.

Shutdown (SIGINT/SIGTERM or `stop`): the watcher stops, the gRPC server stops while trio
still runs (health NOT_SERVING, event streams end), plan runs drain (no new files; files
in flight finish) up to service.shutdown_deadline_s, then what is left is cancelled; a
drained batch resumes at the next start. SIGHUP reloads what can change without a restart.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

import trio

from cofid.api.auth import TokenTable
from cofid.api.control_plane import ControlPlane
from cofid.api.server import build_control_plane, event_streams, server_credentials
from cofid.config import Config, ConfigError, load_config
from cofid.engine.gpus import Gpu
from cofid.inputs import sdnotify
from cofid.inputs.watcher import watcher_for_service
from cofid.service.app import open_app
from cofid.service.core import Service

log = logging.getLogger("cofid.api")


async def serve_main(cfg: Config, *, watch: bool = False,
                     on_ready: Callable[[list[str]], None] | None = None,
                     gpus: Sequence[Gpu] | None = None, stop: trio.Event | None = None,
                     handle_signals: bool = True, probe_results: Sequence[Any] = (),
                     task_status: trio.TaskStatus[tuple[Service, ControlPlane, list[str]]]
                     = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon: App, resumed batches, gRPC server, batch watcher, systemd notify;
    returns after a clean shutdown."""
    stop = stop if stop is not None else trio.Event()
    server_credentials(cfg)  # refuse bad listen settings before touching the database
    notifier = sdnotify.Notifier.from_env()
    async with open_app(cfg, gpus=gpus, probe_results=probe_results) as app, trio.open_nursery() as outer:
        labels: dict[int, str] = {}
        state: dict[str, str | None] = {"text": "starting"}

        async def describe() -> str:
            return await sdnotify.app_status(app, state=state["text"], labels=labels)

        # Watchdog pings come from this trio loop itself: a stuck loop stops them and
        # systemd restarts the daemon. They go on through the drain at shutdown.
        outer.start_soon(sdnotify.run_systemd, notifier, describe)
        async with trio.open_nursery() as work:
            service = Service(app, work, events=event_streams(app))
            plane = build_control_plane(service, trio.lowlevel.current_trio_token())
            if handle_signals:
                outer.start_soon(_signals, stop, cfg, plane, notifier)
            await service.resume_unfinished()
            watch_scope = trio.CancelScope()
            if watch and cfg.watch.roots:
                async def watch_roots(task_status: trio.TaskStatus[None]
                                      = trio.TASK_STATUS_IGNORED) -> None:
                    with watch_scope:
                        await watcher_for_service(service).run(task_status=task_status)

                await work.start(watch_roots)
            bound = await trio.to_thread.run_sync(plane.start)
            log.info("cofid serving on %s", ", ".join(bound))
            state["text"] = None
            notifier.ready(await describe())  # READY=1: migrated, resumed, listening
            if on_ready is not None:
                on_ready(bound)
            task_status.started((service, plane, bound))
            await stop.wait()
            state["text"] = "shutting down: draining"
            notifier.stopping(state["text"])
            watch_scope.cancel()
            log.info("shutting down: stopping the gRPC server")
            await plane.stop(grace=min(5.0, cfg.service.shutdown_deadline_s))
            for run in list(app.runs.values()):
                run.draining = True
            for live in list(service.tasks.live.values()):  # reaudits too: they resume
                if live.run is not None:
                    live.run.draining = True
            with trio.move_on_after(cfg.service.shutdown_deadline_s):
                for live in list(service.tasks.live.values()):
                    await live.done.wait()
            if service.tasks.live:
                log.warning("shutdown deadline passed: cancelling %d task(s)",
                            len(service.tasks.live))
            work.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    notifier.close()
    log.info("cofid stopped")


async def _signals(stop: trio.Event, cfg: Config, plane: ControlPlane,
                   notifier: sdnotify.Notifier) -> None:
    """SIGINT/SIGTERM: graceful stop. SIGHUP: reload what can change without a restart."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as rx:
        async for signum in rx:
            if signum == signal.SIGHUP:
                notifier.reloading()
                reload_config(cfg, plane)
                notifier.ready()
                continue
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            stop.set()
            return


def reload_config(cfg: Config, plane: ControlPlane) -> list[str]:
    """Re-read the configuration file: the log level and the gRPC tokens take effect at
    once. GPUs, the database, listeners, paths and pipelines need a restart (said in the
    log when they changed) — running batches must not change plan or hosts midway."""
    if cfg.source.startswith("<"):
        log.info("SIGHUP: no configuration file to reload (embedded default)")
        return []
    try:
        new = load_config(cfg.source)
    except ConfigError as e:
        log.error("SIGHUP: configuration not reloaded: %s", e)
        return []
    applied = []
    logging.getLogger().setLevel(new.service.log_level)
    applied.append(f"log_level={new.service.log_level}")
    if new.grpc.auth == cfg.grpc.auth and new.grpc.auth:
        try:
            plane.auth.replace_tokens(TokenTable.from_config(new.grpc.tokens))
            applied.append(f"{len(new.grpc.tokens)} token(s)")
        except Exception as e:  # noqa: BLE001 - a bad token file must not kill the daemon
            log.error("SIGHUP: tokens not reloaded: %s", e)
    sections: tuple[str, ...] = ("gpus", "database", "paths", "pipelines", "backends", "watch")
    for section in sections:
        old_value: Any = getattr(cfg, section)
        if getattr(new, section) != old_value:
            log.warning("SIGHUP: [%s] changed; it takes effect after a restart", section)
    if new.grpc.listen != cfg.grpc.listen or new.grpc.auth != cfg.grpc.auth:
        log.warning("SIGHUP: [grpc] listen/auth changed; it takes effect after a restart")
    log.info("SIGHUP: reloaded %s", ", ".join(applied))
    return applied
