"""The demo's sample batch (`cofid.demo.sample_batch`), re-exported for tests and benchmarks."""

from cofid.demo.sample_batch import (
    CALL_METADATA_CSV,
    TRADE_METADATA_CSV,
    dtmf_signal,
    ivr_prompt,
    make_sample_batch,
    silence,
    synthesize,
)

__all__ = ["CALL_METADATA_CSV", "TRADE_METADATA_CSV", "dtmf_signal", "ivr_prompt",
           "make_sample_batch", "silence", "synthesize"]
