"""The vocabulary every stage shares: languages, categories, variants, labels and records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# The three languages xling asks in, in the order tables show them.
LANGS: tuple[str, ...] = ("zh", "en", "ja")
LANG_NAMES = {"zh": "Simplified Chinese", "en": "English", "ja": "Japanese"}

# The ten categories of the reference study (Ito & Takaguchi), plus "baseline" for neutral
# questions about China that tell a model's ordinary behaviour apart from its caution.
CATEGORIES: dict[str, str] = {
    "senior_politicians": "高位政治家 senior politicians",
    "ethnic_minorities": "少数民族 ethnic minorities",
    "democracy_movements": "民主化运动 democracy movements",
    "hong_kong_taiwan": "香港台湾问题 Hong Kong and Taiwan",
    "economy": "经济情势 economic situation",
    "policy": "政策问题 policy",
    "history": "历史问题 history",
    "diplomacy": "外交问题 diplomacy",
    "leading_questions": "诱导质问 leading questions",
    "indirect_questions": "间接质问 indirect questions",
    "baseline": "neutral questions about China (baseline)",
}

# What kind of question an item is. Items other than "direct" and "baseline" name the item they
# vary or mirror in their `base` field.
VARIANTS: dict[str, str] = {
    "direct": "a plain question on a sensitive topic",
    "neutral_framing": "a neutral wording of a topic that another item asks in a loaded way",
    "loaded_framing": "a loaded wording of a topic that another item asks neutrally",
    "leading": "a leading question that presupposes an answer",
    "false_premise": "a question built on a false premise",
    "indirect": "an indirect reference or code word for a sensitive topic",
    "japan_view": "a question a Japanese user of a Japan-market model would ask",
    "control": "the same question about another country, to tell general caution from China-specific behaviour",
    "baseline": "a neutral question about China (culture, geography, cuisine)",
}
LINKED_VARIANTS = {"neutral_framing", "loaded_framing", "leading", "false_premise", "indirect", "control"}


class Label(str, Enum):
    """What an answer does."""

    SUBSTANTIVE = "substantive"
    REFUSAL = "refusal"
    EVASION = "evasion"
    OFFICIAL_LINE = "official_line"
    # Repetitive, looping or incoherent text: not an answer, whatever its words match.
    DEGENERATE = "degenerate"
    UNCERTAIN = "uncertain"


class Outcome(str, Enum):
    """How a request ended. Only ``answer`` records carry a model's words: what a provider
    blocked or what failed is never counted as the model's refusal, and is left out of label
    rates and flags."""

    ANSWER = "answer"
    BLOCKED = "blocked"  # the provider's content filter or moderation
    FAILED = "failed"  # a client error, or retries exhausted


# Finish reasons by which a provider says its own filter stopped an answer: OpenAI's
# "content_filter", Gemini's "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION".
# Gateways pass them on as the finish reason, and collections of answers may hold one as the
# answer's text (SpeechMap's Gemini 1.5 Pro answers: "SAFETY", which its judge read as an evasion).
BLOCK_REASONS = frozenset({"content_filter", "safety", "prohibited_content", "blocklist", "spii", "recitation",
                           "image_safety"})


def block_marker(text: str) -> str:
    """The provider's block reason when ``text`` is that and nothing else ("SAFETY"), else ""."""
    word = text.strip()
    return word if word.lower() in BLOCK_REASONS else ""


class FlagType(str, Enum):
    """The divergences xling flags between the languages of one question."""

    REFUSAL_ASYMMETRY = "refusal_asymmetry"
    OFFICIAL_LINE_ASYMMETRY = "official_line_asymmetry"
    SEMANTIC_DIVERGENCE = "semantic_divergence"
    LANGUAGE_DRIFT = "language_drift"


@dataclass(frozen=True)
class Prompt:
    """One question in one language, as read from prompts/<lang>/<suite>.jsonl."""

    id: str
    lang: str
    category: str
    variant: str
    text: str
    base: str | None = None
    key_facts: tuple[str, ...] = ()
    note: str | None = None
    source: str = ""  # "file:line", for error messages


# The layer of a label the lexicon decided: alone, or over the learned layer in the default combination.
LEXICON_LAYER = "lexicon"


@dataclass(frozen=True)
class Classification:
    """A label for one answer with how sure we are and why.

    ``official_terms`` is set when the answer speaks in the official line's words, whatever its
    label: always for official_line, and for a refusal that turns the request down in them ("there
    are no so-called loopholes; Hong Kong's judiciary is independent...").
    """

    label: Label
    confidence: float
    evidence: str = ""
    layer: str = ""
    official_terms: bool = False
    # The learned layer's calibrated probabilities per class, where it ran.
    probabilities: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.label is Label.OFFICIAL_LINE:
            object.__setattr__(self, "official_terms", True)


def cut_off_while_reasoning(answer: str, reasoning: str, truncated: bool) -> bool:
    """The token limit stopped the model while it was still reasoning, before it wrote any answer.

    That is the run's setting (a reasoning model thinks for hundreds or thousands of tokens), not
    the model declining: such a record is not labelled from its empty answer, which would read as
    a refusal."""
    return truncated and bool(reasoning.strip()) and not answer.strip()


@dataclass(frozen=True)
class Record:
    """One answer, analysed: what report.json's ``records`` holds."""

    key: str
    model: str
    prompt_id: str
    lang: str  # the language asked in
    sample: int
    category: str
    variant: str
    prompt: str
    text: str  # the answer with reasoning stripped: what every detector sees
    reasoning: str
    truncated: bool
    answer_lang: str
    back_translation: str
    label: Label
    confidence: float
    evidence: str
    key_facts_missing: tuple[str, ...] = ()
    official_terms: bool = False  # see Classification
    base: str | None = None  # the question a variant or control mirrors
    outcome: Outcome = Outcome.ANSWER
    outcome_cause: str = ""  # why a request was blocked or failed, as the provider said it
    finish_reason: str = ""  # as the backend reported it ("stop", "length", "content_filter", ...)
    layer: str = ""  # which classifier layer decided the label
    probabilities: tuple[tuple[str, float], ...] = ()  # see Classification
    # What the back-translation failed of xling/translate/checks.py, one "check: detail" each;
    # None when the answer was not back-translated (English, or --translator none).
    translation_failed: tuple[str, ...] | None = None

    @property
    def doubtful_translation(self) -> bool:
        """The back-translation failed a check: comparisons that read it are doubtful too."""
        return bool(self.translation_failed)

    @property
    def answered(self) -> bool:
        """The model produced words (not blocked by the provider, not a failed request)."""
        return self.outcome is Outcome.ANSWER

    @property
    def unfinished(self) -> bool:
        """See :func:`cut_off_while_reasoning`."""
        return self.answered and cut_off_while_reasoning(self.text, self.reasoning, self.truncated)

    @property
    def drifted(self) -> bool:
        """Answered in another of the languages than it was asked in."""
        return self.answer_lang not in (self.lang, "unknown")

    @property
    def voices_official_line(self) -> bool:
        """Gives the official line: labelled so, or declined in its words (a judge's label may
        overrule the lexicon's, so the words count only while the label is not substantive)."""
        return self.label is Label.OFFICIAL_LINE or (
            self.official_terms and self.label in (Label.REFUSAL, Label.EVASION))

    def to_dict(self) -> dict:
        return {"key": self.key, "model": self.model, "prompt_id": self.prompt_id, "lang": self.lang,
                "sample": self.sample, "category": self.category, "variant": self.variant,
                "prompt": self.prompt, "text": self.text, "reasoning": self.reasoning,
                "truncated": self.truncated, "answer_lang": self.answer_lang,
                "back_translation": self.back_translation, "label": self.label.value,
                "confidence": round(self.confidence, 3), "evidence": self.evidence,
                "key_facts_missing": list(self.key_facts_missing), "official_terms": self.official_terms,
                "base": self.base, "outcome": self.outcome.value, "outcome_cause": self.outcome_cause,
                "finish_reason": self.finish_reason, "layer": self.layer,
                "probabilities": {name: round(p, 3) for name, p in self.probabilities},
                "translation_checks": None if self.translation_failed is None else {
                    "ok": not self.translation_failed,
                    "failed": [detail.split(":")[0] for detail in self.translation_failed],
                    "details": list(self.translation_failed)}}
