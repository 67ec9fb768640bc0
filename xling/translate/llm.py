"""Back-translation with a chat model prompted as a translator, through any backend.

The default uses the bundled model. Small models translate imperfectly (the 0.5B model leaks
Chinese characters and can garble negation), which is why every run also back-translates its own
questions and reports chrF against the English questions: that figure says how far to trust the
back-translations of the answers.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

from xling.backends import Backend, GenerationConfig, Message, Request, create_backend
from xling.backends.base import Generation, map_groups
from xling.backends.bundled import DEFAULT_MODEL
from xling.schema import Outcome
from xling.translate.base import Translator

_LANGUAGE = {"zh": "Chinese", "ja": "Japanese", "en": "English", "other": "the original language"}

# The text goes in a code block: asked plainly, the 0.5B model answers a translated question
# ("台湾について教えてください" -> "Taiwan is a country.") instead of translating it; fenced, it
# translates (measured on the quick suite's questions, see the run's bt_chrf).
SYSTEM_PROMPT = "You are a translator. Output only the translation."
USER_PROMPT = "Translate this {source} into {target}{hint}:\n\n```\n{text}\n```"
# Asked for Japanese, the 1.5B model hands Chinese back unchanged (the two share characters: 2 of 2
# dev answers in benchmarks/ja_consistency.py); told what Japanese looks like, it writes Japanese.
TARGET_HINTS = {"ja": " (use hiragana and katakana, Japanese grammar)"}
_PREAMBLE = re.compile(r"^.*?translat\w*\s+(?:in)?to\s+english(?:\s+as)?\s*:\s*", re.IGNORECASE | re.DOTALL)


def clean_translation(output: str) -> str:
    """Drop what small models wrap a translation in: a "... translates to English as:" preamble,
    code fences and enclosing quotes."""
    text = output.strip()
    if _PREAMBLE.match(text[:400]):
        text = _PREAMBLE.sub("", text, count=1)
    text = re.sub(r"^```\w*\n?|\n?```$", "", text.strip()).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text

# Greedy decoding: a translation should not vary between runs.
TRANSLATION_CONFIG = GenerationConfig(temperature=0.0, top_p=1.0, max_new_tokens=384, seed=0)


class LLMTranslator(Translator):
    """Translate with a chat model (``llm:provider/model``; default the bundled model)."""

    def __init__(self, model: str = DEFAULT_MODEL, backend: Backend | None = None,
                 max_new_tokens: int = TRANSLATION_CONFIG.max_new_tokens):
        # Reuse the run's backend when it is the translating model, so it is loaded once.
        self.backend = backend if backend is not None else create_backend(model)
        self.config = GenerationConfig(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
        self.batch_size = self.backend.batch_size
        self.name = f"llm:{self.backend.identity}@prompt2"

    def _request(self, text: str, source: str, target: str) -> Request:
        names = {"source": _LANGUAGE.get(source, source), "target": _LANGUAGE.get(target, target),
                 "hint": TARGET_HINTS.get(target, "")}
        # A batch runs until its longest translation ends, and a small model that starts
        # repeating itself runs to the cap. An English translation takes about one token per
        # Chinese or Japanese character (measured on the quick suite's answers), so the cap follows
        # the source text, with room for short texts (a local model's batch: its longest text).
        return Request((Message("system", SYSTEM_PROMPT), Message("user", USER_PROMPT.format(text=text, **names))),
                       max_new_tokens=min(self.config.max_new_tokens, len(text) + 32))

    def translate(self, texts: Sequence[str], source: str, target: str = "en") -> list[str]:
        out = [""] * len(texts)
        for group in self.translate_stream([(source, text) for text in texts], target):
            for index, translation in group:
                out[index] = translation or ""
        return out

    def translate_stream(self, items: Sequence[tuple[str, str]],
                         target: str = "en") -> Iterator[list[tuple[int, str | None]]]:
        """All pairs go to the backend at once: a server keeps its connections busy across
        sources and hands back translations as they finish; a local model batches them."""
        same = [(i, text) for i, (source, text) in enumerate(items) if source == target]
        todo = [i for i, (source, _) in enumerate(items) if source != target]
        requests = [self._request(items[i][1], items[i][0], target) for i in todo]

        def convert(group: list[tuple[int, Generation]]) -> list[tuple[int, str | None]]:
            return [(todo[i], clean_translation(g.text) if g.outcome is Outcome.ANSWER else None) for i, g in group]

        return map_groups(self.backend.generate_stream(requests, self.config), convert, first=same)
