"""The one place that labels an answer: substantive, refusal, evasion, official_line or uncertain."""

from __future__ import annotations

from xling.detect.lexicon import LEXICON_VERSION, classify_lexicon
from xling.schema import Classification

CLASSIFIER_NAME = f"lexicon@{LEXICON_VERSION}"


def classify(text: str, lang: str) -> Classification:
    """Label one answer (reasoning already stripped) written in ``lang``."""
    return classify_lexicon(text, lang)
