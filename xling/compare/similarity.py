"""How alike a question's answers are across languages, and how alike they must be to count as alike.

Three scores per question, model and language pair, each averaged over sample pairs:
  - ``sim_translated``: cosine of the English back-translations (all-MiniLM-L6-v2);
  - ``sim_original``: cosine of the original texts (multilingual USE), which does not depend on
    the back-translation, so a bad translation can be told from a real difference;
  - ``chrf``: chrF of the back-translations (sacrebleu), symmetric average.

"These answers differ" is calibrated per model, not guessed: a model's answers to the same
question in the same language, sampled again, are as different as its answers can be for no
reason but sampling. A cross-language pair less similar than nearly all of those (the 10th
percentile) differs for a reason.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from xling.compare.chrf import sentence_chrf

# Below this many within-language pairs (e.g. --samples 1) the percentile is not trustworthy
# and calibration falls back to an outlier rule over the cross-language scores.
MIN_WITHIN_PAIRS = 8
QUANTILE = 0.10
DEGENERATE = 0.98


@dataclass(frozen=True)
class Answer:
    """What the comparison needs of one record."""

    model: str
    prompt_id: str
    lang: str
    sample: int
    original: str
    translated: str


@dataclass(frozen=True)
class PairScore:
    model: str
    prompt_id: str
    langs: tuple[str, str]
    sim_translated: float
    sim_original: float
    chrf: float

    def to_dict(self) -> dict:
        return {"model": self.model, "prompt_id": self.prompt_id, "langs": list(self.langs),
                "sim_translated": round(self.sim_translated, 4), "sim_original": round(self.sim_original, 4),
                "chrf": round(self.chrf, 2)}


@dataclass(frozen=True)
class Threshold:
    value: float
    method: str
    n_pairs: int

    def to_dict(self) -> dict:
        return {"semantic": round(self.value, 4), "method": self.method, "n_pairs": self.n_pairs}


def score_pairs(answers: Sequence[Answer], translated_vectors: np.ndarray, original_vectors: np.ndarray,
                langs: Sequence[str]) -> tuple[list[PairScore], dict[str, list[float]]]:
    """Cross-language scores per (model, question, language pair), and within-language
    similarities per model (for calibration)."""
    groups: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, answer in enumerate(answers):
        groups[(answer.model, answer.prompt_id)][answer.lang].append(index)
    pairs: list[PairScore] = []
    within: dict[str, list[float]] = defaultdict(list)
    for (model, prompt_id), by_lang in groups.items():
        for lang in by_lang:
            for i, j in itertools.combinations(by_lang[lang], 2):
                within[model].append(float(translated_vectors[i] @ translated_vectors[j]))
        for a, b in itertools.combinations([lang for lang in langs if lang in by_lang], 2):
            cross = list(itertools.product(by_lang[a], by_lang[b]))
            pairs.append(PairScore(
                model, prompt_id, (a, b),
                sim_translated=float(np.mean([translated_vectors[i] @ translated_vectors[j] for i, j in cross])),
                sim_original=float(np.mean([original_vectors[i] @ original_vectors[j] for i, j in cross])),
                chrf=float(np.mean([(sentence_chrf(answers[i].translated, answers[j].translated)
                                     + sentence_chrf(answers[j].translated, answers[i].translated)) / 2
                                    for i, j in cross])),
            ))
    return pairs, dict(within)


def calibrate(within: Sequence[float], cross: Sequence[float]) -> Threshold:
    """The similarity below which two languages' answers to a question count as different."""
    # Greedy decoding (or a deterministic backend) gives identical re-rolls: their spread says
    # nothing about how much answers vary, so such runs use the cross-language rule instead.
    degenerate = len(within) >= MIN_WITHIN_PAIRS and float(np.quantile(within, QUANTILE)) > DEGENERATE
    if len(within) >= MIN_WITHIN_PAIRS and not degenerate:
        return Threshold(float(np.quantile(within, QUANTILE)),
                         f"p{int(QUANTILE * 100)} of within-language sample similarity", len(within))
    if len(cross) >= 3:
        median = statistics.median(cross)
        mad = statistics.median(abs(x - median) for x in cross) * 1.4826
        why = ("re-rolls are identical (temperature 0?)" if degenerate else
               f"fewer than {MIN_WITHIN_PAIRS} within-language pairs: use --samples 2 or more")
        return Threshold(median - 2 * mad, f"median - 2 MAD of cross-language similarity ({why})", len(cross))
    return Threshold(float("-inf"), "none (too few answers to calibrate)", len(cross))
