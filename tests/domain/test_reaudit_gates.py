"""cofid.domain.reaudit rules 10–11 for every choice of stages and every kind of call."""

from __future__ import annotations

from itertools import combinations

import pytest

from cofid.domain.reaudit import left_alone_reason, plan_reaudit

ORDER = ("lid", "stt", "llm1", "llm2")
SUBSETS = [c for n in range(1, 5) for c in combinations(ORDER, n)]
GATE = "the STT gate closed this call (no transcript); choose stt to pass it through the gate again"
NEVER_STT = "never transcribed (stt has not run for it); choose stt too"
NEVER_LID = "language never identified (lid has not run for it); choose lid too"

# status, lid_done, stt_done: the calls a batch leaves behind
CALLS = {
    "complete": ("Complete", True, True),
    "short": ("ShortCall", True, False),
    "unsupported": ("UnsupportedLanguage", True, False),
    "failed_before_lid": ("Failed", False, False),
    "failed_at_stt": ("Failed", True, False),
    "pending": ("Pending", False, False),
}


def expected(call: str, stages: tuple[str, ...]) -> str | None:
    status, lid_done, stt_done = CALLS[call]
    if status in ("ShortCall", "UnsupportedLanguage") and "stt" not in stages:
        return f"{status}: {GATE}"
    if (
        not stt_done
        and status not in ("ShortCall", "UnsupportedLanguage")
        and ("stt" not in stages and {"llm1", "llm2"} & set(stages))
    ):
        return NEVER_STT
    if not lid_done and "stt" in stages and "lid" not in stages:
        return NEVER_LID
    return None


@pytest.mark.parametrize("stages", SUBSETS, ids=lambda s: "+".join(s))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_left_alone_reason(call: str, stages: tuple[str, ...]) -> None:
    status, lid_done, stt_done = CALLS[call]
    got = left_alone_reason(plan_reaudit(stages), status, lid_done=lid_done, stt_done=stt_done)
    assert got == expected(call, stages)


def test_the_rules_spelled_out() -> None:
    """The cases of issue 15.9, without the table above."""
    short = ("ShortCall", True, False)
    assert (
        left_alone_reason(plan_reaudit(["llm2"]), short[0], lid_done=True, stt_done=False)
        == f"ShortCall: {GATE}"
    )
    assert (
        left_alone_reason(plan_reaudit(["lid"]), short[0], lid_done=True, stt_done=False)
        == f"ShortCall: {GATE}"
    )
    assert (
        left_alone_reason(plan_reaudit(["stt", "llm2"]), short[0], lid_done=True, stt_done=False)
        is None
    )
    assert (
        left_alone_reason(plan_reaudit(["llm1"]), "Complete", lid_done=True, stt_done=True) is None
    )
    assert (
        left_alone_reason(plan_reaudit(["lid"]), "Pending", lid_done=False, stt_done=False) is None
    )
