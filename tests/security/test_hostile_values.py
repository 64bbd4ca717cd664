"""The bad-input corpus for values (issue 14, classes 4, 5 and 6).

4. Every CSV value is checked against its column before it reaches the database: width,
   DECIMAL precision and scale, DATETIME and INTEGER ranges; refused per row with its line
   and column, the rest loads, money exact — on SQLite and on a real MariaDB.
5. Model replies are bounded (bytes, segments, text) and their numbers validated; a refused
   reply is the model's error (ModelReplyError), never stored.
6. Output is escaped for its medium: CSV cells against formula injection, terminal text
   against control characters (cofid.ctl.escape), --json export prints JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa
import trio

from cofid.backends.base import AudioRef, Backends, ChatRequest
from cofid.backends.fake import FakeBackends
from cofid.backends.remote import RemoteStt, parse_verbose_json
from cofid.backends.remote_chat import RemoteChat
from cofid.backends.remote_http import ModelReplyError, RemoteOptions, ReplyTooLarge
from cofid.ctl import output as out
from cofid.ctl.commands.watch import event_line
from cofid.ctl.escape import csv_cell, terminal_text
from cofid.domain import replies
from cofid.domain.csv_ingest import parse_trade_metadata
from cofid.simworker.http_server import Response, json_response
from cofid.store import tables as t
from cofid.store.column_limits import batch_limits
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import wav_bytes, write_batch_dir
from tests.backends import conftest as backend_fixtures

# The loopback stand-in server and HTTP client of tests/backends, shared.
serve = backend_fixtures.serve
client = backend_fixtures.client

C = grpc.StatusCode
LONG_CLIENT = "C" * 100
SECRET_ID = "sk-live-" + "s3cr3t" * 12  # 80 characters: must never be echoed

CALL_CSV = (
    "audioName,clientCode,agentId,callStartTime,callEndTime\n"
    "a.wav,C1,AG1,2026-11-22T10:15:00.999Z,2026-11-22T10:20:00Z\n"  # 2: fraction cut
    f"b.wav,{LONG_CLIENT},AG1,2026-11-22T10:15:00Z,\n"  # 3: clientCode too wide
    f"c.wav,C3,{'A' * 70},0999-01-01T00:00:00Z,\n"  # 4: agentId too wide, year 999
)
TRADE_CSV = (
    "tradeId,clientCode,symbol,side,quantity,price,tradeTime\n"
    "T1,C1,INFY,BUY,0.000001,99999999999999.999999,2026-11-22T10:16:00Z\n"  # 2: exact
    "T2,C1,INFY,BUY,123456789012345678901234567890,10,2026-11-22T10:16:00Z\n"  # 3
    "T3,C1,INFY,SELL,5,1.0000001,2026-11-22T10:16:00Z\n"  # 4: 7 decimals
    f"T4,C1,{'S' * 65},BUY,5,1,2026-11-22T10:16:00Z\n"  # 5: symbol too wide
    f"{SECRET_ID},C1,INFY,BUY,5,1,2026-11-22T10:16:00Z\n"  # 6: tradeId too wide
    "T6,C1,TCS,SELL,1500.000000000,12.5,2026-11-22T10:17:00.5+05:30\n"  # 7: trailing 0s
)
DEC = "(the column holds DECIMAL(20,6))"
RANGE = "(1000-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC)"
CALL_REFUSALS = [
    "line 3: clientCode: 100 characters, the column holds at most 64",
    "line 4: agentId: 70 characters, the column holds at most 64",
    f"line 4: callStartTime: '0999-01-01T00:00:00Z' is outside the range the column holds {RANGE}",
]
TRADE_REFUSALS = [
    f"line 3: quantity: '123456789012345678901234567890' has more than 14 digits before the "
    f"decimal point {DEC}",
    f"line 4: price: '1.0000001' has more than 6 digits after the decimal point; it would be "
    f"rounded {DEC}",
    "line 5: symbol: 65 characters, the column holds at most 64",
    "line 6: tradeId: 80 characters, the column holds at most 64",
]


# ---- class 4: CSV values against their columns, SQLite and MariaDB ---------------------


async def test_csv_values_are_checked_against_their_columns(start_server, tmp_path, db_url):
    h = await start_server(db_url=db_url)
    d = write_batch_dir(tmp_path / "b1", ["a.wav", "b.wav", "c.wav"])
    (d / "callMetadata.csv").write_text(CALL_CSV, encoding="utf-8")
    (d / "tradeMetadata.csv").write_text(TRADE_CSV, encoding="utf-8")
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    task = await h.wait_task(ref.task_id, timeout=60)
    assert task.state == "completed", task
    bid = task.batch_id

    calls = await h.rows(t.call_metadata, t.call_metadata.c.batchId == bid)
    assert [
        (
            r.audioName,
            r.clientCode,
            r.agentId,
            r.callStartTime.isoformat(),
            r.callEndTime.isoformat(),
        )
        for r in calls
    ] == [("a.wav", "C1", "AG1", "2026-11-22T10:15:00", "2026-11-22T10:20:00")]
    trades = await h.rows(t.trade_metadata, t.trade_metadata.c.batchId == bid)
    assert [(r.tradeId, r.quantity, r.price, r.tradeTime.isoformat()) for r in trades] == [
        ("T1", Decimal("0.000001"), Decimal("99999999999999.999999"), "2026-11-22T10:16:00"),
        ("T6", Decimal("1500.000000"), Decimal("12.500000"), "2026-11-22T04:47:00"),
    ]
    assert all(isinstance(r.quantity, Decimal) and isinstance(r.price, Decimal) for r in trades)

    logs = await h.rows(
        t.processing_logs,
        t.processing_logs.c.batch_id == bid,
        t.processing_logs.c.stage_name.in_(("callmetadata", "trademetadata")),
    )
    by_stage = {
        s: [r.error_message for r in logs if r.stage_name == s]
        for s in ("callmetadata", "trademetadata")
    }
    assert by_stage == {"callmetadata": CALL_REFUSALS, "trademetadata": TRADE_REFUSALS}
    assert all(SECRET_ID not in (r.error_message or "") for r in logs)
    assert all(LONG_CLIENT not in (r.error_message or "") for r in logs)
    # the refusals changed nothing else: every file of the batch ran
    assert await h.count(t.call, t.call.c.batchId == bid) == 3


async def test_money_is_exact_on_both_databases(start_server, db_url):
    """The Money type itself: a price with 20 significant digits reads back digit for digit
    (SQLite used to store it as a REAL, 100000000000000)."""
    h = await start_server(db_url=db_url)
    values = [
        Decimal("99999999999999.999999"),
        Decimal("12345678901234.567891"),
        Decimal("0.000001"),
    ]

    def write_and_read(c):
        bs = c.execute(
            sa.insert(t.batch_status).values(batchDate=date(2026, 11, 22), batchNumber=99)
        )
        call = c.execute(
            sa.insert(t.call).values(batchId=bs.inserted_primary_key[0], audioName="money.wav")
        )
        cc = t.call_conversation
        call_id = call.inserted_primary_key[0]
        c.execute(
            sa.insert(cc),
            [
                {"callId": call_id, "tradeIndex": i, "quantity": v, "price": v}
                for i, v in enumerate(values)
            ],
        )
        got = list(
            c.execute(
                sa.select(cc.c.quantity, cc.c.price)
                .where(cc.c.callId == call_id)
                .order_by(cc.c.tradeIndex)
            )
        )
        raw = (
            c.execute(
                sa.text(
                    'SELECT price FROM "callConversation"'
                    if c.dialect.name == "sqlite"
                    else "SELECT CAST(price AS CHAR) FROM callConversation"
                )
            )
            .scalars()
            .all()
        )
        c.rollback()  # leave nothing behind
        return got, raw

    got, raw = await h.app.db.read(write_and_read)
    assert got == [(v, v) for v in values]
    # stored as the exact digits, not a float, on both
    assert raw == ["99999999999999.999999", "12345678901234.567891", "0.000001"]


async def test_manifest_integer_out_of_range_is_refused(start_server, tmp_path):
    h = await start_server()
    d = write_batch_dir(tmp_path / "m1", ["a.wav"])
    (d / "batch.toml").write_text("process_id = 1099511627776\n", encoding="utf-8")
    code, msg = await h.code_of("StartBatch", pb.StartBatchRequest(directory=str(d)))
    assert code == C.FAILED_PRECONDITION
    assert msg == (
        f"{d / 'batch.toml'}: process_id is outside the range the column holds "
        "(-2147483648 to 2147483647)"
    )


def test_limits_come_from_the_tables_and_the_reply_rules_match_them():
    limits = batch_limits()
    tm, cm, cc = t.trade_metadata.c, t.call_metadata.c, t.call_conversation.c
    assert dict(limits.trade_metadata.widths) == {
        "trade_id": tm.tradeId.type.length,
        "client_code": tm.clientCode.type.length,
        "symbol": tm.symbol.type.length,
        "side": tm.side.type.length,
    }
    assert dict(limits.call_metadata.widths) == {
        "audio_name": cm.audioName.type.length,
        "client_code": cm.clientCode.type.length,
        "agent_id": cm.agentId.type.length,
    }
    q = limits.trade_metadata.decimals["quantity"]
    assert (q.precision, q.scale) == (tm.quantity.type.precision, tm.quantity.type.scale)
    # cofid.domain.replies' constants mirror callConversation (no drift)
    assert replies.MAX_ID_CHARS == cc.tradeId.type.length == cc.symbol.type.length
    assert cc.side.type.length == replies.MAX_SIDE_CHARS
    assert cc.orderType.type.length == replies.MAX_ORDER_TYPE_CHARS
    assert 10 ** (cc.quantity.type.precision - cc.quantity.type.scale) == replies.MAX_AMOUNT
    assert cc.price.type.scale == replies.AMOUNT_SCALE
    assert replies.MAX_TEXT_CHARS * 4 <= 65_535  # MySQL TEXT, 4 bytes a character


def test_long_values_are_never_echoed_and_what_is_shown_is_escaped():
    csv_text = (
        "tradeId,clientCode,symbol,side,quantity,price,tradeTime\n"
        f"T1,C1,INFY,BUY,{'9' * 5000},1,2026-11-22T10:16:00Z\n"
        "T2,C1,INFY,BUY,\x1b[31m1,1,2026-11-22T10:16:00Z\n"
    )
    parsed = parse_trade_metadata(csv_text.encode(), limits=batch_limits().trade_metadata)
    assert parsed.rows == []
    first, second = (e.message for e in parsed.errors)
    assert len(first) < 200 and "... (5000 chars)" in first
    assert "\x1b" not in second and "\\x1b[31m1" in second


# ---- class 5: model replies bounded and validated ----------------------------------------


def _audio(tmp_path: Path, name: str = "call1.wav") -> AudioRef:
    p = tmp_path / name
    p.write_bytes(wav_bytes())
    return AudioRef(path=p, name=name)


def verbose(segments, **extra):
    return {"text": "x", "language": "en", "duration": 9.0, "segments": segments, **extra}


SEG = {"start": 0.0, "end": 1.0, "text": "hello there", "avg_logprob": -0.1, "no_speech_prob": 0.01}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (verbose([{**SEG, "start": -1.0}]), "segments[0].start is negative (-1.0)"),
        (verbose([{**SEG, "start": math.nan}]), "segments[0].start is not a finite number"),
        (verbose([{**SEG, "end": "Infinity"}]), "segments[0].end is not a finite number"),
        (
            verbose([{**SEG, "start": 5.0, "end": 2.0}]),
            "segments[0] ends (2.0) before it starts (5.0)",
        ),
        (verbose([{**SEG, "start": "soon"}]), "segments[0].start is not a number"),
        (verbose([SEG], duration=-3), "duration is negative (-3.0)"),
        (
            verbose([SEG] * (replies.MAX_SEGMENTS + 1)),
            f"{replies.MAX_SEGMENTS + 1} segments, at most {replies.MAX_SEGMENTS} allowed",
        ),
        (
            verbose([{**SEG, "text": "a" * (replies.MAX_TEXT_CHARS + 1)}]),
            f"segments[0].text is longer than {replies.MAX_TEXT_CHARS} characters",
        ),
    ],
)
def test_transcription_numbers_and_sizes_are_validated(body, problem):
    with pytest.raises(ModelReplyError) as info:
        parse_verbose_json(body)
    assert str(info.value) == f"the transcription cannot be stored: {problem}"
    assert info.value.details["model_error"] is True


async def test_transcript_total_text_is_bounded(serve, client, tmp_path):
    many = [{**SEG, "start": float(i), "end": i + 1.0, "text": "w" * 10_000} for i in range(51)]

    async def reply(request):
        return json_response(verbose(many, duration=60.0))

    _, url = await serve(reply)
    stt = RemoteStt(url, client, RemoteOptions())
    with pytest.raises(ModelReplyError, match=r"the text is 510000 characters, at most 500000"):
        await stt.transcribe(_audio(tmp_path), "en")


class HugeReply:
    """A raw loopback HTTP server whose every reply is `size` bytes of a JSON string,
    chunked (no Content-Length) or declared; it counts what it managed to send."""

    def __init__(self, size: int, *, declare: bool) -> None:
        self.size = size
        self.declare = declare
        self.sent = 0
        self.url = ""

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(rest) < length:
                rest += await stream.receive_some(65536)
            framing = (
                f"Content-Length: {self.size}" if self.declare else "Transfer-Encoding: chunked"
            )
            await stream.send_all(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()
            )
            chunk = b"x" * (1024 * 1024)
            while self.sent < self.size:
                piece = chunk[: self.size - self.sent]
                frame = piece if self.declare else b"%x\r\n%s\r\n" % (len(piece), piece)
                await stream.send_all(frame)
                self.sent += len(piece)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client hung up: what the test wants


@pytest.mark.parametrize("declare", [False, True])
async def test_a_256_mib_reply_is_refused_after_the_cap(nursery, tmp_path, declare):
    server = await nursery.start(HugeReply(256 * 1024 * 1024, declare=declare).serve)
    cap = 2 * 1024 * 1024
    async with httpx.AsyncClient() as http:
        stt = RemoteStt(server.url, http, RemoteOptions(max_reply_bytes=cap))
        with pytest.raises(ReplyTooLarge) as info:
            await stt.transcribe(_audio(tmp_path), "en")
    details = info.value.details
    assert details["model_error"] is True and details["limit_bytes"] == cap
    if declare:
        assert str(info.value).endswith(
            f"the reply is {256 * 1024 * 1024} bytes, over the limit of {cap} bytes"
        )
        assert details["read_bytes"] == 0
    else:
        assert "over the limit of 2097152 bytes; reading stopped there" in str(info.value)
        assert cap < details["read_bytes"] <= cap + 1024 * 1024 + 64 * 1024
    await trio.sleep(0.2)
    # reading stopped: the server could push only what socket buffers hold past the cap
    assert server.sent < 64 * 1024 * 1024


async def test_a_huge_error_reply_keeps_only_its_head(serve, client, tmp_path):
    async def reply(request):
        return Response(
            status=503, body=b"overloaded " + b"y" * (8 * 1024 * 1024), content_type="text/plain"
        )

    _, url = await serve(reply)
    stt = RemoteStt(url, client, RemoteOptions())
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked below
        await stt.transcribe(_audio(tmp_path), "en")
    assert type(info.value).__name__ == "BackendError"
    assert len(str(info.value)) < 1000 and "HTTP 503: overloaded" in str(info.value)


def chat_reply(trades):
    content = json.dumps({"trades": trades})
    return json_response(
        {
            "model": "m",
            "choices": [
                {"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
        }
    )


LLM1_SCHEMA = {
    "type": "object",
    "properties": {"trades": {"type": "array"}},
    "required": ["trades"],
}


@pytest.mark.parametrize(
    ("trade", "problem"),
    [
        ({"quantity": 0, "price": 10}, "trades[0].quantity is not positive (0)"),
        ({"quantity": -5, "price": 10}, "trades[0].quantity is not positive (-5)"),
        ({"quantity": 5, "price": 0}, "trades[0].price is not positive (0)"),
        (
            {"quantity": 1e-7, "price": 10},
            "trades[0].quantity rounds to 0 at 6 decimal places (1e-07)",
        ),
        ({"quantity": 1e30, "price": 10}, "trades[0].quantity is too large (1e+30)"),
        (
            {"quantity": 5, "price": 10, "order_type": "L" * 17},
            "trades[0].order_type is longer than 16 characters",
        ),
        (
            {"quantity": 5, "price": 10, "evidence": "e" * (replies.MAX_TEXT_CHARS + 1)},
            f"trades[0].evidence is longer than {replies.MAX_TEXT_CHARS} characters",
        ),
    ],
)
async def test_llm_trade_numbers_and_widths_are_validated(serve, client, trade, problem):
    async def reply(request):
        return chat_reply([trade])

    _, url = await serve(reply)
    chat = RemoteChat(url, client, RemoteOptions())
    req = ChatRequest(
        purpose="llm1", system="s", user="u", schema_name="trades", schema=LLM1_SCHEMA
    )
    with pytest.raises(ModelReplyError) as info:
        await chat.complete(req)
    assert str(info.value) == f"the reply cannot be stored: {problem}"


async def test_llm_infinity_is_refused_as_not_json(serve, client):
    async def reply(request):
        content = '{"trades": [{"quantity": Infinity, "price": 1}]}'
        return json_response(
            {"choices": [{"message": {"content": content}, "finish_reason": "stop"}]}
        )

    _, url = await serve(reply)
    chat = RemoteChat(url, client, RemoteOptions())
    req = ChatRequest(
        purpose="llm1", system="s", user="u", schema_name="trades", schema=LLM1_SCHEMA
    )
    with pytest.raises(ModelReplyError, match="not JSON: Infinity is not a JSON number"):
        await chat.complete(req)


class RemoteSttOnFakes(FakeBackends):
    """The fake GPU, except STT, which is a real RemoteStt against a loopback stand-in."""

    def __init__(self, stt: RemoteStt) -> None:
        super().__init__()
        self.remote_stt = stt

    def backends(self) -> Backends:
        b = super().backends()
        return Backends(denoise=b.denoise, ivr=b.ivr, lid=b.lid, stt=self.remote_stt, chat=b.chat)


async def test_a_refused_transcription_fails_the_file_and_stores_nothing(
    start_server, serve, client, tmp_path
):
    async def reply(request):
        name = request.form()["file"].filename or ""
        if name.startswith("bad"):  # a reversed segment: the model's error
            return json_response(verbose([SEG, {**SEG, "start": 7.0, "end": 3.0}]))
        return json_response(verbose([SEG]))

    stand_in, url = await serve(reply)
    h = await start_server(fake=RemoteSttOnFakes(RemoteStt(url, client, RemoteOptions())))
    d = write_batch_dir(tmp_path / "s1", ["bad1.wav", "good1.wav"])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    task = await h.wait_task(ref.task_id, timeout=60)
    assert task.state == "completed", task
    reason = "the transcription cannot be stored: segments[1] ends (3.0) before it starts (7.0)"
    assert [(f.audio_name, f.stage, f.error) for f in task.failures] == [
        ("bad1.wav", "stt", reason)
    ]
    calls = {r.audioName: r.id for r in await h.rows(t.call, t.call.c.batchId == task.batch_id)}
    segments = await h.rows(t.transcript, t.transcript.c.callId.in_(calls.values()))
    assert [(s.callId, s.startTime, s.endTime) for s in segments] == [
        (calls["good1.wav"], 0.0, 1.0)
    ]
    fd = await h.rows(t.file_distribution, t.file_distribution.c.batchId == task.batch_id)
    assert {(r.file, r.failedStage, r.failureReason) for r in fd} == {
        ("bad1.wav", "stt", reason),
        ("good1.wav", None, None),
    }
    # retried as a model error: the stand-in saw the bad file once per attempt
    attempts = [r for r in stand_in.requests if r.form()["file"].filename.startswith("bad")]
    assert len(attempts) == h.cfg.stages.retry.attempts


# ---- class 6: escaping for the medium ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("1500", "1500"),
        (None, ""),
    ],
)
def test_csv_cell_escapes_formulas(value, cell):
    assert csv_cell(value) == cell


def test_terminal_text_escapes_controls_and_an_event_stays_one_line():
    assert terminal_text("a\x1b[2Jb\x07\x7f\x9b\u202e\u2028c\nd") == (
        "a\\x1b[2Jb\\x07\\x7f\\x9b\\u202e\\u2028c\\nd"
    )
    assert terminal_text("नमस्ते\u200d ok") == "नमस्ते\u200d ok"  # joiners are text
    ev = pb.Event(
        id=7,
        batch_id=3,
        stage="stt",
        event_type="error",
        status="failed",
        file_name="x.wav\n       8 2026-01-01T00:00:00Z batch=3 stt  file_complete",
        error_message="\x1b]0;owned\x07boom",
    )
    line = event_line(ev)
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line
    assert line.endswith(
        "x.wav\\n       8 2026-01-01T00:00:00Z batch=3 stt  file_complete "
        "error=\\x1b]0;owned\\x07boom"
    )
    buf = io.StringIO()
    out.table(["audio"], [["a\x1b[31mb\nc"]], file=buf)
    assert buf.getvalue() == "AUDIO\na\\x1b[31mb\\nc\n"


FORMULA_NAMES = ["=HYPERLINK(1).wav", "@SUM(A1).wav", "+1+1.wav", "-2+3.wav", "plain.wav"]


@pytest.fixture
def formula_world(tmp_path, zoned_db_url):
    """A real daemon (tests/ctl) that audited a batch whose file names are formulas, on
    SQLite and on MariaDB with the server zone at +05:30."""
    from tests.ctl.conftest import Ctl, Daemon, short_root

    root = short_root("cofihv")
    d = Daemon(root, db_url=zoned_db_url).start()
    try:
        bdir = write_batch_dir(tmp_path / "formulas", FORMULA_NAMES)
        ref = d.rpc("StartBatch", pb.StartBatchRequest(directory=str(bdir)))
        task = d.wait_task(ref.task_id, timeout=60)
        assert task.state == "completed", task
        yield Ctl(d, tmp_path / "xdg"), task.batch_id, zoned_db_url
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_export_csv_is_formula_safe_and_json_export_is_json(formula_world):
    from tests.ctl.conftest import VIEW

    ctl, bid, url = formula_world
    r = ctl("export", "--batch", str(bid), "--what", "answers", "--format", "csv", token=VIEW)
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    names = {row["audio_name"] for row in rows}
    assert names == {"'" + n if n[0] in "=@+-" else n for n in FORMULA_NAMES}
    assert all(
        not v.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for v in row.values()
    )
    # --json, before the subcommand: JSON lines with the exact values, not CSV
    j = ctl("--json", "export", "--batch", str(bid), "--what", "answers", token=VIEW)
    assert j.code == 0, j.err
    docs = [json.loads(line) for line in j.out.splitlines()]
    assert len(docs) == len(rows) and {doc["audio_name"] for doc in docs} == set(FORMULA_NAMES)
    # Exactly the batch's auditAnswer rows, unescaped, in call and question order.
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            a, c = t.audit_answer, t.call
            want = [tuple(x) for x in conn.execute(
                sa.select(c.c.id, c.c.audioName, a.c.questionId, a.c.answer, a.c.source)
                .join(c, c.c.id == a.c.callId).where(c.c.batchId == bid)
                .order_by(a.c.callId, a.c.questionOrder))]
    finally:
        engine.dispose()
    assert want and [(int(doc["call_id"]), doc["audio_name"], doc["question_id"],
                      doc["answer"], doc["source"]) for doc in docs] == want
    both = ctl(
        "--json", "export", "--batch", str(bid), "--what", "answers", "--format", "csv", token=VIEW
    )
    assert both.code == 2 and "--json and --format csv contradict each other" in both.err
