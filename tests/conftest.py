"""Shared fixtures. `db_url` runs a test once on SQLite and once on a real MariaDB."""

from __future__ import annotations

import os

import pytest

from tests.mariadb_server import MariaDBServer

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def mariadb() -> MariaDBServer:
    server = MariaDBServer()
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001
        server.stop()
        if IN_CI or os.environ.get("COFI_REQUIRE_MARIADB"):
            pytest.fail(f"MariaDB could not start (CI=true needs it): {exc}", pytrace=False)
        pytest.skip(f"MariaDB not available here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cofi.db'}"
    server: MariaDBServer = request.getfixturevalue("mariadb")
    return server.create_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cofi.db'}"
