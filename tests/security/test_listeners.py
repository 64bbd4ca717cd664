"""Listeners: TCP on a non-loopback address needs TLS (refused without it, served with a
self-signed certificate); the unix socket is 0o660 whatever the umask."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import grpc
import pytest
import trio

from cofid.api.control_plane import SOCKET_MODE, server_credentials
from cofid.api.server import ListenError
from cofid.daemon import serve_main
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc
from tests.api.conftest import VIEW, make_cfg
from tests.security.conftest import C, metadata


def self_signed(d: Path, name: str = "cert") -> tuple[Path, Path]:
    """A throwaway certificate for localhost / 127.0.0.1 (the `cryptography` package is
    not installed here; Debian ships openssl)."""
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.parametrize("address", [
    "0.0.0.0:0", "[::]:0", "192.0.2.10:50051", "cofi.example.com:50051", "10.0.0.1:0"])
def test_non_loopback_without_tls_is_refused(tmp_path, address):
    cfg = make_cfg(tmp_path, grpc_extra={"listen": ["unix:/tmp/x.sock", address]})
    with pytest.raises(ListenError,
                       match=re.escape(f"refusing to listen on {address} without TLS")):
        server_credentials(cfg)


@pytest.mark.parametrize("address", ["127.0.0.1:0", "localhost:0", "[::1]:0", "127.8.9.1:1"])
def test_loopback_without_tls_is_allowed(tmp_path, address):
    assert server_credentials(make_cfg(tmp_path, grpc_extra={"listen": [address]})) is None


def test_remote_without_tls_when_explicitly_allowed(tmp_path):
    cfg = make_cfg(tmp_path, grpc_extra={"listen": ["0.0.0.0:0"],
                                         "tls": {"require_for_remote": False}})
    assert server_credentials(cfg) is None


async def test_refusal_happens_before_the_database_is_touched(tmp_path):
    cfg = make_cfg(tmp_path, grpc_extra={"listen": ["0.0.0.0:0"]})
    with pytest.raises(ListenError):
        await serve_main(cfg, handle_signals=False)
    assert not cfg.data_dir.exists()


def test_bad_tls_settings_are_refused(tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    for tls, text in [({"cert_file": str(cert)}, "needs both cert_file and key_file"),
                      ({"cert_file": str(cert), "key_file": str(tmp_path / "nope.key")},
                       f"cannot read {tmp_path / 'nope.key'}")]:
        cfg = make_cfg(tmp_path, grpc_extra={"listen": ["0.0.0.0:0"], "tls": tls})
        with pytest.raises(ListenError, match=text):
            server_credentials(cfg)


async def test_non_loopback_with_tls_is_served(start_server, tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    other, _ = self_signed(tmp_path / "tls", "other")
    h = await start_server(grpc_extra={
        "listen": ["0.0.0.0:0"], "tls": {"cert_file": str(cert), "key_file": str(key)}})
    port = int(h.address.rpartition(":")[2])
    assert h.address.startswith("0.0.0.0:") and port > 0

    def list_gpus(channel):
        try:
            reply = pb_grpc.CofiStub(channel).ListGpus(
                pb.ListGpusRequest(), metadata=metadata(VIEW), timeout=5)
        except grpc.RpcError as e:
            return e.code(), None
        finally:
            channel.close()
        return C.OK, reply

    def tls_channel(root: Path):
        creds = grpc.ssl_channel_credentials(root_certificates=root.read_bytes())
        return grpc.secure_channel(f"localhost:{port}", creds)

    code, reply = await trio.to_thread.run_sync(list_gpus, tls_channel(cert))
    assert code == C.OK and [g.name for g in reply.gpus] == ["gpu-a", "gpu-b"]
    # a client that trusts another certificate, and a plaintext client, get nowhere
    code, _ = await trio.to_thread.run_sync(list_gpus, tls_channel(other))
    assert code == C.UNAVAILABLE
    plain = grpc.insecure_channel(f"127.0.0.1:{port}")
    code, _ = await trio.to_thread.run_sync(list_gpus, plain)
    assert code == C.UNAVAILABLE
    # tokens are still checked over TLS
    def no_token():
        ch = tls_channel(cert)
        try:
            pb_grpc.CofiStub(ch).ListGpus(pb.ListGpusRequest(), timeout=5)
        except grpc.RpcError as e:
            return e.code()
        finally:
            ch.close()

    assert await trio.to_thread.run_sync(no_token) == C.UNAUTHENTICATED


async def test_unix_socket_mode_ignores_the_umask(start_server, tmp_path):
    sock = tmp_path / "run" / "cofid.sock"
    sock.parent.mkdir()
    sock.write_text("stale")  # a leftover file is replaced by the socket
    old = os.umask(0)  # without the chmod the socket would be 0o777
    try:
        h = await start_server(grpc_extra={"listen": [f"unix:{sock}"]})
    finally:
        os.umask(old)
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == SOCKET_MODE == 0o660
    assert stat.S_IMODE(st.st_mode) & 0o007 == 0  # nothing for others
    reply = await h.call("ListGpus", pb.ListGpusRequest(), VIEW)
    assert len(reply.gpus) == 2
