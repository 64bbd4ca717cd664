"""`cofid serve`'s body (:func:`serve_main`) and the control plane's public names.

The control plane is split by job:

* :mod:`cofid.api.service` — the trio side: task registry, one coroutine per RPC that
  starts or changes work (:class:`Service`);
* :mod:`cofid.api.queries` — the read-only RPCs on the trio side;
* :mod:`cofid.api.servicer` — grpc handlers: validate, bridge, convert
  (:class:`CofiServicer`);
* :mod:`cofid.api.uploads` — receiving an UploadAudit stream;
* :mod:`cofid.api.events_stream` — WatchEvents: subscribe, replay, live, heartbeats;
* :mod:`cofid.api.control_plane` — the grpc.server's lifecycle (:class:`ControlPlane`);
* :mod:`cofid.api.bridge`, :mod:`cofid.api.convert`, :mod:`cofid.api.validate`,
  :mod:`cofid.api.auth` — the pieces they share.
"""

from __future__ import annotations

import logging

import trio

from cofid.api.control_plane import ControlPlane, ListenError, server_credentials
from cofid.api.service import Service
from cofid.api.servicer import CofiServicer

__all__ = ["CofiServicer", "ControlPlane", "ListenError", "Service", "serve_main",
           "server_credentials"]

log = logging.getLogger("cofid.api")


async def serve_main(cfg, *, watch: bool = False, on_ready=None, gpus=None,
                     stop: trio.Event | None = None, handle_signals: bool = True,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    """The daemon: App, resumed batches, gRPC server; returns after a clean shutdown."""
    from cofid.app import open_app

    stop = stop if stop is not None else trio.Event()
    server_credentials(cfg)  # refuse bad listen settings before touching the database
    async with open_app(cfg, gpus=gpus) as app, trio.open_nursery() as outer:
        if handle_signals:
            import signal

            async def signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as rx:
                    async for signum in rx:
                        log.info("signal %s: shutting down", signal.Signals(signum).name)
                        stop.set()
                        return

            outer.start_soon(signals)
        async with trio.open_nursery() as work:
            service = Service(app, work)
            plane = ControlPlane(service, trio.lowlevel.current_trio_token())
            await service.resume_unfinished()
            if watch and cfg.watch.roots:
                log.info("batch root watching is not part of this build; use StartBatch")
            bound = await trio.to_thread.run_sync(plane.start)
            log.info("cofid serving on %s", ", ".join(bound))
            if on_ready is not None:
                on_ready(bound)
            task_status.started((service, plane, bound))
            await stop.wait()
            log.info("shutting down: stopping the gRPC server")
            await plane.stop(grace=min(5.0, cfg.service.shutdown_deadline_s))
            for run in list(app.runs.values()):
                run.draining = True
            with trio.move_on_after(cfg.service.shutdown_deadline_s):
                for live in list(service.tasks.live.values()):
                    await live.done.wait()
            if service.tasks.live:
                log.warning("shutdown deadline passed: cancelling %d task(s)",
                            len(service.tasks.live))
            work.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    log.info("cofid stopped")
