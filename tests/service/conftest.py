"""The real control plane of tests/api (serve_main on loopback, fake GPUs), for the
service tests that drive it over gRPC."""

from __future__ import annotations

from tests.api.conftest import start_server  # noqa: F401 - the fixture, shared
