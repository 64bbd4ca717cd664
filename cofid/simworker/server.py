"""The simulated GPU host's request handler: routes, counters, faults and compute slots.

Faults are drawn per POST request from one RNG seeded by `seed`, in arrival order: fail
(HTTP 500), hang (no answer until the client goes away), drop (connection closed without an
answer), malformed (HTTP 200 with a broken body; each endpoint decides how it breaks).
Requests beyond `slots` wait for a free slot; a hung request keeps its slot until its
client gives up, as a stuck GPU would. Latency = fixed + per_audio_s × audio duration,
times `time_scale` (0 = instant).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable

import trio

from cofid.simworker.audio import DENOISE_PATH, IVR_PATH, denoise, ivr
from cofid.simworker.chat import CHAT_PATH, chat
from cofid.simworker.config import JobRunner, Latency, SimConfig
from cofid.simworker.http_server import (
    DropConnection,
    HttpServer,
    Request,
    Response,
    error_response,
    json_response,
)
from cofid.simworker.transcribe import TRANSCRIPTIONS_PATH, transcribe

MODEL_NAMES = ("whisper-1", "default")

Endpoint = Callable[[JobRunner, Request], Awaitable[Response]]
POST_ROUTES: dict[str, Endpoint] = {
    TRANSCRIPTIONS_PATH: transcribe,
    CHAT_PATH: chat,
    DENOISE_PATH: denoise,
    IVR_PATH: ivr,
}


class _Fail(Exception):
    """Raised inside a request: answer HTTP 500 (a simulated GPU failure)."""


class SimWorker:
    """The request handler and its counters; `serve_simworker` reports one of these."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.server = HttpServer(self.handle, host=config.host, port=config.port)
        self.requests: Counter[str] = Counter()  # lid, stt, chat, denoise, ivr, health, models
        self.faults: Counter[str] = Counter()  # fail, hang, drop, malformed
        self.active = 0
        self.max_active = 0
        self._rng = random.Random(config.seed)
        self._slots = trio.CapacityLimiter(config.slots) if config.slots else None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    async def die(self) -> None:
        await self.server.die()

    async def come_back(self) -> None:
        await self.server.come_back()

    async def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/health"):
            self.requests["health"] += 1
            return json_response({"status": "ok"})
        if route == ("GET", "/v1/models"):
            self.requests["models"] += 1
            return json_response(
                {
                    "object": "list",
                    "data": [
                        {"id": name, "object": "model", "created": 0, "owned_by": "cofi-simworker"}
                        for name in MODEL_NAMES
                    ],
                }
            )
        endpoint = POST_ROUTES.get(request.path) if request.method == "POST" else None
        if endpoint is not None:
            return await endpoint(self, request)
        return error_response(404, f"no route for {request.method} {request.path}")

    def _draw_fault(self) -> str | None:
        c = self.config
        draw = self._rng.random()
        for name, rate in (
            ("fail", c.fail_rate),
            ("hang", c.hang_rate),
            ("drop", c.drop_rate),
            ("malformed", c.malformed_rate),
        ):
            if draw < rate:
                self.faults[name] += 1
                return name
            draw -= rate
        return None

    async def _work(self, endpoint: str, audio_s: float, fault: str | None) -> None:
        """Hold a slot for the simulated compute time (forever for a hang)."""
        if self._slots is not None:
            await self._slots.acquire()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            latency = self.config.latency.get(endpoint, Latency(0.0))
            delay = latency.seconds(audio_s, self.config.time_scale)
            if delay > 0:
                await trio.sleep(delay)
            if fault == "hang":
                await trio.sleep_forever()
        finally:
            self.active -= 1
            if self._slots is not None:
                self._slots.release()
        if fault == "fail":
            raise _Fail
        if fault == "drop":
            raise DropConnection

    async def run_job(self, endpoint: str, audio_s: float) -> tuple[str | None, Response | None]:
        """Count a request, draw its fault and hold a slot for its compute time: (the fault,
        the HTTP 500 to answer instead when the fault is "fail"). Raises DropConnection."""
        self.requests[endpoint] += 1
        fault = self._draw_fault()
        try:
            await self._work(endpoint, audio_s, fault)
        except _Fail:
            return fault, error_response(500, "simulated GPU failure", type_="server_error")
        return fault, None


async def serve_simworker(
    config: SimConfig, *, task_status: trio.TaskStatus[SimWorker] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; reports the `SimWorker` (port, counters, die/come_back)."""
    worker = SimWorker(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.server.serve)
        task_status.started(worker)
