"""cofid.api.auth against a real grpc server (thread pool, 127.0.0.1:0)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from cofid.api.auth import (
    ANONYMOUS,
    METHOD_ROLES,
    MSG_MALFORMED,
    MSG_UNKNOWN,
    OPERATOR,
    VIEWER,
    AuthInterceptor,
    Caller,
    TokenTable,
    bearer_metadata,
    bearer_token,
    current_caller,
    required_role,
)
from protos.cofi.v1 import cofi_pb2, cofi_pb2_grpc

VIEWER_TOKEN = "v-3f9c1e7a5b2d4c6e8f0a1b2c3d4e5f60"
OPERATOR_TOKEN = "o-8e7d6c5b4a39281706f5e4d3c2b1a0ff"
WRONG_TOKEN = "x-0000000000000000000000000000dead"

TOKENS = [("alice", VIEWER, VIEWER_TOKEN), ("olga", OPERATOR, OPERATOR_TOKEN)]


def _who() -> str:
    caller = current_caller()
    return "none" if caller is None else f"{caller.name}:{caller.role}"


class DummyCofi(cofi_pb2_grpc.CofiServicer):
    """Echoes who called; counts how often each handler body ran."""

    def __init__(self, trio_token: trio.lowlevel.TrioToken | None = None) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._trio_token = trio_token

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def GetTask(self, request, context):  # viewer method
        self._count("GetTask")
        who = _who()
        if self._trio_token is not None:  # the caller is visible inside trio, too
            who = trio.from_thread.run_sync(_who, trio_token=self._trio_token)
        return cofi_pb2.Task(task_id=request.task_id, error=who)

    def Reaudit(self, request, context):  # operator method
        self._count("Reaudit")
        return cofi_pb2.ReauditReply(task_id=_who(), matched_calls=len(request.audio_names))

    def WatchEvents(self, request, context) -> Iterator[cofi_pb2.WatchMessage]:
        self._count("WatchEvents")
        for i in range(3):
            # current_caller() while grpc advances the response iterator
            ev = cofi_pb2.Event(id=request.from_event_id + i + 1, file_name=_who())
            yield cofi_pb2.WatchMessage(event=ev)

    def UploadAudit(self, request_iterator, context):  # client streaming, operator
        self._count("UploadAudit")
        header = None
        size = 0
        for msg in request_iterator:
            if msg.HasField("header"):
                header = msg.header
            else:
                size += len(msg.chunk.data)
        names = [f.name for f in header.files] if header else []
        return cofi_pb2.UploadReply(
            status="queued", task_id=_who(), batch_id=size, stored_names=names
        )


def _echo(request_iterator, context) -> Iterator[bytes]:
    for item in request_iterator:
        yield item + b"|" + _who().encode()


class Server:
    def __init__(self, interceptor: AuthInterceptor, servicer: DummyCofi) -> None:
        self.servicer = servicer
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8), interceptors=[interceptor]
        )
        cofi_pb2_grpc.add_CofiServicer_to_server(servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            (cofi_pb2.DESCRIPTOR.services_by_name["Cofi"].full_name, reflection.SERVICE_NAME),
            self.server,
        )
        # A bidirectional method of our service that METHOD_ROLES does not list.
        echo = grpc.stream_stream_rpc_method_handler(_echo)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("cofi.v1.Cofi", {"Echo": echo}),)
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = cofi_pb2_grpc.CofiStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


@pytest.fixture
def srv() -> Iterator[Server]:
    s = Server(AuthInterceptor(TokenTable(TOKENS)), DummyCofi())
    yield s
    s.close()


def _md(token: str | None):
    return None if token is None else bearer_metadata(token)


def _get_task(s: Server, token: str | None) -> cofi_pb2.Task:
    return s.stub.GetTask(cofi_pb2.GetTaskRequest(task_id="t1"), metadata=_md(token), timeout=10)


def _reaudit(s: Server, token: str | None) -> cofi_pb2.ReauditReply:
    req = cofi_pb2.ReauditRequest(audio_names=["a.wav", "b.wav"], stages=["stt"])
    return s.stub.Reaudit(req, metadata=_md(token), timeout=10)


def _watch(s: Server, token: str | None) -> list[cofi_pb2.WatchMessage]:
    req = cofi_pb2.WatchRequest(from_event_id=10)
    return list(s.stub.WatchEvents(req, metadata=_md(token), timeout=10))


def _upload_messages() -> Iterator[cofi_pb2.UploadRequest]:
    files = [cofi_pb2.UploadFile(name="c.wav", size_bytes=6)]
    yield cofi_pb2.UploadRequest(header=cofi_pb2.UploadHeader(files=files))
    yield cofi_pb2.UploadRequest(chunk=cofi_pb2.UploadChunk(file_index=0, data=b"abc"))
    yield cofi_pb2.UploadRequest(chunk=cofi_pb2.UploadChunk(file_index=0, data=b"def", offset=3))


def _upload(s: Server, token: str | None) -> cofi_pb2.UploadReply:
    return s.stub.UploadAudit(_upload_messages(), metadata=_md(token), timeout=10)


CALLS = {"GetTask": _get_task, "Reaudit": _reaudit, "WatchEvents": _watch, "UploadAudit": _upload}


def _code(fn, s: Server, token: str | None) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        fn(s, token)
    return info.value.code(), info.value.details()


# --- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(CALLS))
def test_no_token_is_unauthenticated(srv: Server, method: str) -> None:
    assert _code(CALLS[method], srv, None) == (grpc.StatusCode.UNAUTHENTICATED, MSG_MALFORMED)
    assert srv.servicer.calls == {}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_wrong_token_is_unauthenticated(srv: Server, method: str) -> None:
    assert _code(CALLS[method], srv, WRONG_TOKEN) == (grpc.StatusCode.UNAUTHENTICATED, MSG_UNKNOWN)
    assert srv.servicer.calls == {}


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", VIEWER_TOKEN),),  # no scheme
        (("authorization", f"Basic {VIEWER_TOKEN}"),),  # other scheme
        (("authorization", "Bearer "),),  # empty token
        (("authorization", f"Bearer {VIEWER_TOKEN}"), ("authorization", f"Bearer {VIEWER_TOKEN}")),
        (("x-api-key", VIEWER_TOKEN),),
    ],
)
def test_malformed_metadata(srv: Server, metadata) -> None:
    with pytest.raises(grpc.RpcError) as info:
        srv.stub.GetTask(cofi_pb2.GetTaskRequest(task_id="t"), metadata=metadata, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.details() == MSG_MALFORMED
    assert srv.servicer.calls == {}


@pytest.mark.parametrize("method", ["Reaudit", "UploadAudit"])
def test_viewer_cannot_call_operator_methods(srv: Server, method: str) -> None:
    code, details = _code(CALLS[method], srv, VIEWER_TOKEN)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == f"token 'alice' has role viewer; {method} needs operator"
    assert srv.servicer.calls == {}


# --- accepted calls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token, who", [(VIEWER_TOKEN, "alice:viewer"), (OPERATOR_TOKEN, "olga:operator")]
)
def test_viewer_method_accepts_viewer_and_operator(srv: Server, token: str, who: str) -> None:
    reply = _get_task(srv, token)
    assert (reply.task_id, reply.error) == ("t1", who)


@pytest.mark.parametrize(
    "token, who", [(VIEWER_TOKEN, "alice:viewer"), (OPERATOR_TOKEN, "olga:operator")]
)
def test_server_streaming_viewer_method(srv: Server, token: str, who: str) -> None:
    messages = _watch(srv, token)
    assert [m.event.id for m in messages] == [11, 12, 13]
    assert {m.event.file_name for m in messages} == {who}


def test_operator_methods_accept_operator(srv: Server) -> None:
    reply = _reaudit(srv, OPERATOR_TOKEN)
    assert (reply.task_id, reply.matched_calls) == ("olga:operator", 2)
    up = _upload(srv, OPERATOR_TOKEN)
    assert (up.status, up.task_id, up.batch_id, list(up.stored_names)) == (
        "queued",
        "olga:operator",
        6,
        ["c.wav"],
    )
    assert srv.servicer.calls == {"Reaudit": 1, "UploadAudit": 1}


def test_bearer_scheme_is_case_insensitive(srv: Server) -> None:
    md = (("authorization", f"bearer   {OPERATOR_TOKEN}"),)
    reply = srv.stub.GetTask(cofi_pb2.GetTaskRequest(task_id="x"), metadata=md, timeout=10)
    assert reply.error == "olga:operator"


def test_unknown_method_of_our_service_needs_operator(srv: Server) -> None:
    call = srv.channel.unary_unary("/cofi.v1.Cofi/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as info:
        call(b"", metadata=bearer_metadata(VIEWER_TOKEN), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "token 'alice' has role viewer; NoSuchMethod needs operator"
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # an operator gets through the interceptor; the method simply does not exist
    with pytest.raises(grpc.RpcError) as info:
        call(b"", metadata=bearer_metadata(OPERATOR_TOKEN), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_stream_stream_method_unlisted_needs_operator(srv: Server) -> None:
    call = srv.channel.stream_stream("/cofi.v1.Cofi/Echo")
    with pytest.raises(grpc.RpcError) as info:
        list(call(iter([b"a", b"b"]), metadata=bearer_metadata(VIEWER_TOKEN), timeout=10))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "token 'alice' has role viewer; Echo needs operator"
    with pytest.raises(grpc.RpcError) as info:
        list(call(iter([b"a"]), timeout=10))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    replies = list(call(iter([b"a", b"b"]), metadata=bearer_metadata(OPERATOR_TOKEN), timeout=10))
    assert replies == [b"a|olga:operator", b"b|olga:operator"]


class EndlessWatch(DummyCofi):
    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def WatchEvents(self, request, context):
        try:
            i = 0
            while True:
                i += 1
                yield cofi_pb2.WatchMessage(event=cofi_pb2.Event(id=i, file_name=_who()))
        finally:
            self.closed.set()


def test_cancelled_stream_closes_the_handler_generator() -> None:
    """The caller-setting wrapper around response iterators passes close() through, so
    a handler's cleanup (closing its event subscription) runs when the client goes."""
    servicer = EndlessWatch()
    s = Server(AuthInterceptor(TokenTable(TOKENS)), servicer)
    try:
        stream = s.stub.WatchEvents(
            cofi_pb2.WatchRequest(), metadata=bearer_metadata(VIEWER_TOKEN), timeout=10
        )
        first = next(stream)
        assert first.event.file_name == "alice:viewer"
        stream.cancel()
        assert servicer.closed.wait(10), "the handler's generator was not closed after cancel"
    finally:
        s.close()


def test_unknown_service_needs_a_token(srv: Server) -> None:
    call = srv.channel.unary_unary("/other.v1.Thing/Do")
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- public services --------------------------------------------------------------------


def test_health_check_needs_no_token(srv: Server) -> None:
    stub = health_pb2_grpc.HealthStub(srv.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # a wrong token on a public method is ignored, not rejected
    reply = stub.Check(
        health_pb2.HealthCheckRequest(service=""), metadata=bearer_metadata(WRONG_TOKEN), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_needs_no_token(srv: Server) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(stub.ServerReflectionInfo(iter([req]), timeout=10))
    names = {s.name for s in replies[0].list_services_response.service}
    assert "cofi.v1.Cofi" in names


# --- auth disabled, trio bridge ---------------------------------------------------------


def test_auth_disabled_lets_everything_through() -> None:
    s = Server(AuthInterceptor(None, auth_enabled=False), DummyCofi())
    try:
        assert _reaudit(s, None).task_id == f"{ANONYMOUS.name}:{OPERATOR}"
        assert _get_task(s, WRONG_TOKEN).error == "anonymous:operator"
        assert {m.event.file_name for m in _watch(s, None)} == {"anonymous:operator"}
        assert _upload(s, None).stored_names == ["c.wav"]
    finally:
        s.close()


async def test_caller_visible_in_trio_through_from_thread() -> None:
    s = Server(AuthInterceptor(TokenTable(TOKENS)), DummyCofi(trio.lowlevel.current_trio_token()))
    try:
        reply = await trio.to_thread.run_sync(_get_task, s, VIEWER_TOKEN)
        assert reply.error == "alice:viewer"
        assert current_caller() is None  # nothing leaks into the trio run
    finally:
        s.close()


# --- token handling ---------------------------------------------------------------------


def test_tokens_never_logged_or_shown(srv: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    table = TokenTable(TOKENS)
    for fn in CALLS.values():
        for token in (WRONG_TOKEN, VIEWER_TOKEN):
            try:
                fn(srv, token)
            except grpc.RpcError as exc:
                assert token not in (exc.details() or "")
    text = caplog.text + repr(table) + str(table)
    assert "refused" in caplog.text  # rejections are logged ...
    for token in (VIEWER_TOKEN, OPERATOR_TOKEN, WRONG_TOKEN):
        assert token not in text  # ... without the token
    assert repr(table) == "TokenTable([alice:viewer, olga:operator])"


def test_token_table_lookup() -> None:
    table = TokenTable(TOKENS)
    assert table.lookup(VIEWER_TOKEN) == Caller("alice", VIEWER)
    assert table.lookup(OPERATOR_TOKEN) == Caller("olga", OPERATOR)
    assert table.lookup(WRONG_TOKEN) is None
    assert table.lookup(VIEWER_TOKEN[:-1]) is None
    assert table.lookup("") is None
    assert table.lookup("ünïcode") is None
    assert len(table) == 2


@pytest.mark.parametrize(
    "entries, needle",
    [
        ([("", VIEWER, "t1")], "empty name"),
        ([("a", "admin", "t1")], "role 'admin'"),
        ([("a", VIEWER, "")], "empty token"),
        ([("a", VIEWER, "has space")], "whitespace"),
        ([("a", VIEWER, "t1"), ("a", OPERATOR, "t2")], "duplicate name"),
        ([("a", VIEWER, "secret-1"), ("b", OPERATOR, "secret-1")], "same token as 'a'"),
    ],
)
def test_token_table_rejects_bad_entries(entries, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        TokenTable(entries)
    assert needle in str(info.value)
    assert "secret-1" not in str(info.value)


def test_token_table_from_config(tmp_path) -> None:
    from cofid.config import TokenConfig

    token_file = tmp_path / "olga.token"
    token_file.write_text(OPERATOR_TOKEN + "\n", encoding="utf-8")
    table = TokenTable.from_config(
        [
            TokenConfig(name="alice", role=VIEWER, token=VIEWER_TOKEN),
            TokenConfig(name="olga", role=OPERATOR, token_file=str(token_file)),
        ]
    )
    assert table.lookup(VIEWER_TOKEN) == Caller("alice", VIEWER)
    assert table.lookup(OPERATOR_TOKEN) == Caller("olga", OPERATOR)
    custom = TokenTable.from_config([TokenConfig("x", VIEWER, "t")], value=lambda t: "other")
    assert custom.lookup("other") == Caller("x", VIEWER) and custom.lookup("t") is None


def test_auth_enabled_needs_a_table() -> None:
    with pytest.raises(ValueError):
        AuthInterceptor(None)


def test_bearer_helpers() -> None:
    assert bearer_metadata("abc") == (("authorization", "Bearer abc"),)
    for bad in ("", "a b", "a\n"):
        with pytest.raises(ValueError):
            bearer_metadata(bad)
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("Authorization", "BEARER abc")]) == "abc"
    assert bearer_token([]) is None
    assert bearer_token(None) is None
    assert bearer_token([("authorization", "Bearer a b")]) is None
    assert bearer_token([("authorization", b"Bearer abc")]) is None


def test_caller_roles() -> None:
    assert Caller("o", OPERATOR).can(VIEWER) and Caller("o", OPERATOR).can(OPERATOR)
    assert Caller("v", VIEWER).can(VIEWER) and not Caller("v", VIEWER).can(OPERATOR)
    assert not Caller("x", "nobody").can(VIEWER)
    assert not Caller("o", OPERATOR).can("superuser")


def test_method_roles_cover_every_rpc() -> None:
    service = cofi_pb2.DESCRIPTOR.services_by_name["Cofi"]
    listed = {f"/{service.full_name}/{m.name}" for m in service.methods}
    assert set(METHOD_ROLES) == listed
    viewer = {m for m, r in METHOD_ROLES.items() if r == VIEWER}
    assert {m.rpartition("/")[2] for m in viewer} == {
        "GetTask",
        "ListBatches",
        "GetBatch",
        "GetCall",
        "ListCalls",
        "WatchEvents",
        "ListGpus",
        "ListTasks",
        "ListTradeVerdicts",
        "GetEvidence",
    }
    assert required_role("/grpc.health.v1.Health/Check") is None
    assert required_role("/grpc.health.v1.Health/Watch") is None
    assert required_role("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is None
    assert required_role("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") is None
    assert required_role("/cofi.v1.Cofi/Later") == OPERATOR
    assert required_role("/x.Y/Z") == OPERATOR
