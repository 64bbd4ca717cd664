"""A throwaway MariaDB server for the test session: datadir and unix socket in a temp dir.

No system service is involved: mariadb-install-db creates the datadir, mariadbd serves it
with networking off, and the server is stopped when the session ends. With CI=true a
server that cannot start fails the session; elsewhere the MariaDB half of the suite is
reported as skipped with the reason, so a laptop without MariaDB can still run the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql


class MariaDBServer:
    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        # e.g. ("--default-time-zone=+05:30",): a server in an Indian site's zone.
        self.extra_args = tuple(extra_args)
        self.root = Path(tempfile.mkdtemp(prefix="cofi-mariadb-"))
        self.datadir = self.root / "data"
        self.socket = self.root / "mysqld.sock"
        self.pidfile = self.root / "mysqld.pid"
        self.proc: subprocess.Popen | None = None
        self._counter = 0

    @staticmethod
    def binaries() -> tuple[str, str] | None:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        server = shutil.which("mariadbd") or (
            "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
        )
        return (install, server) if install and server else None

    def start(self) -> None:
        bins = self.binaries()
        if bins is None:
            raise RuntimeError(
                "MariaDB is not installed (mariadb-install-db / mariadbd not found); "
                "`make test` installs Debian's mariadb-server when run as root"
            )
        install, server = bins
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={self.datadir}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.pidfile}", *user,
             "--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=2",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
             "--max-connections=500", "--log-error=" + str(self.root / "error.log"),
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "mariadbd exited at start:\n" + self._tail_error_log()
                )
            try:
                pymysql.connect(unix_socket=str(self.socket), user="root").close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("mariadbd did not accept connections within 60 s:\n" + self._tail_error_log())

    def _tail_error_log(self) -> str:
        p = self.root / "error.log"
        return p.read_text(errors="replace")[-2000:] if p.exists() else "(no error log)"

    def create_database(self, prefix: str = "cofi_test") -> str:
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        conn = pymysql.connect(unix_socket=str(self.socket), user="root")
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        finally:
            conn.close()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@/{database}?unix_socket={self.socket}&charset=utf8mb4"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server (fault tests); start() again brings it back on the same datadir."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        self.start_existing()

    def start_existing(self) -> None:
        datadir_ready = (self.datadir / "mysql").exists()
        if not datadir_ready:
            return self.start()
        install, server = self.binaries()  # type: ignore[misc]
        user = ["--user=root"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.pidfile}", *user,
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
             "--log-error=" + str(self.root / "error.log"), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                pymysql.connect(unix_socket=str(self.socket), user="root").close()
                return None
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError("mariadbd did not come back:\n" + self._tail_error_log())
