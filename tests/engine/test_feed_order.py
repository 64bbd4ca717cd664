"""The feed order (cofid.plans.feed_order): latest start times met, shortest first
otherwise, the makespan bound list scheduling then guarantees, and the slack share
chosen per batch by the list-scheduling score (mean completion + makespan)."""

from __future__ import annotations

import heapq
import random

from cofid.plans.batch import distribution_order
from cofid.plans.feed_order import (
    FIXED_BYTES,
    SLACK_SHARE,
    SLACK_SHARES,
    chain_estimate,
    feed_order,
    feed_plan,
    list_schedule_score,
)


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
    order, share = feed_plan(_files(sizes), 8)
    at = order.index(999)
    costs = [chain_estimate(s) for s in sizes]
    before = sum(costs[i] for i in order[:at])
    bound = sum(costs) / 8
    assert before / 8 <= bound - costs[999] + share * bound  # its latest start
    assert at < len(order) - 1
    others = [sizes[i] for i in order if i != 999]
    assert others[:at] == sorted(others[:at])  # shortest first before it


def test_every_file_meets_its_latest_start_and_the_makespan_bound_holds():
    rng = random.Random(11)
    for slots, given in ((2, None), (8, None), (32, None), (32, SLACK_SHARE), (32, 0.05)):
        sizes = [int(16000 * min(10800.0, rng.lognormvariate(4.5, 1.0))) for _ in range(2000)]
        order, share = feed_plan(_files(sizes), slots, given)
        assert share == given or (given is None and share in SLACK_SHARES)
        assert sorted(order) == list(range(len(sizes)))
        costs = [chain_estimate(sizes[i]) for i in order]
        total = sum(costs)
        bound = total / slots
        slack = share * bound
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
    order, share = feed_plan(_files(sizes), slots)
    ours = [chain_estimate(sizes[i]) for i in order]
    assert _list_schedule(ours, slots) <= bound * (1 + share) + 1e-6


def _calls(n: int, seed: int) -> list[int]:
    """Sizes of n calls: a tenth under 5 s, the rest lognormal around 2 minutes, capped at
    3 hours (bench.workload's mix)."""
    rng = random.Random(seed)
    secs = [rng.uniform(0.5, 4.9) if rng.random() < 0.1 else min(10800.0, rng.lognormvariate(4.8, 1.1))
            for _ in range(n)]
    return [44 + int(16000 * s) for s in secs]


def _scores(sizes: list[int], slots: int, share: float) -> tuple[float, float]:
    """(mean completion, makespan) of the order built with `share`, list-scheduled."""
    order = feed_order(_files(sizes), slots, share)
    costs = [chain_estimate(s) for s in sizes]
    free = [0.0] * slots
    ends = []
    for i in order:
        t = heapq.heappop(free) + costs[i]
        ends.append(t)
        heapq.heappush(free, t)
    return sum(ends) / len(ends), max(ends)


def test_a_coarse_batch_spends_slack_on_its_mean_and_a_fine_one_keeps_the_floor():
    # 1,000 calls on 32 slots: the longest chains are a large part of T, and a few percent
    # of makespan buys a clearly better mean. 10,000 calls on 8 slots: every chain is
    # small beside T, more slack would only cost makespan.
    for seed in (11, 29, 46):
        sizes = _calls(1000, seed)
        _order, share = feed_plan(_files(sizes), 32)
        assert share > SLACK_SHARE
        floor_mean, floor_end = _scores(sizes, 32, SLACK_SHARE)
        mean, end = _scores(sizes, 32, share)
        assert mean < floor_mean * 0.97
        assert mean + end < floor_mean + floor_end
        bound = sum(chain_estimate(s) for s in sizes) / 32
        assert end <= bound * (1 + share) + max(chain_estimate(s) for s in sizes) * 0.01
    for seed in (3, 23):
        assert feed_plan(_files(_calls(10_000, seed)), 8)[1] == SLACK_SHARE


def test_the_chosen_share_scores_best_up_to_where_the_score_rises():
    rng = random.Random(7)
    for n, slots in ((300, 16), (1000, 32), (2000, 4)):
        files = _files(_calls(n, rng.randint(1, 10_000)))
        order, share = feed_plan(files, slots)
        costs = [chain_estimate(s) for s, _ in files]
        scores = [list_schedule_score(feed_order(files, slots, s), costs, slots)
                  for s in SLACK_SHARES]
        k = SLACK_SHARES.index(share)
        assert scores[k] == list_schedule_score(order, costs, slots)
        assert all(scores[i] > scores[i + 1] for i in range(k))  # it fell all the way here
        assert k == len(SLACK_SHARES) - 1 or scores[k + 1] >= scores[k]  # and rose next


def test_no_files_and_one_file():
    assert feed_plan([], 8) == ([], SLACK_SHARE)
    assert feed_order([(100, "a.wav")], 8) == [0]


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
