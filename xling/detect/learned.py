"""The learned layer: calibrated probabilities of substantive / refusal / non_substantive.

Weights are a versioned data file (xling/data/classifier/learned-v<N>.npz, plain numpy arrays,
rebuilt by ``python -m xling.detect.train``); inference is numpy only. Features are described in
xling/detect/features.py, the Chinese n-gram expert in xling/detect/ngrams.py, and how the two are
fitted and combined in xling/detect/train.py.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Sequence

import numpy as np

from xling.detect.features import FeatureExtractor
from xling.detect.train import MODEL_VERSION, ngram_expert, probabilities
from xling.schema import Classification

if TYPE_CHECKING:
    from xling.compare.embed import Embedder

LAYER = "learned"
LEARNED_VERSION = f"learned-v{MODEL_VERSION}"


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
