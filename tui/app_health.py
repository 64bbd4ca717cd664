"""The app's part in the health banner: polling ListGpus and GetBatch for the daemon's
facts, and bundling them for tui.health (a mixin of CofiApp; state lives on the app)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from tui.client import describe_error, explain_link, explain_refusal, is_auth_error
from tui.health import Health
from tui.messages import ConnectionChanged
from tui.model import GpuInfo


class HealthFacts:
    """watch_gpus keeps app.gpus fresh; _poll_snapshot reloads the batch while it runs."""

    gpus: tuple[GpuInfo, ...] | None

    @work(exclusive=True, group="gpus")
    async def watch_gpus(self: Any) -> None:
        """ListGpus for the banner's "n/m GPUs healthy" (once when gpu_refresh_s <= 0)."""
        while True:
            try:
                self.gpus = tuple(await self.client.list_gpus())
                self._dirty = True
            except Exception as exc:  # noqa: BLE001 - the link state is the stream's
                self.log.info(f"ListGpus: {describe_error(exc)}")
            if self.gpu_refresh_s <= 0:
                return
            await asyncio.sleep(self.gpu_refresh_s)

    def _poll_snapshot(self: Any) -> None:
        if self.model is not None and not self.model.completed and not self._loading:
            self.load_batch(self.model.batch_id)

    def health(self: Any) -> Health:
        return Health(self.conn_state, self.down_since, self.link_detail, self.auth_text, self.gpus)

    def _link_failed(self: Any, exc: BaseException) -> str:
        """The failure in cofictl's words; a refusal also says why (the banner's line)."""
        s = self.settings
        if is_auth_error(exc):
            self.post_message(
                ConnectionChanged(
                    "auth-failed", explain_refusal(exc, s.token is not None, s.token_source)
                )
            )
        return explain_link(exc, s.target, s.token_source)
