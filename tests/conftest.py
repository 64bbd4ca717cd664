"""Shared fixtures. `db_url` runs a test once on SQLite and once on a real MariaDB."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.mariadb_server import MariaDBServer

IN_CI = os.environ.get("CI", "").lower() == "true"

# Property tests check rules, not speed: no per-example deadline (hypothesis's 200 ms
# fails a pure function on a loaded 2-core machine), and the same examples on every run
# so CI's verdict does not depend on which random examples a run drew.
settings.register_profile("cofi", deadline=None, derandomize=True)
settings.load_profile("cofi")


def _serve(server: MariaDBServer):
    """Start the server for the session; with CI=true a server that cannot start fails."""
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001
        server.stop()
        if IN_CI or os.environ.get("COFI_REQUIRE_MARIADB"):
            pytest.fail(f"MariaDB could not start (CI=true needs it): {exc}", pytrace=False)
        pytest.skip(f"MariaDB not available here: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb() -> MariaDBServer:
    yield from _serve(MariaDBServer())


# An Indian site's server: default-time-zone +05:30, so a timestamp taken from the
# server's clock in its session zone would be 5.5 h off the UTC cofid writes.
SERVER_ZONE = "+05:30"


@pytest.fixture(scope="session")
def mariadb_zoned() -> MariaDBServer:
    yield from _serve(MariaDBServer(extra_args=(f"--default-time-zone={SERVER_ZONE}",)))


@pytest.fixture(params=["sqlite", "mariadb_zoned"])
def zoned_db_url(request, tmp_path) -> str:
    """Like db_url, but the MariaDB half runs with the server zone at SERVER_ZONE."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cofi.db'}"
    server: MariaDBServer = request.getfixturevalue("mariadb_zoned")
    return server.create_database()


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cofi.db'}"
    server: MariaDBServer = request.getfixturevalue("mariadb")
    return server.create_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cofi.db'}"
