"""Every custom message of the TUI. Workers post these; widgets and screens handle them."""

from __future__ import annotations

from textual.message import Message

from tui.model import BatchInfo, EventRecord, GpuInfo, Notice, StageSnapshot


class EventArrived(Message):
    """An event of the batch on the dashboard (from the batch stream)."""

    def __init__(self, batch_id: int, event: EventRecord) -> None:
        super().__init__()
        self.batch_id, self.event = batch_id, event


class GlobalEvent(Message):
    """A stage_start / error / info event of any batch (from the all-batches stream)."""

    def __init__(self, event: EventRecord) -> None:
        super().__init__()
        self.event = event


class ConnectionChanged(Message):
    """state: connecting | connected | reconnecting | auth-failed."""

    def __init__(self, state: str, detail: str = "", retry_in: float = 0.0,
                 attempt: int = 0) -> None:
        super().__init__()
        self.state, self.detail, self.retry_in, self.attempt = state, detail, retry_in, attempt


class StreamNotice(Message):
    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice


class BatchLoaded(Message):
    def __init__(self, info: BatchInfo, stages: list[StageSnapshot]) -> None:
        super().__init__()
        self.info, self.stages = info, stages


class BatchesLoaded(Message):
    def __init__(self, batches: list[BatchInfo], next_token: str, error: str = "") -> None:
        super().__init__()
        self.batches, self.next_token, self.error = batches, next_token, error


class GpusLoaded(Message):
    def __init__(self, gpus: list[GpuInfo], error: str = "") -> None:
        super().__init__()
        self.gpus, self.error = gpus, error


class OpenBatch(Message):
    """Switch the dashboard to a batch (None: follow the newest); follow: keep following."""

    def __init__(self, batch_id: int | None, follow: bool = False) -> None:
        super().__init__()
        self.batch_id, self.follow = batch_id, follow


class ModelChanged(Message):
    """The dashboard's model changed (coalesced: at most a few per second)."""
