"""Measured quality for tests and benchmarks: word error rate and per-class precision/recall.

Tests assert these numbers, not exact model output: a different CPU (AVX2 or AVX-512,
Intel or AMD) or thread count can change a word of Whisper's greedy decode ("Infosys" ->
"info is") without making the transcript worse.

Normalisation before scoring (`normalize_words`): lower case; punctuation dropped except
inside numbers; thousands separators removed ("1,500" -> "1500"); hyphens split words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_THOUSANDS = re.compile(r"(?<=\d)[,_](?=\d{3}\b)")
_NON_WORD = re.compile(r"[^\w\s.]|(?<!\d)\.|\.(?!\d)")


def normalize_words(text: str) -> list[str]:
    """`text` as the words a WER is computed on (see the module docstring)."""
    lowered = _THOUSANDS.sub("", text.lower()).replace("-", " ")
    return _NON_WORD.sub(" ", lowered).split()


def _edit_row(ref: Sequence[str], hyp: Sequence[str]) -> list[int]:
    """Last row of the Levenshtein table: row[j] = edits turning hyp into ref[:j]."""
    previous = list(range(len(ref) + 1))
    for i, word in enumerate(hyp, start=1):
        current = [i] + [0] * len(ref)
        for j, target in enumerate(ref, start=1):
            current[j] = min(
                previous[j] + 1,  # hyp word inserted
                current[j - 1] + 1,  # ref word deleted
                previous[j - 1] + (word != target),  # substituted (or equal)
            )
        previous = current
    return previous


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalisation."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return _edit_row(ref, hyp)[-1] / len(ref)


def prefix_word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of `hypothesis` against the best-matching *start* of `reference`.

    For a transcript of the first seconds of a call (the LID head): the reference is cut
    where the hypothesis fits it best, so the words not yet spoken do not count as deleted.
    """
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not hyp:
        return 1.0 if ref else 0.0
    row = _edit_row(ref, hyp)
    best = min(range(1, len(row)), key=lambda j: (row[j] / j, -j), default=0)
    return row[best] / best if best else 1.0


def confusion_matrix(
    pairs: Iterable[tuple[str, str]], classes: Sequence[str]
) -> dict[str, dict[str, int]]:
    """matrix[truth][predicted] counts over (truth, predicted) pairs."""
    matrix = {truth: {predicted: 0 for predicted in classes} for truth in classes}
    for truth, predicted in pairs:
        matrix.setdefault(truth, {p: 0 for p in classes}).setdefault(predicted, 0)
        matrix[truth][predicted] += 1
    return matrix


def precision_recall(matrix: dict[str, dict[str, int]]) -> dict[str, dict[str, float | None]]:
    """Per-class precision, recall and support from a confusion matrix (None: undefined)."""
    out: dict[str, dict[str, float | None]] = {}
    for cls in matrix:
        true_pos = matrix[cls].get(cls, 0)
        support = sum(matrix[cls].values())
        predicted = sum(row.get(cls, 0) for row in matrix.values())
        out[cls] = {
            "precision": round(true_pos / predicted, 4) if predicted else None,
            "recall": round(true_pos / support, 4) if support else None,
            "support": support,
        }
    return out
