"""The feed order (cofid.plans.feed_order): latest start times met, shortest first
otherwise, and the makespan bound list scheduling then guarantees."""

from __future__ import annotations

import heapq
import random

from cofid.plans.batch import distribution_order
from cofid.plans.feed_order import FIXED_BYTES, SLACK_SHARE, chain_estimate, feed_order


def _files(sizes: list[int]) -> list[tuple[int, str]]:
    return [(s, f"c{i:04d}.wav") for i, s in enumerate(sizes)]


def _list_schedule(costs: list[float], slots: int) -> float:
    """Each file in turn takes the slot that frees first; the makespan."""
    free = [0.0] * slots
    end = 0.0
    for c in costs:
        t = heapq.heappop(free) + c
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def test_one_slot_is_shortest_first_with_ties_by_name():
    files = [(300, "b.wav"), (100, "z.wav"), (300, "a.wav"), (200, "m.wav")]
    assert [files[i][1] for i in feed_order(files, 1)] == ["z.wav", "m.wav", "a.wav", "b.wav"]


def test_equal_sizes_keep_name_order_on_many_slots():
    files = [(1000, n) for n in ("d.wav", "a.wav", "c.wav", "b.wav")]
    assert [files[i][1] for i in feed_order(files, 8)] == ["a.wav", "b.wav", "c.wav", "d.wav"]


def test_a_long_call_is_fed_by_its_latest_start_and_the_rest_shortest_first():
    # 999 calls of 1..5 minutes and one 3-hour call: fed last (shortest first) it would end
    # the batch almost its whole chain after the others.
    rng = random.Random(5)
    sizes = [16000 * rng.randint(60, 300) for _ in range(999)] + [16000 * 10800]
    order = feed_order(_files(sizes), 8)
    at = order.index(999)
    costs = [chain_estimate(s) for s in sizes]
    before = sum(costs[i] for i in order[:at])
    bound = sum(costs) / 8
    assert before / 8 <= bound - costs[999] + SLACK_SHARE * bound  # its latest start
    assert at < len(order) - 1
    others = [sizes[i] for i in order if i != 999]
    assert others[:at] == sorted(others[:at])  # shortest first before it


def test_every_file_meets_its_latest_start_and_the_makespan_bound_holds():
    rng = random.Random(11)
    for slots in (2, 8, 32):
        sizes = [int(16000 * min(10800.0, rng.lognormvariate(4.5, 1.0))) for _ in range(2000)]
        order = feed_order(_files(sizes), slots)
        assert sorted(order) == list(range(len(sizes)))
        costs = [chain_estimate(sizes[i]) for i in order]
        total = sum(costs)
        bound = total / slots
        slack = SLACK_SHARE * bound
        after = total
        late = 0.0  # the largest file placed where it cannot end by T + slack
        for k, c in enumerate(costs):
            after -= c
            # Its latest start time (T - c) is met; or no file at all could end there in
            # time, and then it is one of the shortest left (none before it is shorter).
            if (slots - 1) * c > after + slots * slack + 1e-6:
                assert c <= min(costs[:k], default=c)
                late = max(late, c)
        # Graham: start <= work before / slots, so every file ends by T + slack (or, for
        # those short files at the very end, by T + their own chain).
        assert _list_schedule(costs, slots) <= bound + max(slack, late) + 1e-6
        assert late <= min(costs) * 1.5
        assert max(costs) <= bound  # (the instance is one where the bound is total / slots)


def test_shortest_first_would_miss_the_bound_the_order_meets():
    rng = random.Random(3)
    sizes = [int(16000 * min(10800.0, rng.lognormvariate(4.5, 1.0))) for _ in range(500)]
    sizes.append(16000 * 10800)
    slots = 8
    spt = sorted(chain_estimate(s) for s in sizes)
    bound = sum(spt) / slots
    assert _list_schedule(spt, slots) > bound * (1 + 2 * SLACK_SHARE)
    ours = [chain_estimate(sizes[i]) for i in feed_order(_files(sizes), slots)]
    assert _list_schedule(ours, slots) <= bound * (1 + SLACK_SHARE) + 1e-6


def test_distribution_order_reads_sizes_from_disk(tmp_path):
    sizes = {"a.wav": 5 * FIXED_BYTES, "b.wav": 10, "c.wav": 20, "d.wav": 20}
    paths = []
    for name, size in sizes.items():
        p = tmp_path / name
        with open(p, "wb") as f:
            f.truncate(size)
        paths.append(p)
    # Two slots: a.wav's chain is over half the work, so it starts first. Nothing can end
    # with it, so the very last place goes to the shortest (b.wav ends soonest after the
    # rest); c.wav and d.wav are equal and keep name order.
    assert [p.name for p in distribution_order(paths, 2)] == ["a.wav", "c.wav", "d.wav", "b.wav"]
