"""The analysis of stored answers, cached in the run's store beside the answers.

Language detection, labels and embeddings are pure functions of an answer's text (and the
stage's version), so a re-run of a finished run reads them back instead of loading the
classifier and embedders again. Each stage is keyed by its ``name``, which carries its version:
a changed classifier or embedder has a new name and computes afresh.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from xling.schema import Classification, Label
from xling.store import Store


def _cached(store: Store, stage: str, inputs: Sequence[str], compute: Callable[[list[str]], list[bytes | str]],
            batch: int = 0, progress: Callable[[int, int], None] | None = None) -> list:
    """Each input's cached value, computing and storing the missing ones ``batch`` at a time (all in
    one call when 0): each batch is committed, so a run killed while labelling thousands of answers
    keeps what it finished. ``progress(done, total)`` hears after each batch."""
    found = store.get_analysis(stage, inputs)
    unique = list(dict.fromkeys(inputs))
    todo = [text for text in unique if text not in found]
    step = batch or max(len(todo), 1)
    for start in range(0, len(todo), step):
        part = todo[start:start + step]
        fresh = compute(part)
        store.put_analysis(stage, zip(part, fresh))
        found.update(zip(part, fresh))
        if progress:
            progress(len(unique) - len(todo) + start + len(part), len(unique))
    return [found[text] for text in inputs]


def _source_version(module) -> str:
    # Rules-based stages carry no version constant; a hash of their source is one.
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:12]


def cached_languages(store: Store, texts: Sequence[str]) -> list[str]:
    from xling.detect import langid

    stage = f"langid@{_source_version(langid)}"
    values = _cached(store, stage, list(texts), lambda todo: [langid.detect_language(t) for t in todo])
    return [v.decode() if isinstance(v, bytes) else v for v in values]


# Answers labelled per call: large enough that the learned layer embeds in big batches, small
# enough that a long replay shows progress and a killed run keeps most of its labels.
CLASSIFY_BATCH = 256
EMBED_BATCH = 2048  # sentences are short: the encoders' own batches stay full


def cached_classify(store: Store, name: str, texts: Sequence[str], langs: Sequence[str], questions: Sequence[str],
                    classify: Callable[..., list[Classification]],
                    progress: Callable[[int, int], None] | None = None) -> list[Classification]:
    """``classify(texts, langs, questions=...)`` through the cache; ``name`` is the classifier's, with
    its versions and its rules' (xling.detect.classify.signed_classifier_name). The question is part
    of the key: the learned layer reads the answer against it."""
    inputs = [json.dumps([lang, text, question], ensure_ascii=False)
              for text, lang, question in zip(texts, langs, questions)]

    def compute(todo: list[str]) -> list[str]:
        triples = [json.loads(item) for item in todo]
        verdicts = classify([text for _, text, _ in triples], [lang for lang, _, _ in triples],
                            questions=[question for _, _, question in triples])
        return [json.dumps({"label": v.label.value, "confidence": v.confidence, "evidence": v.evidence,
                            "layer": v.layer, "official_terms": v.official_terms,
                            "probabilities": [list(p) for p in v.probabilities]}, ensure_ascii=False)
                for v in verdicts]

    out = []
    for value in _cached(store, f"classify:{name}", inputs, compute, CLASSIFY_BATCH, progress):
        raw = json.loads(value)
        out.append(Classification(Label(raw["label"]), raw["confidence"], raw["evidence"], raw["layer"],
                                  raw["official_terms"], tuple(tuple(p) for p in raw["probabilities"])))
    return out


class CachedEmbedder:
    """An embedder by its ``--embedder-*`` name, cached in the store; the model itself is loaded
    only when some text is not cached yet."""

    def __init__(self, spec: str, store: Store):
        from xling.compare.embed import EMBEDDERS, create_embedder

        self._spec, self._store, self._model = spec, store, None
        name = getattr(EMBEDDERS.get(spec), "name", None)
        if not isinstance(name, str):  # a name known only once built
            self._model = create_embedder(spec)
            name = self._model.name
        self.name = name

    def _embedder(self):
        from xling.compare.embed import create_embedder

        if self._model is None:
            self._model = create_embedder(self._spec)
        return self._model

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Unit vectors of ``texts``, committed ``EMBED_BATCH`` at a time; ``progress(done, total)``
        hears after each batch (the sentences of thousands of replayed answers take minutes)."""
        if not texts:
            return self._embedder().embed(texts)

        def compute(todo: list[str]) -> list[bytes]:
            vectors = np.asarray(self._embedder().embed(todo), dtype=np.float32)
            return [row.tobytes() for row in vectors]

        rows = _cached(self._store, f"embed:{self.name}", list(texts), compute, EMBED_BATCH, progress)
        return np.stack([np.frombuffer(row, dtype=np.float32) for row in rows])
