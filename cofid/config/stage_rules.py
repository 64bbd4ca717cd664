"""The stage rules' tables of the configuration: [stages.triaging] (the trade-to-call rule)
and [stages.verdicts] (the trade verdict's rules), each with its measured effect beside it."""

from __future__ import annotations

from dataclasses import dataclass, field

from cofid.domain.verdict_fields import DEFAULT_LOT_SIZES, EXTRA_SYMBOL_ALIASES, VerdictRules

__all__ = ["TriagingConfig", "VerdictConfig"]


@dataclass(frozen=True)
class TriagingConfig:
    # The trade-to-call rule's parameters (cofid.domain.triaging, rules 2-7). Effects measured
    # by `python -m bench.triaging --seeds 1-20 --trades 5000` (pooled precision / recall; all
    # other parameters at these defaults; README "Trade-to-call mapping").
    # Before a call's start: 300 -> 0.9902 / 0.9943; 60 loses dialling trades (recall 0.990).
    margin_before_s: float = 300.0
    # After a call's end: 900 -> 0.9902 / 0.9943; 360 cuts app-trade false positives (0.209 ->
    # 0.155 of them) but misses late bookings.
    margin_after_s: float = 900.0
    # A call with neither end nor duration; 900 -> recall of such calls' trades 0.996 (0.992).
    assumed_duration_s: float = 600.0
    # Batch clock-offset estimate (rule 4); 0 turns it off: 0.972 / 0.976 (worst seed 0.94).
    max_clock_skew_s: float = 300.0
    # Trades inside calls needed before an estimated offset is applied.
    skew_min_trades: int = 30
    # Call that just ended vs the one about to start (rule 7): 1 (nearer edge) -> 0.982 /
    # 0.986; 4 -> 0.989 / 0.994; 10 -> 0.990 / 0.994; 1e6 (ended always) -> 0.989 / 0.993.
    before_start_weight: float = 10.0
    # A call without an end stops at the client's next call: off -> 0.9885 / 0.9927 against
    # 0.9894 / 0.9935 on (both at before_start_weight 4, as are the margin and duration figures).
    end_at_next_call: bool = True


@dataclass(frozen=True)
class VerdictConfig:
    # [stages.verdicts]: the trade verdict's rules (cofid.domain.verdict_fields F3-F4,
    # cofid.domain.verdicts); unset keys keep the defaults shown.
    # A heard limit price agrees within 0.5 % of the booked price...
    price_tolerance: float = 0.005
    # ...or one NSE equity tick (0.05), whichever is wider.
    tick: float = 0.05
    # Sentences after the order is stated in which the client's "yes" may come.
    confirm_window: int = 3
    # Extra names of a symbol, merged over the built-in table (INFY / Infosys, TCS / Tata
    # Consultancy ...): { "infosys technologies" = "INFY" }.
    symbol_aliases: dict[str, str] = field(default_factory=dict)
    # Shares per lot, merged over the built-in F&O lot sizes (NIFTY 75, INFY 400, ...):
    # a quantity said in lots is lots x this.
    lot_sizes: dict[str, int] = field(default_factory=dict)

    def rules(self) -> VerdictRules:
        """The rules these settings give; ValueError names a bad value."""
        return VerdictRules(
            price_tolerance=self.price_tolerance, tick=self.tick,
            confirm_window=self.confirm_window,
            symbol_aliases={**EXTRA_SYMBOL_ALIASES,
                            **{k: v.strip().upper() for k, v in self.symbol_aliases.items()}},
            lot_sizes={**DEFAULT_LOT_SIZES,
                       **{k.strip().upper(): v for k, v in self.lot_sizes.items()}},
        )
