"""chrF (sacrebleu) between back-translations, and for translation quality."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence


@lru_cache(maxsize=1)
def _metric():
    from sacrebleu.metrics import CHRF

    return CHRF()


def chrf_signature() -> str:
    return str(_metric().get_signature())


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """chrF of one text against another, 0-100."""
    return float(_metric().sentence_score(hypothesis, [reference]).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF, 0-100 (for the back-translated questions against the English ones)."""
    return float(_metric().corpus_score(list(hypotheses), [list(references)]).score)
