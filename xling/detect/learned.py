"""The learned layer: calibrated probabilities of substantive / refusal / non_substantive.

Weights are a versioned data file (xling/data/classifier/learned-v<N>.npz, plain numpy arrays,
rebuilt by ``python -m xling.detect.train``); inference, here, needs numpy and scipy, no
scikit-learn and no pickle. Features are described in xling/detect/features.py, the Chinese n-gram
expert in xling/detect/ngrams.py, and how the layers are fitted in xling/detect/train.py.

How the stored layers combine (:func:`probabilities`): the passage layer scores each window of an
answer and :func:`passage_summary` sums its margins up per answer; the dense layer of the answer's
language (or the shared one) reads the answer's row with that summary (:func:`dense_logits`); the
n-gram expert's log-probabilities are added for Chinese answers (:func:`combined_logits`); two
temperatures calibrate the result.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Sequence

import numpy as np

from xling.detect.features import AnswerFeatures, FeatureExtractor
from xling.detect.ngrams import NGRAM_LANGS, NgramExpert
from xling.schema import Classification

if TYPE_CHECKING:
    from xling.compare.embed import Embedder

LAYER = "learned"
MODEL_VERSION = 7
LEARNED_VERSION = f"learned-v{MODEL_VERSION}"

# The passage layer (learned-v6): a logistic regression of the same form over every window of an
# answer on its own (xling/detect/features.py, passage rows), with the answer's label; what the
# dense layers read of it is, per answer, PASSAGE_SUMMARY of its windows' margins (a class's logit
# minus the log-sum-exp of the others). The dense layers are fitted on these summaries out of fold
# (stacking), so they learn how far to trust a passage layer that has not seen the answer. A long
# evasion that gives itself away in one paragraph is no longer averaged away: out of fold by model
# on the training split (nested), the asymmetry flags went from 0.76 / 0.70 to 0.76 / 0.73, cut
# English China agreement from 0.89 to 0.91, the English per-model gap from 3.7 to 3.4 (README).
PASSAGE_SUMMARY = ("substantive_min", "substantive_mean", "refusal_max", "refusal_mean",
                   "non_substantive_max", "non_substantive_mean")


def logits(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return ((x - params["mean"]) / params["scale"]) @ params["coef"].T + params["intercept"]


def stored_layer(params: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """A linear layer stored under ``<prefix>_`` keys: a language with its own dense layer (the file's
    ``own_langs``), or "passage"."""
    return {key: params[f"{prefix}_{key}"] for key in ("mean", "scale", "coef", "intercept")}


def in_lang(langs: Sequence[str], lang: str) -> np.ndarray:
    """Which rows are in language ``lang``."""
    return np.array([r == lang for r in langs], dtype=bool)


def dense_logits(params: dict[str, np.ndarray], x: np.ndarray, langs: Sequence[str]) -> np.ndarray:
    """Each row's logits from its language's own dense layer if it has one, else the shared one."""
    z = logits(params, x)
    for lang in params["own_langs"]:
        rows = in_lang(langs, str(lang))
        if rows.any():
            z[rows] = logits(stored_layer(params, str(lang)), x[rows])
    return z


def passage_summary(layer: dict[str, np.ndarray], inputs: AnswerFeatures) -> np.ndarray:
    """Per answer, PASSAGE_SUMMARY of its windows' margins under the passage layer ``layer`` (zeros
    for an answer with no window)."""
    from scipy.special import logsumexp

    n, z = len(inputs), logits(layer, inputs.passages)
    margins = np.stack([z[:, k] - logsumexp(np.delete(z, k, axis=1), axis=1) for k in range(z.shape[1])], axis=1)
    count = np.bincount(inputs.owner, minlength=n)
    total = np.zeros((n, z.shape[1]))
    np.add.at(total, inputs.owner, margins)
    mean = total / np.maximum(count, 1)[:, None]
    low, high = np.full(n, np.inf), np.full((n, z.shape[1]), -np.inf)
    np.minimum.at(low, inputs.owner, margins[:, 0])
    np.maximum.at(high, inputs.owner, margins)
    out = np.stack([low, mean[:, 0], high[:, 1], mean[:, 1], high[:, 2], mean[:, 2]], axis=1)
    out[count == 0] = 0.0
    return out


def dense_inputs(params: dict[str, np.ndarray], inputs: AnswerFeatures) -> np.ndarray:
    """The dense layers' input rows: the answer rows and their passage summaries."""
    return np.hstack([inputs.x, passage_summary(stored_layer(params, "passage"), inputs)])


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits."""
    from scipy.special import softmax as row_softmax

    return row_softmax(z, axis=1)


def ngram_expert(params: dict[str, np.ndarray]) -> NgramExpert:
    return NgramExpert([str(g) for g in params["ngram_vocabulary"]], params["ngram_idf"], params["ngram_coef"],
                       params["ngram_intercept"])


def ngram_rows(langs: Sequence[str]) -> np.ndarray:
    """Which rows the n-gram expert scores (their language is in NGRAM_LANGS)."""
    return np.array([lang in NGRAM_LANGS for lang in langs], dtype=bool)


def combined_logits(params: dict[str, np.ndarray], dense: np.ndarray, ngram_logp: np.ndarray,
                    scored: np.ndarray) -> np.ndarray:
    """The dense layer's logits over its temperature, plus, on the ``scored`` rows, the n-gram
    expert's weighted log-probabilities and the offset; the final temperature is still to apply."""
    z = dense / float(params["temperature"])
    z[scored] += float(params["ngram_weight"]) * ngram_logp[scored] + params["ngram_offset"]
    return z


def probabilities(params: dict[str, np.ndarray], inputs: AnswerFeatures, texts: Sequence[str],
                  langs: Sequence[str], expert: NgramExpert | None = None) -> np.ndarray:
    """Calibrated class probabilities of answers from their features and their texts."""
    scored = ngram_rows(langs)
    logp = np.zeros((len(texts), len(params["classes"])))
    if scored.any():
        expert = expert or ngram_expert(params)
        logp[scored] = expert.log_probabilities([t for t, s in zip(texts, scored) if s])
    z = combined_logits(params, dense_logits(params, dense_inputs(params, inputs), langs), logp, scored)
    return softmax(z / float(params["combined_temperature"]))


class WeightsError(ValueError):
    """The weights file is missing or unreadable."""


@lru_cache(maxsize=None)
def load_weights(version: int = MODEL_VERSION) -> dict[str, np.ndarray]:
    name = f"learned-v{version}.npz"
    try:
        with (resources.files("xling") / "data" / "classifier" / name).open("rb") as handle:
            with np.load(handle, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files}
    except (FileNotFoundError, OSError, ValueError) as err:
        raise WeightsError(f"xling/data/classifier/{name}: {err}. Fix: reinstall xling or run "
                           f"python -m xling.detect.train") from None


class LearnedLayer:
    """Calibrated class probabilities for answers, given the questions they answer.

    Args:
        embedder: the encoder for features (default USE, as in training; another one only for tests).
        weights: default the shipped file.
    """

    def __init__(self, embedder: Embedder | None = None, weights: dict[str, np.ndarray] | None = None,
                 disk_cache: bool = True) -> None:
        self._weights = weights if weights is not None else load_weights()
        self.classes: tuple[str, ...] = tuple(str(c) for c in self._weights["classes"])
        self._extractor = FeatureExtractor(embedder, disk_cache=disk_cache)
        self._ngrams = ngram_expert(self._weights)

    def probabilities(self, texts: Sequence[str], langs: Sequence[str],
                      questions: Sequence[str], verdicts: Sequence[Classification] | None = None) -> np.ndarray:
        """One row per answer, columns in ``classes`` order; rows sum to 1."""
        if not texts:
            return np.zeros((0, len(self.classes)))
        inputs = self._extractor.features(texts, langs, questions, verdicts)
        return probabilities(self._weights, inputs, texts, langs, self._ngrams)


@lru_cache(maxsize=1)
def default_learned_layer() -> LearnedLayer:
    return LearnedLayer()
