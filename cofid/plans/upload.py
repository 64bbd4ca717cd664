"""The upload plan: files a client uploaded → the seed's upload pipeline.

An upload is a batch of its own (source "upload", a new number for today) that skips
the CSV steps, triaging, denoise and IVR: distribution, then LID, STT and, as configured
([pipelines.upload]), LLM1 and LLM2. Its distribution runs in one transaction with the
task row (cofid.service.uploads), so an upload is registered fully or not at all.
"""

from __future__ import annotations

from pathlib import Path

from cofid.plans.batch import BatchInput


def upload_pipeline(llm1: bool, llm2: bool) -> dict[str, bool]:
    """The optional stages an upload runs, frozen in batchStatus.pipeline."""
    return {"llm1": llm1, "llm2": llm2}


def upload_input(stored: list[Path], process_id: int, category_mapping_id: int) -> BatchInput:
    """The stored files as the batch plan's input (no CSVs, no manifest)."""
    return BatchInput(stored[0].parent, list(stored), process_id, category_mapping_id)
