"""`cofi-tui`: live monitoring of cofid over the gRPC event stream.

Two streams run in exclusive workers: the batch on the dashboard (replayed from event 0,
then live) and a light all-batches stream (stage_start, error, info) that notices new
batches (to follow the newest) and failures elsewhere. Both reconnect with backoff and
resume from the last event id they saw; the model drops anything at or below its last id,
so nothing is missed or shown twice. The UI only ever awaits inside workers.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from tui.app_health import HealthFacts
from tui.client import Client, CofiClient, describe_error
from tui.config import Settings, parse_args
from tui.messages import (
    BatchLoaded,
    ConnectionChanged,
    EventArrived,
    GlobalEvent,
    ModelChanged,
    OpenBatch,
    StreamNotice,
)
from tui.model import BatchModel, EventRecord, GpuInfo, Heartbeat, Notice, next_backoff
from tui.screens.batches import BatchesScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.errors import ErrorsScreen
from tui.screens.event_detail import EventDetailScreen
from tui.screens.export import ExportScreen
from tui.screens.gpus import GpusScreen
from tui.screens.help import HelpScreen
from tui.screens.trades import TradesScreen
from tui.text import plain_str

ClientFactory = Callable[[Settings], Client]
LIVE_ERROR_WINDOW = timedelta(seconds=30)


class CofiApp(HealthFacts, App):
    TITLE = "cofi"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("d", "dashboard", "Dashboard", show=False),
        Binding("b", "batches", "Batches"),
        Binding("g", "gpus", "GPUs"),
        Binding("e", "errors", "Errors"),
        Binding("x", "export", "Export"),
        Binding("t", "trades", "Trades", show=False),  # the verdict line names it
        Binding("f", "follow", "Follow newest"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, settings: Settings, *, client_factory: ClientFactory | None = None,
                 clock: Callable[[], datetime | None] | None = None,
                 backoff: tuple[float, float] = (0.5, 10.0), idle_timeout: float = 30.0,
                 refresh_s: float = 0.25, gpu_refresh_s: float = 2.0,
                 poll_s: float = 3.0, snapshot_s: float = 2.0,
                 stall_after_s: float = 60.0) -> None:
        super().__init__()
        self.settings = settings
        self.client_factory = client_factory or (
            lambda s: CofiClient(s.target, s.token, s.ca_file, s.operator_token))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.backoff, self.idle_timeout = backoff, idle_timeout
        self.refresh_s, self.gpu_refresh_s, self.poll_s = refresh_s, gpu_refresh_s, poll_s
        self.global_live = False  # the all-batches stream delivered something
        self.client: Client
        self.model: BatchModel | None = None
        self.follow = settings.batch_id is None
        self.conn_state, self.conn_detail = "connecting", ""
        self.reconnects = 0
        self.snapshot_s, self.stall_after = snapshot_s, timedelta(seconds=stall_after_s)
        # the health banner's facts (tui.health): link outage, refusal, ListGpus
        self.down_since: datetime | None = None
        self.ever_connected = False
        self.link_detail = self.auth_text = ""
        self.gpus: tuple[GpuInfo, ...] | None = None
        self._loading = False
        self.started = self.clock()
        self._dirty = True
        self._reload_pending = False

    def now(self) -> datetime | None:
        return self.clock()

    # -- life cycle ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.client = self.client_factory(self.settings)  # grpc.aio binds to this loop
        self.push_screen(DashboardScreen())
        self.set_interval(self.refresh_s, self._refresh_if_dirty)
        self.set_interval(1.0, self._tick)
        if self.snapshot_s > 0:  # the daemon's counters, while the batch runs
            self.set_interval(self.snapshot_s, self._poll_snapshot)
        self.watch_all()
        self.watch_gpus()
        if self.settings.batch_id is not None:
            self.switch_batch(self.settings.batch_id)
        else:
            self.find_newest()

    async def on_unmount(self) -> None:
        self.workers.cancel_all()
        client = getattr(self, "client", None)
        if client is not None:
            await client.close()

    def switch_batch(self, batch_id: int) -> None:
        if self.model is not None and self.model.batch_id == batch_id:
            return
        self.model = BatchModel(batch_id)
        self.load_batch(batch_id)
        self.watch_batch(batch_id)
        self._dirty = True
        self._refresh_if_dirty()

    # -- workers ---------------------------------------------------------------------

    @work(exclusive=True, group="newest")
    async def find_newest(self) -> None:
        """While following: open the newest batch, and look again every few seconds (the
        all-batches stream usually switches first; this covers its reconnect windows)."""
        delay = 0.0
        while self.follow:
            try:
                batches, _ = await self.client.list_batches(None, None, 1, "")
                delay = 0.0
            except Exception as exc:  # noqa: BLE001 - the stream workers report the link
                delay = next_backoff(delay, initial=self.backoff[0], cap=self.backoff[1])
                self.log.warning(f"ListBatches: {describe_error(exc)}")
                await asyncio.sleep(delay)
                continue
            current = self.model.batch_id if self.model else 0
            if batches and self.follow and batches[0].batch_id > current:
                self.post_message(OpenBatch(batches[0].batch_id, follow=True))
            await asyncio.sleep(self.poll_s)

    @work(exclusive=True, group="batch")
    async def load_batch(self, batch_id: int) -> None:
        self._loading = True
        try:
            info, stages = await self.client.get_batch(batch_id)
        except Exception as exc:  # noqa: BLE001 - events still fill the dashboard
            self.log.warning(f"GetBatch {batch_id}: {describe_error(exc)}")
            return
        finally:
            self._loading = False
        self.post_message(BatchLoaded(info, stages))

    @work(exclusive=True, group="stream")
    async def watch_batch(self, batch_id: int) -> None:
        last_id = 0
        delay = 0.0
        attempt = 0
        while True:
            first = True
            try:
                async for item in self.client.watch(batch_id, last_id,
                                                    idle_timeout=self.idle_timeout):
                    if first:
                        first, attempt, delay = False, 0, 0.0
                        self.post_message(ConnectionChanged("connected"))
                    if isinstance(item, EventRecord):
                        if item.id > last_id:
                            last_id = item.id
                            self.post_message(EventArrived(batch_id, item))
                    elif isinstance(item, Notice):
                        self.post_message(StreamNotice(item))
                detail = "stream ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure means: reconnect
                detail = self._link_failed(exc)
            attempt += 1
            self.reconnects += 1
            delay = next_backoff(delay, initial=self.backoff[0], cap=self.backoff[1])
            self.post_message(ConnectionChanged("reconnecting", detail, delay, attempt))
            await asyncio.sleep(delay)

    @work(exclusive=True, group="global")
    async def watch_all(self) -> None:
        last_id: int | None = None  # live only at first; then resume from what we saw
        delay = 0.0
        while True:
            try:
                async for item in self.client.watch(
                        0, last_id, event_types=("stage_start", "error", "info"),
                        idle_timeout=self.idle_timeout):
                    if self.model is None and not self.global_live:  # no batch stream yet
                        self.post_message(ConnectionChanged("connected"))
                    delay = 0.0
                    self.global_live = True
                    if isinstance(item, EventRecord):
                        last_id = max(last_id or 0, item.id)
                        self.post_message(GlobalEvent(item))
                    elif isinstance(item, Heartbeat) and last_id is None:
                        last_id = item.last_event_id
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the batch stream shows the link state
                self.log.info(f"all-batches stream: {describe_error(exc)}")
                self.global_live = False
                delay = next_backoff(delay, initial=self.backoff[0], cap=self.backoff[1])
                if self.model is None:  # ... unless there is none: then this one does
                    self.post_message(ConnectionChanged("reconnecting", self._link_failed(exc),
                                                        delay))
            else:
                delay = next_backoff(delay, initial=self.backoff[0], cap=self.backoff[1])
            await asyncio.sleep(delay)

    # -- message handlers ------------------------------------------------------------

    def on_event_arrived(self, message: EventArrived) -> None:
        model = self.model
        if model is None or model.batch_id != message.batch_id:
            return
        ev = message.event
        if not model.apply(ev):
            return
        self._dirty = True
        if ev.is_error and not ev.is_gpu_health and self._is_live(ev):
            # markup=False: names and messages are data, never Rich markup (tui/text.py).
            # No title: a toast is one line (app.tcss); a GPU going down is the banner's.
            self.notify(plain_str(f"{ev.stage}: {ev.file_name or 'batch'} — {ev.error_message}"),
                        severity="error", timeout=6, markup=False)
        if ev.event_type == "stage_complete" or ev.stage == "pipeline":
            self._schedule_reload()

    def on_global_event(self, message: GlobalEvent) -> None:
        ev = message.event
        current = self.model.batch_id if self.model else 0
        if self.follow and ev.batch_id > current and ev.event_type == "stage_start":
            self.switch_batch(ev.batch_id)
            self.notify(f"Following new batch {ev.batch_id}", timeout=3)
        elif ev.is_error and ev.batch_id != current and self._is_live(ev):
            where = f"batch {ev.batch_id}" if ev.batch_id else "reaudit"
            self.notify(plain_str(f"{where} · {ev.stage}: {ev.file_name} — {ev.error_message}"),
                        severity="warning", timeout=6, markup=False)

    def on_batch_loaded(self, message: BatchLoaded) -> None:
        if self.model is not None and self.model.batch_id == message.info.batch_id:
            self.model.apply_snapshot(message.info, message.stages)
            self._dirty = True

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        if message.state == "connected":
            self.ever_connected, self.down_since = True, None
            self.auth_text = self.link_detail = ""
        elif message.state == "auth-failed":
            self.auth_text = message.detail
        elif message.state == "reconnecting":
            self.link_detail = message.detail
            if self.down_since is None:  # before any connection: down since we started
                self.down_since = self.now() if self.ever_connected else self.started
        if self.conn_state == "auth-failed" and message.state == "reconnecting":
            self.conn_detail = f"{message.detail} (retry in {message.retry_in:.1f}s)"
        else:
            self.conn_state = message.state
            self.conn_detail = (f"{message.detail} (retry {message.attempt} in "
                                f"{message.retry_in:.1f}s)" if message.state == "reconnecting"
                                and message.detail else "")
        self._dirty = True

    def on_stream_notice(self, message: StreamNotice) -> None:
        n = message.notice
        if n.code == "gap":
            self.notify(plain_str(f"Some old events are no longer retained: {n.message}"),
                        severity="warning", markup=False)
        elif n.code == "shutting_down":
            self.notify("The daemon is shutting down; reconnecting…", severity="warning")

    def on_open_batch(self, message: OpenBatch) -> None:
        if message.batch_id is None:
            self.follow = True
            self.find_newest()
        else:
            self.follow = message.follow
            self.switch_batch(message.batch_id)
        self._dirty = True

    def on_model_changed(self, message: ModelChanged) -> None:
        self._dirty = True

    # -- helpers ---------------------------------------------------------------------

    def _is_live(self, ev: EventRecord) -> bool:
        """Only failures from around now notify (a replayed history would flood)."""
        if ev.timestamp is None or self.started is None:
            return False
        return ev.timestamp >= self.started - LIVE_ERROR_WINDOW

    def _schedule_reload(self) -> None:
        if self._reload_pending or self.model is None:
            return
        self._reload_pending = True
        batch_id = self.model.batch_id

        def reload() -> None:
            self._reload_pending = False
            if self.model is not None and self.model.batch_id == batch_id:
                self.load_batch(batch_id)

        self.set_timer(0.3, reload)

    def _tick(self) -> None:
        if self.model is not None and not self.model.completed:
            self._dirty = True

    def _refresh_if_dirty(self) -> None:
        # Not while the app shuts down: its screens' widgets are being removed, and a
        # last timer tick would look for them (NoMatches).
        if not self._dirty or not self.is_running:
            return
        self._dirty = False
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_view", None)
            if refresh is not None and screen.is_mounted:
                refresh()

    def open_event(self, ev: EventRecord) -> None:
        self.push_screen(EventDetailScreen(ev))

    # -- actions ---------------------------------------------------------------------

    def _top(self, kind: type) -> bool:
        return isinstance(self.screen, kind)

    def action_dashboard(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_batches(self) -> None:
        if not self._top(BatchesScreen):
            self.action_dashboard()
            self.push_screen(BatchesScreen())

    def action_gpus(self) -> None:
        if not self._top(GpusScreen):
            self.action_dashboard()
            self.push_screen(GpusScreen(self.gpu_refresh_s))

    def action_errors(self) -> None:
        if not self._top(ErrorsScreen):
            self.action_dashboard()
            self.push_screen(ErrorsScreen())

    def action_trades(self) -> None:
        """The dashboard batch's trades that need a person (mismatch, no_call,
        call_unusable), with a drill-down to each one's call."""
        if self.model is None:
            self.notify("No batch on the dashboard yet", severity="warning")
            return
        if not self._top(TradesScreen):
            self.action_dashboard()
            self.push_screen(TradesScreen(self.model.batch_id))

    def action_export(self) -> None:
        if self.model is None:
            self.notify("No batch on the dashboard yet", severity="warning")
            return
        if self._top(ErrorsScreen):
            events, what = self.model.view(errors_only=True), "errors"
        else:
            dash = next(s for s in self.screen_stack if isinstance(s, DashboardScreen))
            events, what = dash.events_in_view(), dash.stage or "events"
        default = Path.cwd() / f"cofi-batch{self.model.batch_id}-{what}.csv"
        self.push_screen(ExportScreen(events, default))

    def action_help(self) -> None:
        if not self._top(HelpScreen):
            self.push_screen(HelpScreen())

    def action_follow(self) -> None:
        self.post_message(OpenBatch(None))
        self.notify("Following the newest batch", timeout=2)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    CofiApp(settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
