"""freeze_startup_heap: what exists when the daemon starts leaves the collector's passes;
garbage made afterwards is still collected."""

from __future__ import annotations

import gc
import weakref

from cofid.service.app import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_the_startup_heap_is_frozen_and_later_garbage_still_collected() -> None:
    try:
        before = _Node()
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        later = _Node()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None  # made after the freeze: collected as before
        assert gc.get_freeze_count() == frozen  # a full pass does not touch the frozen
        assert before.me is before
    finally:
        gc.unfreeze()
