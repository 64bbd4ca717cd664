"""The gRPC server's lifecycle: listeners, TLS, the auth interceptor, health, reflection,
start and the documented stop order.

Listen rules:
* ``unix:PATH`` — the parent directory is created, a stale socket file removed, and the
  socket's mode set to :data:`SOCKET_MODE` (owner and group read/write, nobody else)
  right after grpc binds it and before the server starts accepting, whatever the umask.
  Give operators access through the group (e.g. systemd ``Group=`` / a ``cofi`` group).
  Unix sockets carry no TLS: file permissions are their access control (plus tokens).
* ``HOST:PORT`` — with ``grpc.tls.cert_file`` / ``key_file`` every TCP listener is TLS.
  Without them, a non-loopback host is refused (:class:`ListenError`) while
  ``grpc.tls.require_for_remote`` is true: tokens must not cross a network in clear.
  Port 0 binds a free port; :meth:`ControlPlane.start` returns the bound addresses.

Threads: the pool has ``grpc.max_workers`` threads and grpc refuses calls beyond
``grpc.max_concurrent_rpcs`` (RESOURCE_EXHAUSTED) instead of queueing them. Each open
stream holds a pool thread; :class:`cofid.api.admission.StreamAdmission` caps them per
kind and keeps a reserved share of the pool for unary calls and health checks.

Stop (while trio still runs, or bridge calls hit RunFinishedError): health NOT_SERVING,
close the event subscriptions (streams end with ``shutting_down``), ``server.stop(grace)``,
then the bridge refuses new calls with UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from concurrent import futures
from pathlib import Path

import grpc
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cofid.api import page_tokens, reflection_v1
from cofid.api.admission import StreamAdmission
from cofid.api.auth import AuthInterceptor, TokenTable
from cofid.api.bridge import TrioBridge
from cofid.api.servicer import CofiServicer
from cofid.api.uploads import MAX_CHUNK
from cofid.api.watch_wire import WireInterceptor
from cofid.config import Config
from cofid.service.core import Service
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Cofi"].full_name
SOCKET_MODE = 0o660


class ListenError(ValueError):
    """A listen address cannot be used as configured."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(cfg: Config) -> grpc.ServerCredentials | None:
    """TLS credentials from grpc.tls, or None; refuses (ListenError) a non-loopback TCP
    address without TLS when tls.require_for_remote."""
    tls = cfg.grpc.tls
    creds = None
    if tls.cert_file or tls.key_file:
        if not (tls.cert_file and tls.key_file):
            raise ListenError("grpc.tls needs both cert_file and key_file")
        try:
            creds = grpc.ssl_server_credentials(
                [(Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())])
        except OSError as e:
            raise ListenError(f"grpc.tls: cannot read {e.filename}: {e.strerror}") from None
    for a in cfg.listen_addresses:
        if a.startswith("unix:"):
            continue
        host = a.rpartition(":")[0]
        if creds is None and tls.require_for_remote and not is_loopback(host):
            raise ListenError(
                f"refusing to listen on {a} without TLS (non-loopback address; set "
                f"grpc.tls.cert_file/key_file or grpc.tls.require_for_remote = false)")
    return creds


class ControlPlane:
    """The grpc.server with cofi.v1, health and reflection on the configured addresses."""

    def __init__(self, service: Service, token: trio.lowlevel.TrioToken) -> None:
        cfg = service.cfg
        self.service = service
        self.bridge = TrioBridge(token)
        page_tokens.new_key()  # this instance's: page tokens of an earlier one are refused
        self.addresses = tuple(cfg.listen_addresses)
        g = cfg.grpc
        self.creds = server_credentials(cfg)
        tokens = TokenTable.from_config(g.tokens) if g.auth else None
        self.auth = AuthInterceptor(tokens, auth_enabled=g.auth)
        self.admission = StreamAdmission(g)  # after auth: a refused token never counts
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=g.max_workers,
                                       thread_name_prefix="cofid-grpc"),
            # watch_wire innermost: the others keep the serializer it sets.
            interceptors=[self.auth, self.admission, WireInterceptor()],
            maximum_concurrent_rpcs=g.max_concurrent_rpcs,
            options=[("grpc.max_receive_message_length", 2 * MAX_CHUNK + 4096)],
        )
        pb_grpc.add_CofiServicer_to_server(CofiServicer(service, self.bridge), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection_v1.enable((SERVICE_NAME, health.SERVICE_NAME), self.server)
        self.bound: list[str] = []

    def start(self) -> list[str]:
        for a in self.addresses:
            if a.startswith("unix:"):
                self._bind_unix(a)
                continue
            port = (self.server.add_secure_port(a, self.creds) if self.creds is not None
                    else self.server.add_insecure_port(a))
            if port == 0:
                raise ListenError(f"cannot listen on {a}")
            self.bound.append(f"{a.rpartition(':')[0]}:{port}")
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.bound

    def _bind_unix(self, address: str) -> None:
        path = Path(address[5:])
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.server.add_insecure_port(address)
        try:
            os.chmod(path, SOCKET_MODE)
        except OSError as e:
            raise ListenError(f"cannot set the mode of {path}: {e.strerror}") from None
        self.bound.append(address)

    async def stop(self, grace: float) -> None:
        """Health NOT_SERVING, close subscriptions, stop the server while trio runs."""
        self.health.enter_graceful_shutdown()
        self.service.close_subscriptions()
        await trio.to_thread.run_sync(lambda: self.server.stop(grace).wait())
        self.bridge.closing = True
