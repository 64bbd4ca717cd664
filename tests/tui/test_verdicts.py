"""The TUI's verdicts against a real cofid: the dashboard's verdict line with the batch's
counts, the list of trades that need a person, and the drill-down to a trade's call —
with daemon data that looks like Rich markup or carries terminal escapes shown as text.

The verdict rows are written straight into the store (tests/api/verdict_rows.py) on an
uploaded batch."""

from __future__ import annotations

import sqlalchemy as sa
import trio

from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import upload_messages, wav_bytes
from tests.api.verdict_rows import seed_verdicts
from tests.tui.conftest import VIEW, run_app, wait_until
from tests.tui.test_live import app_for, rpc
from tui.screens.call_view import CallScreen
from tui.screens.trades import TradesScreen

MARKUP = "[bold red]boom[/] [/x] the call failed stage stt"


async def seeded_batch(daemon) -> int:
    up = await rpc(
        daemon,
        "UploadAudit",
        iter(upload_messages({"p1.wav": wav_bytes(), "p2.wav": wav_bytes(freq=520)})),
    )
    with trio.fail_after(30):
        while (
            await rpc(daemon, "GetTask", pb.GetTaskRequest(task_id=up.task_id), VIEW)
        ).state != "completed":
            await trio.sleep(0.05)

    def seed(c):
        seed_verdicts(c, up.batch_id)
        c.execute(
            sa.update(t.trade_verdict)
            .where(t.trade_verdict.c.tradeId == "T4")
            .values(reason=MARKUP)
        )

    await daemon.app.db.write(seed)
    return up.batch_id


def text_of(widget) -> str:
    return str(widget.render())


async def test_verdict_counts_trades_and_drill_down(daemon):
    batch_id = await seeded_batch(daemon)
    call = await rpc(
        daemon, "GetCall", pb.GetCallRequest(audio_name="p1.wav", batch_id=batch_id), VIEW
    )
    assert call.transcript

    async def scenario():
        app = app_for(daemon, batch_id)
        async with app.run_test(size=(120, 40)) as pilot:
            bar = app.screen.query_one("#verdict-bar")
            await wait_until(pilot, lambda: "Trades" in text_of(bar), what="verdict line")
            line = text_of(bar)
            await pilot.press("t")
            await wait_until(
                pilot,
                lambda: (
                    isinstance(app.screen, TradesScreen)
                    and app.screen.query_one("#trade-table").row_count == 3
                ),
                what="trades that need a person",
            )
            table = app.screen.query_one("#trade-table")
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            await pilot.press("down", "enter")  # the second row: T2, its call p1.wav
            await wait_until(
                pilot,
                lambda: (
                    isinstance(app.screen, CallScreen)
                    and "transcript" in text_of(app.screen.query_one("#call-detail"))
                ),
                what="the call",
            )
            verdict = text_of(app.screen.query_one("#call-verdict"))
            detail = text_of(app.screen.query_one("#call-detail"))
            await pilot.press("escape")
            await pilot.pause(0.1)
            back_on_trades = isinstance(app.screen, TradesScreen)
            return line, rows, verdict, detail, back_on_trades

    line, rows, verdict, detail, back = await run_app(scenario)
    assert line == (
        "Trades confirmed 1 · mismatch 1 · no_call 1 · call_unusable 1 · "
        "pending 1   3 need a person (t)"
    )
    assert [r[:4] for r in rows] == [
        ["=T3", "no_call", "—", "—"],
        ["T2", "mismatch", "p1.wav", "quantity"],
        ["T4", "call_unusable", "p2.wav", "—"],
    ]
    # escapes shown escaped, markup shown as written
    assert rows[1][4] == "quantity: booked 1000, heard 100 \\x1b[31mRED\\x1b[0m\\x07"
    assert rows[2][4] == MARKUP
    assert "quantity     1000            100             NO" in verdict
    assert "I would like to buy 100 shares of Infosys" in verdict and "\x1b" not in verdict
    assert f"Call p1.wav  {call.audio_duration:.1f} s" in detail
    for seg in call.transcript:
        assert seg.text in detail
    assert f"transcript ({len(call.transcript)})" in detail
    assert f"audit answers ({len(call.audit_answers)})" in detail
    assert back
