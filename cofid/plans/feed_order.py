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

The slack is SLACK_SHARE of T: the part of the makespan spent to let long files run
late for a better mean; chains are estimated from file size (see chain_estimate).
"""

from __future__ import annotations

from collections.abc import Sequence

SLACK_SHARE = 0.005
# The fixed part of a chain in bytes of audio: in the cost model 5.1 GPU-s of fixed cost
# per file against 0.045 GPU-s per audio second, i.e. about 113 s of audio, which is
# 1.8 MB of 8 kHz 16-bit PCM. Without it a batch of many short calls would look cheap and
# its long calls would seem to need less work after them than they do.
FIXED_BYTES = 1_800_000


def chain_estimate(size: int) -> float:
    """A file's chain of GPU work, in bytes of audio (only ratios matter)."""
    return float(FIXED_BYTES + max(0, size))


def feed_order(
    files: Sequence[tuple[int, str]], total_slots: int, slack_share: float = SLACK_SHARE
) -> list[int]:
    """Indices of `files` ((size in bytes, name) each) in feed order."""
    m = max(1, total_slots)
    costs = [chain_estimate(s) for s, _n in files]
    # Ascending by (cost, name): equal sizes keep name order in the result.
    asc = sorted(range(len(files)), key=lambda i: (costs[i], files[i][1]))
    slack = slack_share * sum(costs) / m
    back: list[int] = []  # built from the back
    allowed: list[int] = []  # a stack: files allowed at the back, largest on top
    nxt = 0  # asc[nxt:] are not yet allowed
    after = 0.0  # work placed behind the next position
    while len(back) < len(files):
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
