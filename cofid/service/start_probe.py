"""What the start probe's errors do to the GPU pool (issue 20, point 6).

`cofid run-batch` and `cofid serve` probe every model server URL before they open the App
(cofid.backends.probe). A capability with no usable server at all stops the command there.
A URL that failed while other hosts can do its work (an unreachable URL, a refused key, a
missing model) is not left to fail file after file through retries and breaker
cool-downs:

1. its `[[gpus]]` entry starts unhealthy (breaker open): no file is sent to it until the
   cooldown has passed and one request shows it answers (the breaker's usual probe);
2. every plan run on that engine posts one error event per such host (batchExecutionLog,
   with the GPU and the probe's message) while the host is still unhealthy, so an
   operator watching the batch sees why the host does no work.

A breaker belongs to the whole entry, so a failing chat_url makes its speech URL idle too;
that host's files go to the healthy ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from cofid.backends.probe import ProbeResult
from cofid.engine.gpus import Gpu

log = logging.getLogger("cofid.probe")


def probe_message(r: ProbeResult) -> str:
    return (
        f"GPU {r.gpu} marked unhealthy at start: {r.url} ({', '.join(r.capabilities)}): "
        f"{'; '.join(r.errors)}"
    )


def mark_unusable(gpus: Sequence[Gpu], results: Iterable[ProbeResult]) -> dict[str, str]:
    """Open the breaker of each entry with a failing URL (rule 1); GPU name -> message."""
    by_name = {g.name: g for g in gpus}
    problems: dict[str, list[str]] = {}
    for r in results:
        g = by_name.get(r.gpu)
        if r.status != "error" or g is None:
            continue
        problems.setdefault(g.name, []).append(probe_message(r))
        if g.healthy:
            # Opens the breaker at once, as a hung host's timeout does (health rule 5).
            g.breaker.record_timeout()
    out = {name: " | ".join(msgs) for name, msgs in problems.items()}
    for msg in out.values():
        log.error("%s; its files go to healthy GPUs", msg)
    return out
