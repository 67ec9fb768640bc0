"""Translators that do not translate: ``none`` for runs that compare originals only, ``fake`` for tests."""

from __future__ import annotations

from typing import Sequence

from xling.translate.base import Translator


class NoTranslator(Translator):
    """Returns every text unchanged (``--translator none``).

    With it the back-translation of a Chinese or Japanese answer is the answer itself, so
    cross-lingual comparisons see the originals only: detectors that read each language work as
    usual, but similarity between an English and a Chinese answer is then only as good as a
    multilingual embedder makes it.
    """

    name = "none"

    def translate(self, texts: Sequence[str], source: str, target: str = "en") -> list[str]:
        """Return ``texts`` unchanged, whatever the languages."""
        return list(texts)


class FakeTranslator(Translator):
    """A deterministic stand-in for tests: ``"你好"`` from zh becomes ``"[zh->en] 你好"``.

    Texts already in the target language come back unchanged, as a real translator's would.
    """

    name = "fake"

    def translate(self, texts: Sequence[str], source: str, target: str = "en") -> list[str]:
        """Tag each text with its language pair, or return it unchanged when ``source == target``."""
        if source == target:
            return list(texts)
        return [f"[{source}->{target}] {text}" for text in texts]
