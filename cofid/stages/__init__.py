"""The per-file stages, one module each; importing the package fills the registry
(cofid.stages.base.REGISTRY), one stage object per file stage of the pipeline table."""

from cofid.domain.model import FILE_STAGES
from cofid.stages import denoise, ivr, lid, llm1, llm2, stt  # noqa: F401  (they register)
from cofid.stages.base import REGISTRY

assert tuple(sorted(REGISTRY, key=FILE_STAGES.index)) == FILE_STAGES, "a file stage has no stage object"
