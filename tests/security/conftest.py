"""The real control plane of tests/api (serve_main on loopback, fake GPUs) for the
security tests, plus the few helpers they share."""

from __future__ import annotations

import grpc
import trio

from tests.api.conftest import start_server  # noqa: F401 - the fixture, shared

C = grpc.StatusCode


def metadata(token: str | None):
    return (("authorization", f"Bearer {token}"),) if token else None


async def first_watch_message(h, request, token: str | None, timeout: float = 10,
                              method: str = "WatchEvents"):
    """Open a server stream (WatchEvents unless `method` says), read one message, cancel:
    (code, details, message or None)."""

    def read():
        it = getattr(h.stub, method)(request, metadata=metadata(token), timeout=timeout)
        try:
            return C.OK, "", next(it)
        except grpc.RpcError as e:
            return e.code(), e.details(), None
        finally:
            it.cancel()

    return await trio.to_thread.run_sync(read)


async def wait_running(h, task_id: str, timeout: float = 10) -> None:
    """Until the task runs and at least one stage finished a file."""
    from protos.cofi.v1 import cofi_pb2 as pb
    from tests.api.conftest import VIEW

    with trio.fail_after(timeout):
        while True:
            task = await h.call("GetTask", pb.GetTaskRequest(task_id=task_id), VIEW)
            if task.state == "running" and any(s.done for s in task.stages):
                return
            assert task.state in ("queued", "running"), task
            await trio.sleep(0.02)
