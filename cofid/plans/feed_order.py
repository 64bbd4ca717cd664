"""The order a batch's files are fed to the engine: by latest start time, shortest first.

The cost model (bench.workload): a file's chain of GPU stages costs about a fixed part
(model calls that do not depend on the audio: LID, two LLM calls) plus a part per second
of audio; the engine feeds files in this order, and a free slot takes the next one (later
stages first, so a started file runs its chain through). That is list scheduling of
chains c_k on m slots, where file k starts no later than the work fed before it over the
slots: start_k <= W_before(k) / m (Graham). So it ends no later than

    W_before(k) / m + c_k  =  T + ((m - 1) c_k - W_after(k)) / m,      T = W / m,

with T = total work / slots, the bound no schedule beats. Every file ends by T + slack
exactly when (m - 1) c_k <= W_after(k) + m * slack: a file must be followed by enough
work to keep the other m - 1 slots busy while it runs — its latest start is T - c_k.

Shortest first minimizes the mean completion time; among the orders that meet every
latest start, the best for the mean is built from the back (Smith's rule with
deadlines): the file fed last is the longest one allowed there, then the longest allowed
before it, and so on. Long chains end up at the front, longest first (they are allowed
nowhere else), short ones keep their shortest-first order, and the tail is made of files
short enough to end within the slack. When no file is allowed (only at the very back with
no slack) the shortest goes there.

The slack is a share of T: the part of the makespan spent to let long files run late for
a better mean; chains are estimated from file size (see chain_estimate). The share is
chosen per batch, from SLACK_SHARES, as the one whose order scores best in Graham's own
model (list scheduling of the estimated chains on m slots): mean completion + makespan,
so a second of the makespan weighs as much as a second of the mean. The gain depends on
how coarse the batch is. When the longest chains are a large part of T (1,000 calls on 32
slots: T about 5 minutes, a long call's chain longer than that), holding them to the 0.5 %
floor keeps a mean ~9 % above shortest-first's, and a few percent of slack buys most of
that back; when every chain is small beside T (10,000 calls on 8 slots), Smith's order
already has shortest-first's mean at the floor and more slack would only cost makespan
(bench.schedule over seeds 1-50 shows both). Over the candidates the score falls and
then rises (so on every workload of the benchmark), so they are tried in order until it
rises: a 10,000-file batch is ordered twice, not nine times.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

SLACK_SHARE = 0.005  # the floor: the least slack an order is allowed
SLACK_SHARES = (SLACK_SHARE, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06)
# The fixed part of a chain in bytes of audio: in the cost model 5.1 GPU-s of fixed cost
# per file against 0.045 GPU-s per audio second, i.e. about 113 s of audio, which is
# 1.8 MB of 8 kHz 16-bit PCM. Without it a batch of many short calls would look cheap and
# its long calls would seem to need less work after them than they do.
FIXED_BYTES = 1_800_000


def chain_estimate(size: int) -> float:
    """A file's chain of GPU work, in bytes of audio (only ratios matter)."""
    return float(FIXED_BYTES + max(0, size))


def feed_order(
    files: Sequence[tuple[int, str]], total_slots: int, slack_share: float | None = None
) -> list[int]:
    """Indices of `files` ((size in bytes, name) each) in feed order; the slack share is
    chosen from SLACK_SHARES (the module doc) unless given."""
    return feed_plan(files, total_slots, slack_share)[0]


def feed_plan(
    files: Sequence[tuple[int, str]], total_slots: int, slack_share: float | None = None
) -> tuple[list[int], float]:
    """The feed order and the slack share it was built with."""
    m = max(1, total_slots)
    costs = [chain_estimate(s) for s, _n in files]
    # Ascending by (cost, name): equal sizes keep name order in the result.
    asc = sorted(range(len(files)), key=lambda i: (costs[i], files[i][1]))
    if slack_share is not None:
        return _smith(costs, asc, m, slack_share), slack_share
    best: tuple[float, list[int], float] | None = None
    for share in SLACK_SHARES:
        order = _smith(costs, asc, m, share)
        score = list_schedule_score(order, costs, m)
        if best is not None and score >= best[0]:
            break
        best = (score, order, share)
    assert best is not None
    return best[1], best[2]


def list_schedule_score(order: Sequence[int], costs: Sequence[float], slots: int) -> float:
    """Mean completion + makespan when each chain in `order` takes the slot that frees
    first (Graham's list scheduling of the estimates, every chain as one unit)."""
    if not order:
        return 0.0
    free = [0.0] * slots
    total = end = 0.0
    for i in order:
        t = heapq.heappop(free) + costs[i]
        total += t
        end = max(end, t)
        heapq.heappush(free, t)
    return total / len(order) + end


def _smith(costs: Sequence[float], asc: Sequence[int], m: int, slack_share: float) -> list[int]:
    """The order built from the back (module doc) for a slack of `slack_share` of T."""
    slack = slack_share * sum(costs) / m
    back: list[int] = []  # built from the back
    allowed: list[int] = []  # a stack: files allowed at the back, largest on top
    nxt = 0  # asc[nxt:] are not yet allowed
    after = 0.0  # work placed behind the next position
    while len(back) < len(costs):
        limit = after + m * slack
        while nxt < len(asc) and (m - 1) * costs[asc[nxt]] <= limit:
            allowed.append(asc[nxt])
            nxt += 1
        if not allowed:  # none may go here: the shortest is the least late (all of
            # its size: the last name goes last, so equal sizes keep name order)
            c = costs[asc[nxt]]
            while nxt < len(asc) and costs[asc[nxt]] == c:
                allowed.append(asc[nxt])
                nxt += 1
        i = allowed.pop()
        back.append(i)
        after += costs[i]
    back.reverse()
    return back
