"""Are the configured model servers there? `cofid check-config --probe` and the start check.

Every distinct URL of every `[[gpus]]` entry that serves a remote capability is asked, in
parallel, within backends.remote.probe_timeout_s:

1. its dialect's health path (`/health`, Ollama's `/api/version`; none for
   llama-cpp-python), then its models path (`/v1/models`; none for whisper.cpp). With
   neither, `GET /`: any HTTP answer shows something listens.
2. error (the URL cannot be used): the connection is refused, the name does not resolve,
   connecting times out, HTTP 401 / 403 (the api_key is refused), or the dialect says the
   model must be listed (vLLM, Ollama) and the models list lacks it.
3. warning (worth a look, not fatal): a health path that answers 404 (is the dialect
   right?) or 5xx (still loading), a models list that lacks a model the server may map or
   load on demand, a connection that answered nothing in time (a busy one-at-a-time
   server such as faster-whisper-server).
4. At start (`cofid run-batch`, `cofid serve`, unless backends.remote.probe_at_start is
   false) every result is logged naming the GPU and URL; when some remote capability has
   no usable server left, the command stops with exit 1 instead of failing every file
   after minutes of retries. A failing URL whose work other hosts can do marks its entry
   unhealthy and is an error event of every run (cofid.service.start_probe).
5. `cofid check-config --probe` prints every check, then one `failed:` line per failing
   URL, and exits 1 when there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from cofid.backends.dialects import Dialect
from cofid.backends.endpoints import CAPABILITIES, Endpoint, gpu_endpoints
from cofid.backends.remote_http import server_message
from cofid.config.model import Config

log = logging.getLogger("cofid.probe")

EXIT_OK, EXIT_FATAL = 0, 1


@dataclass
class ProbeResult:
    """What one URL of one GPU entry answered."""

    gpu: str
    url: str
    dialect: str
    capabilities: list[str]
    models_wanted: list[str]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    models: list[str] | None = None

    @property
    def status(self) -> str:
        return "error" if self.errors else "warning" if self.warnings else "ok"

    def lines(self) -> list[str]:
        """Human-readable lines: one headline, then what was checked and found."""
        head = (f"{self.status.upper():7} {self.gpu} {self.url} ({self.dialect}; "
                f"{', '.join(self.capabilities)})")
        return [head, *(f"    {c}" for c in self.checked),
                *(f"    error: {e}" for e in self.errors),
                *(f"    warning: {w}" for w in self.warnings)]


def remote_capabilities(cfg: Config) -> list[str]:
    return [c for c in CAPABILITIES if getattr(cfg.backends, c) == "remote"]


def _targets(cfg: Config) -> list[tuple[str, str, str, Dialect, dict[str, Endpoint]]]:
    """(gpu, url, api_key, dialect, {capability: endpoint}) per distinct URL of each entry."""
    caps = remote_capabilities(cfg)
    out = []
    for g in cfg.gpus:
        by_url: dict[str, dict[str, Endpoint]] = {}
        for cap, ep in gpu_endpoints(g, cfg.backends.remote, caps).items():
            by_url.setdefault(ep.url, {})[cap] = ep
        for url, eps in by_url.items():
            # A URL that serves speech is probed as its speech server, else as the chat one.
            first = next((ep for c, ep in eps.items() if c != "chat"), None) or eps["chat"]
            out.append((g.name, url, g.api_key, first.dialect, eps))
    return out


async def probe_url(
    client: httpx.AsyncClient, gpu: str, url: str, api_key: str, dialect: Dialect,
    endpoints: dict[str, Endpoint], timeout_s: float,
) -> ProbeResult:
    """Check one URL (module docstring, rules 1-3)."""
    wanted = sorted({ep.model for c, ep in endpoints.items() if c in ("lid", "stt", "chat")})
    result = ProbeResult(gpu, url, dialect.name, sorted(endpoints, key=CAPABILITIES.index), wanted)
    base = url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(timeout_s, connect=timeout_s)
    paths = [p for p in (dialect.health_path, dialect.models_path) if p] or ["/"]
    for path in paths:
        response = await _get(client, base + path, headers, timeout, 2 * timeout_s, result)
        if response is None:
            return result
        status = response.status_code
        result.checked.append(f"GET {path}: HTTP {status}")
        if status in (401, 403):
            result.errors.append(f"{path}: HTTP {status}: the api_key is refused ({server_message(response)})")
            return result
        if path == dialect.models_path and status == 200:
            _check_models(response, dialect, endpoints, result)
        elif status == 404 and path != "/":
            result.warnings.append(f"{path}: HTTP 404: not served here; is dialect '{dialect.name}' right?")
        elif status >= 500:
            result.warnings.append(f"{path}: HTTP {status}: not ready ({server_message(response)})")
    return result


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], timeout: httpx.Timeout,
    deadline_s: float, result: ProbeResult,
) -> httpx.Response | None:
    try:
        with trio.fail_after(deadline_s):
            return await client.get(url, headers=headers, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        result.errors.append(f"unreachable: {type(exc).__name__}: {exc}")
    except (httpx.TimeoutException, trio.TooSlowError):
        result.warnings.append(f"{url}: connected but no answer in time (busy?)")
    except httpx.HTTPError as exc:
        result.errors.append(f"{url}: {type(exc).__name__}: {exc}")
    return None


def _check_models(
    response: httpx.Response, dialect: Dialect, endpoints: dict[str, Endpoint], result: ProbeResult
) -> None:
    try:
        body: Any = response.json()
        served = [str(m["id"]) for m in body["data"] if isinstance(m, dict) and "id" in m]
    except (ValueError, KeyError, TypeError):
        result.warnings.append(f"{dialect.models_path}: not an OpenAI model list")
        return
    result.models = served
    result.checked[-1] += f" ({len(served)} models: {', '.join(served[:5])})"
    for cap, ep in endpoints.items():
        if cap not in ("lid", "stt", "chat") or ep.model in served:
            continue
        if dialect.any_model_name and len(served) == 1:
            result.checked[-1] += f"; {cap} model '{ep.model}' is served by its only model"
            continue
        text = f"{cap} model '{ep.model}' is not in {dialect.models_path} ({', '.join(served) or 'none'})"
        (result.errors if dialect.model_listed else result.warnings).append(text)


async def probe_config(cfg: Config, *, client: httpx.AsyncClient | None = None) -> list[ProbeResult]:
    """Probe every URL of every entry that serves a remote capability, in parallel."""
    targets = _targets(cfg)
    results: list[ProbeResult | None] = [None] * len(targets)
    own = client is None
    http = client or httpx.AsyncClient()
    try:
        async with trio.open_nursery() as nursery:
            for i, (gpu, url, key, dialect, eps) in enumerate(targets):

                async def one(i: int = i, gpu: str = gpu, url: str = url, key: str = key,
                              dialect: Dialect = dialect, eps: dict[str, Endpoint] = eps) -> None:
                    results[i] = await probe_url(
                        http, gpu, url, key, dialect, eps, cfg.backends.remote.probe_timeout_s
                    )

                nursery.start_soon(one)
    finally:
        if own:
            await http.aclose()
    return [r for r in results if r is not None]


def unusable_capabilities(cfg: Config, results: Iterable[ProbeResult]) -> list[str]:
    """Remote capabilities that no probed URL can serve (rule 4)."""
    usable = {c for r in results if r.status != "error" for c in r.capabilities}
    return [c for c in remote_capabilities(cfg) if c not in usable]


def probe_command(cfg: Config) -> int:
    """`cofid check-config --probe`: print each URL's result; exit 1 on any error."""
    if not remote_capabilities(cfg):
        print("probe: no capability uses a remote backend; nothing to probe")
        return EXIT_OK
    results = trio.run(probe_config, cfg)
    for r in results:
        print("\n".join(r.lines()))
    bad = [r for r in results if r.status == "error"]
    print(f"probe: {len(results)} URL(s), {len(bad)} with errors")
    for r in bad:  # rule 5: one line per failing URL, for scripts and eyes alike
        print(f"failed: {r.gpu} {r.url}: {'; '.join(r.errors)}")
    return EXIT_FATAL if bad else EXIT_OK


def startup_check(cfg: Config) -> str | None:
    """The start check (rule 4): log every result; the reason to stop, or None."""
    return startup_probe(cfg)[0]


def startup_probe(cfg: Config) -> tuple[str | None, list[ProbeResult]]:
    """The start check (rule 4): (the reason to stop or None, every result)."""
    if not cfg.backends.remote.probe_at_start or not remote_capabilities(cfg):
        return None, []
    results = trio.run(probe_config, cfg)
    for r in results:
        level = {"ok": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[r.status]
        log.log(level, "model server %s", "; ".join(line.strip() for line in r.lines()))
    unusable = unusable_capabilities(cfg, results)
    if not unusable:
        return None, results
    failed = [f"{r.gpu} {r.url}: {'; '.join(r.errors)}" for r in results if r.status == "error"]
    return (f"no usable model server for {', '.join(unusable)}: " + " | ".join(failed)
            + " (cofid check-config --probe shows every check)"), results
