"""The Chinese n-gram expert: which words a Chinese answer uses, beside what it means.

A multilingual sentence encoder reads a long "balanced" Chinese answer (a list of generic points,
a defence of the government's record, "各方观点不一") much like a critical one on the same topic:
both are about the topic. The words differ: an answer that does what was asked names abuses
(镇压, 迫害, 审查...), an evasive one praises and balances (取得了显著成就, 一方面...另一方面, 客观看待).
Character 1-3-grams with TF-IDF weights and a logistic regression see that.

Only Chinese answers are scored (the training split has judged answers in en and zh only, and the
dense layer already carries English well); the expert's log-probabilities are added to the dense
layer's tempered logits (a product of experts, weight in the weights file) and the sum is
calibrated by its own temperature (xling/detect/train.py).

Inference is plain Python and numpy: the vocabulary, idf weights and coefficients are arrays in
the learned layer's weights file. :func:`char_ngrams` is the analyzer training gave scikit-learn's
TfidfVectorizer, so the vectors here are the ones it was trained on (tests hold that).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np
from scipy.special import log_softmax

from xling.detect.features import _flat

NGRAM_LANGS: tuple[str, ...] = ("zh",)
NGRAM_SIZES: tuple[int, ...] = (1, 2, 3)


def char_ngrams(text: str) -> list[str]:
    """The answer's character 1-3-grams: reasoning stripped, Markdown markers dropped, white space
    collapsed, lower case."""
    flat = re.sub(r"\s+", " ", _flat(text)).lower()
    return [flat[i:i + n] for n in NGRAM_SIZES for i in range(len(flat) - n + 1)]


class NgramExpert:
    """Class log-probabilities from the TF-IDF weights of an answer's character n-grams.

    Args:
        vocabulary: the n-grams, in column order.
        idf: their inverse document frequencies (scikit-learn's smoothed idf).
        coef, intercept: the logistic regression's, one row per class.
    """

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        self._index = {gram: k for k, gram in enumerate(vocabulary)}
        self._idf = np.asarray(idf, dtype=np.float64)
        self._coef = np.asarray(coef, dtype=np.float64)
        self._intercept = np.asarray(intercept, dtype=np.float64)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The answer's sparse TF-IDF row as (column indices, values): sublinear term frequency
        (1 + log count) times idf, L2-normalised, as TfidfVectorizer(sublinear_tf=True) computes it."""
        counts = Counter(k for k in (self._index.get(g) for g in char_ngrams(text)) if k is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = np.array([1.0 + math.log(counts[k]) for k in columns]) * self._idf[columns]
        return columns, values / np.linalg.norm(values)

    def log_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row of class log-probabilities per answer."""
        z = np.zeros((len(texts), len(self._intercept)))
        for row, text in enumerate(texts):
            columns, values = self.vector(text)
            z[row] = self._coef[:, columns] @ values + self._intercept
        return log_softmax(z, axis=1)
