"""hand_on: a value a channel can take now goes at once, without a schedule point; one it
cannot take waits as MemorySendChannel.send does."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from cofid.engine.channels import hand_on


async def test_a_channel_with_room_takes_the_value_without_a_schedule_point() -> None:
    send, receive = trio.open_memory_channel[int](2)
    ran: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _note(ran))
        await hand_on(send, 1)
        await hand_on(send, 2)
        # Neither hand-off let the other task run: no checkpoint happened.
        assert ran == []
    assert ran == ["ran"]
    assert [receive.receive_nowait(), receive.receive_nowait()] == [1, 2]


async def test_a_waiting_receiver_takes_it_at_once_from_an_unbuffered_channel() -> None:
    send, receive = trio.open_memory_channel[str](0)
    got: list[str] = []

    async def take() -> None:
        got.append(await receive.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        await hand_on(send, "x")
    assert got == ["x"]


async def test_a_full_channel_makes_it_wait_until_there_is_room(autojump_clock) -> None:
    send, receive = trio.open_memory_channel[int](1)
    await hand_on(send, 1)
    done: list[float] = []

    async def second() -> None:
        await hand_on(send, 2)
        done.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.sleep(5)
        assert done == []  # still waiting: the buffer is full
        assert receive.receive_nowait() == 1
    assert done and done[0] >= 5
    assert receive.receive_nowait() == 2


async def test_a_closed_channel_raises_as_send_does() -> None:
    send, receive = trio.open_memory_channel[int](1)
    await receive.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await hand_on(send, 1)
    await send.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await hand_on(send, 1)


async def _note(ran: list[str]) -> None:
    ran.append("ran")
