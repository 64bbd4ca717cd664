"""Building the gRPC server over a Service, and the control plane's public names.

The control plane is split by job:

* :mod:`cofid.api.servicer` — grpc handlers: validate, call the service, map its errors
  to status codes, convert (:class:`CofiServicer`);
* :mod:`cofid.api.queries` — the read-only RPCs on the trio side;
* :mod:`cofid.api.uploads` — receiving an UploadAudit stream;
* :mod:`cofid.api.events_stream` — WatchEvents: subscribe, replay, live, heartbeats;
* :mod:`cofid.api.control_plane` — the grpc.server's lifecycle (:class:`ControlPlane`);
* :mod:`cofid.api.bridge`, :mod:`cofid.api.convert`, :mod:`cofid.api.validate`,
  :mod:`cofid.api.auth` — the pieces they share.

The daemon that runs it all is :mod:`cofid.daemon`.
"""

from __future__ import annotations

import trio

from cofid.api.control_plane import ControlPlane, ListenError, server_credentials
from cofid.api.events_stream import EventSource, Subscriptions
from cofid.api.servicer import CofiServicer
from cofid.service.core import Service

__all__ = ["CofiServicer", "ControlPlane", "ListenError", "build_control_plane",
           "event_streams", "server_credentials"]


def event_streams(app: EventSource) -> Subscriptions:
    """The WatchEvents subscriptions over the App's bus (hand them to the Service, which
    closes them first at shutdown)."""
    return Subscriptions(app)


def build_control_plane(service: Service, token: trio.lowlevel.TrioToken) -> ControlPlane:
    """The grpc.server (cofi.v1, health, reflection) over `service`, not started yet."""
    return ControlPlane(service, token)
