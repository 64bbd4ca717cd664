"""The health banner: its lines from daemon facts (unit), and the app against a real cofid
that refuses its token, and against no daemon at all: one line that says why, instead of
"connecting" for ever."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.tui.conftest import run_app, wait_until
from tests.tui.fakes import NOW, T0
from tui.app import CofiApp
from tui.config import Settings
from tui.health import ERROR, WARNING, Health, banner_lines, explain_auth
from tui.model import BatchInfo, BatchModel, GpuInfo

MINUTE = timedelta(minutes=1)


def running(last_finished=None) -> BatchModel:
    m = BatchModel(30)
    m.apply_snapshot(
        BatchInfo(
            30, "2024-06-11", 3, "sttDone", "batch", 12, T0, last_file_finished_at=last_finished
        ),
        [],
    )
    return m


def gpus(*healthy: bool) -> tuple[GpuInfo, ...]:
    return tuple(GpuInfo(f"gpu-{'ab'[i]}", healthy=h) for i, h in enumerate(healthy))


def test_stall_and_gpu_lines_come_from_the_daemons_facts():
    ok = Health("connected", gpus=gpus(True, True))
    assert banner_lines(ok, running(NOW - timedelta(seconds=20)), NOW, MINUTE) == []
    stalled = running(NOW - timedelta(minutes=3, seconds=10))
    assert banner_lines(ok, stalled, NOW, MINUTE) == [("no file finished for 3 min", ERROR)]
    # nothing finished yet: counted from the batch's start
    assert banner_lines(ok, running(None), NOW, MINUTE) == [("no file finished for 7 min", ERROR)]
    down = Health("connected", gpus=gpus(False, False))
    assert banner_lines(down, stalled, NOW, MINUTE) == [
        ("no file finished for 3 min", ERROR),
        ("0/2 GPUs healthy (gpu-a, gpu-b down)", ERROR),
    ]
    half = Health("connected", gpus=gpus(True, False))
    assert banner_lines(half, None, NOW, MINUTE) == [("1/2 GPUs healthy (gpu-b down)", WARNING)]
    done = running(NOW - timedelta(hours=1))
    done.completed = True  # a finished batch does not stall
    assert banner_lines(ok, done, NOW, MINUTE) == []
    not_loaded = BatchModel(30)  # no GetBatch answer yet: no facts, no line
    assert banner_lines(ok, not_loaded, NOW, MINUTE) == []


def test_link_lines_win_and_hide_stale_facts():
    h = Health(
        "reconnecting",
        down_since=T0,
        link_detail="UNAVAILABLE: cofid at x is unreachable or unavailable (connection refused)",
        gpus=gpus(False, False),
    )
    assert banner_lines(h, running(None), NOW, MINUTE) == [
        (
            "daemon unreachable since 10:15:00 — UNAVAILABLE: cofid at x is unreachable or "
            "unavailable (connection refused)",
            ERROR,
        )
    ]
    h = Health("auth-failed", auth_text="wrong token: unknown token (token from $COFI_TOKEN)")
    assert banner_lines(h, running(None), NOW, MINUTE) == [
        ("wrong token: unknown token (token from $COFI_TOKEN)", ERROR)
    ]
    assert explain_auth(
        "PERMISSION_DENIED", "token 'v' has role viewer; Reaudit needs operator", True, "x"
    ) == ("auth refused (viewer token?): token 'v' has role viewer; Reaudit needs operator")
    assert explain_auth("UNAUTHENTICATED", "missing", False, "nowhere").startswith("no token")


def banner_after(target: str, token: str | None, source: str, expect: str):
    """A pilot session (a coroutine function) that waits for the banner to say `expect`."""

    async def scenario() -> str:
        app = CofiApp(
            Settings(target, token, None, None, source), backoff=(0.1, 0.5), idle_timeout=5.0
        )
        async with app.run_test(size=(80, 24)) as pilot:

            def shown() -> bool:
                banner = app.screen.query_one("#health-banner")
                return banner.display and expect in str(banner.render())

            await wait_until(pilot, shown, what=f"banner with {expect!r}")
            return str(app.screen.query_one("#health-banner").render())

    return scenario


async def test_no_token_and_wrong_token_are_said_in_one_line(daemon):
    no = await run_app(banner_after(daemon.target, None, "nowhere", "no token"))
    assert no.startswith("✘ no token: the daemon wants one") and "\n" not in no
    wrong = await run_app(banner_after(daemon.target, "not-a-token", "$COFI_TOKEN", "wrong token"))
    assert wrong == "✘ wrong token: unknown token (token from $COFI_TOKEN)"


def test_no_daemon_says_unreachable_since(tmp_path):
    text = asyncio.run(
        banner_after(
            f"unix:{tmp_path / 'none.sock'}", None, "nowhere", "daemon unreachable since"
        )()
    )
    assert "UNAVAILABLE: cofid at unix:" in text and "unreachable or unavailable" in text
