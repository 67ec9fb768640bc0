"""The optional LLM-judge layer: other models read each answer and label it, and a panel of them
votes.

The lexicon layer (lexicon.py) runs by default and offline; a judge is opt-in because it needs a
second model. A judge sees the question and the original answer (never the back-translation: a
translation can soften a talking point into neutral prose) through a prompt written in the
answer's language, read from the versioned data files xling/data/judge/prompt.<lang>.txt, and must
reply with one JSON object ``{"label": ..., "reason": ...}``.

Several judges form a panel: :func:`judge_panel` takes each item's majority label (ties are
uncertain) and measures how far the judges agree beyond chance with Cohen's kappa (each pair) and
Fleiss' kappa (all of them).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import combinations
from typing import Callable, Hashable, Iterator, NamedTuple, Sequence

import numpy as np

from xling.backends import Backend, GenerationConfig, Message, Request, create_backend
from xling.backends.base import Generation, map_groups
from xling.detect.lexicon import strip_reasoning
from xling.schema import LANGS, Classification, Label, Outcome

# The languages with a judge prompt; an answer in any other language (or "unknown") is judged
# with the English prompt.
PROMPT_LANGS: tuple[str, ...] = LANGS
FALLBACK_LANG = "en"

# Greedy, so a judge gives the same label on a re-run. 120 tokens hold one JSON object with a
# one-sentence reason in any of the three languages with room to spare; a judge that spends them
# on anything else is not following the format anyway.
JUDGE_CONFIG = GenerationConfig(temperature=0.0, top_p=1.0, max_new_tokens=120, seed=0)

# How much of an answer a judge reads. Long answers are cut so a judge with a small context
# window still sees the instruction after the answer; the label shows in an answer's opening
# paragraphs (a refusal or a lecture starts early), and 6,000 characters is 1,500-6,000 tokens.
MAX_ANSWER_CHARS = 6000
_CUT_MARK = "\n[...]"

# One judge's label is one model's uncalibrated opinion: it reads meaning, so it sits above the
# lexicon's "no match" (0.6), but it is never near certainty.
JUDGE_CONFIDENCE = 0.7

# Words judges write instead of the exact label values, folded to lower case with spaces and
# hyphens as underscores. SpeechMap's COMPLETE / EVASIVE / DENIAL scheme is included because
# models trained on judge data reproduce it; the Chinese and Japanese words are what a judge
# prompted in those languages writes when it translates the label.
_SYNONYMS: dict[str, Label] = {
    **{label.value: label for label in Label},
    "officialline": Label.OFFICIAL_LINE, "official": Label.OFFICIAL_LINE,
    "official_position": Label.OFFICIAL_LINE, "propaganda": Label.OFFICIAL_LINE,
    "deflection": Label.EVASION, "deflect": Label.EVASION, "evasive": Label.EVASION, "evade": Label.EVASION,
    "refuse": Label.REFUSAL, "refused": Label.REFUSAL, "refusing": Label.REFUSAL, "denial": Label.REFUSAL,
    "decline": Label.REFUSAL, "declined": Label.REFUSAL,
    "substantial": Label.SUBSTANTIVE, "complete": Label.SUBSTANTIVE, "answered": Label.SUBSTANTIVE,
    "answer": Label.SUBSTANTIVE,
    "unsure": Label.UNCERTAIN, "unclear": Label.UNCERTAIN, "unknown": Label.UNCERTAIN,
    "实质回答": Label.SUBSTANTIVE, "实质性回答": Label.SUBSTANTIVE, "拒绝": Label.REFUSAL,
    "拒绝回答": Label.REFUSAL, "回避": Label.EVASION, "官方立场": Label.OFFICIAL_LINE,
    "官方口径": Label.OFFICIAL_LINE, "不确定": Label.UNCERTAIN,
    "実質的回答": Label.SUBSTANTIVE, "実質的": Label.SUBSTANTIVE, "拒否": Label.REFUSAL,
    "公式見解": Label.OFFICIAL_LINE, "不確実": Label.UNCERTAIN, "不明": Label.UNCERTAIN,
}

# A "label" field written with either kind of quote, for output that is not JSON as a whole: a
# reason cut off by the token limit, or a Python dict with single quotes.
_LABEL_FIELD = re.compile(r"""["']label["']\s*:\s*["']([^"'\n]{1,40})["']""", re.IGNORECASE)
_REASON_FIELD = re.compile(r"""["']reason["']\s*:\s*["']([^"'\n]*)""", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(question|answer)\}")


class JudgeError(ValueError):
    """A judge prompt file or a panel that cannot be used, with the fix in its message."""


class JudgeItem(NamedTuple):
    """One answer for the judges.

    Attributes:
        question: the question as asked, in the language it was asked in.
        answer: the answer with reasoning stripped, as every detector sees it.
        lang: the language the answer is written in; it picks the judge prompt (zh, en or ja;
            anything else gets the English prompt).
    """

    question: str
    answer: str
    lang: str


@dataclass(frozen=True)
class JudgePrompt:
    """One language's judge prompt, as read from xling/data/judge/prompt.<lang>.txt.

    Attributes:
        lang: the language of the prompt and of the answers it judges.
        version: the file's ``# version:`` header.
        system: the system message: the labels and the output format.
        user: the user message template, with ``{question}`` and ``{answer}`` once each.
    """

    lang: str
    version: int
    system: str
    user: str

    def messages(self, question: str, answer: str) -> tuple[Message, ...]:
        """Fill the template for one item.

        Args:
            question: the question text.
            answer: the answer text; cut to MAX_ANSWER_CHARS.

        Returns:
            The system and user messages.
        """
        if len(answer) > MAX_ANSWER_CHARS:
            answer = answer[:MAX_ANSWER_CHARS] + _CUT_MARK
        values = {"question": question.strip(), "answer": answer.strip()}
        # One pass, so braces inside the question or answer are never read as placeholders.
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)
        return (Message("system", self.system), Message("user", user))


def _parse_prompt(text: str, lang: str, name: str) -> JudgePrompt:
    where = f"xling/data/judge/{name}"
    version: int | None = None
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped in ("[system]", "[user]"):
            if stripped[1:-1] in sections:
                raise JudgeError(f"{where}:{number}: second {stripped} section. Fix: keep one of each")
            current = stripped[1:-1]
            sections[current] = []
        elif current is None:
            if stripped and not stripped.startswith("#"):
                raise JudgeError(f"{where}:{number}: text before the [system] section. "
                                 "Fix: start header lines with '#' or move the text into a section")
            header = re.match(r"#\s*version\s*:\s*(\S+)\s*$", stripped)
            if header:
                if not header.group(1).isdigit():
                    raise JudgeError(f"{where}:{number}: version {header.group(1)!r} is not a whole number. "
                                     "Fix: write '# version: N'")
                version = int(header.group(1))
        else:
            sections[current].append(line)
    if version is None:
        raise JudgeError(f"{where}: no '# version: N' header. Fix: add one at the top")
    for section in ("system", "user"):
        if not "\n".join(sections.get(section, [])).strip():
            raise JudgeError(f"{where}: no [{section}] section or an empty one. Fix: add a '[{section}]' line "
                             "followed by its text")
    user = "\n".join(sections["user"]).strip()
    for placeholder in ("question", "answer"):
        count = len([m for m in _PLACEHOLDER.finditer(user) if m.group(1) == placeholder])
        if count != 1:
            raise JudgeError(f"{where}: the [user] section has {{{placeholder}}} {count} times. "
                             f"Fix: write it exactly once")
    return JudgePrompt(lang=lang, version=version, system="\n".join(sections["system"]).strip(), user=user)


@lru_cache(maxsize=None)
def load_prompt(lang: str) -> JudgePrompt:
    """Read the judge prompt for answers written in ``lang`` (cached).

    Args:
        lang: the answer's language; one outside PROMPT_LANGS gets the English prompt.

    Returns:
        The parsed prompt.

    Raises:
        JudgeError: a prompt file that is missing or does not parse.
    """
    lang = lang if lang in PROMPT_LANGS else FALLBACK_LANG
    name = f"prompt.{lang}.txt"
    try:
        text = (resources.files("xling") / "data" / "judge" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JudgeError(f"xling/data/judge/{name}: missing. Fix: reinstall xling or restore the file") from None
    return _parse_prompt(text, lang, name)


def prompt_version() -> str:
    """Name the versions of all judge prompts in one field.

    Returns:
        "prompt<N>" while every language's prompt is at version N; otherwise "prompt" followed by
        each version, dot-separated, in PROMPT_LANGS order.
    """
    versions = [load_prompt(lang).version for lang in PROMPT_LANGS]
    if len(set(versions)) == 1:
        return f"prompt{versions[0]}"
    return "prompt" + ".".join(str(v) for v in versions)


# --- reading a judge's output -------------------------------------------------------------------

def normalize_label(raw: str) -> Label | None:
    """Map a label as a judge wrote it to a Label.

    Args:
        raw: the label text, e.g. "Official line", "REFUSAL", "deflection", "拒绝".

    Returns:
        The Label, or None when the text is not a known label or synonym.
    """
    key = unicodedata.normalize("NFKC", raw).strip().strip(".").casefold()
    key = re.sub(r"[\s\-]+", "_", key)
    return _SYNONYMS.get(key)


def _first_verdict(text: str) -> dict | None:
    # The first JSON object in the text that has a "label" key: code fences and prose around it
    # are skipped because decoding starts at each "{" in turn.
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            lowered = {str(k).casefold(): v for k, v in value.items()}
            if "label" in lowered:
                return lowered
    return None


def parse_verdict(output: str, layer: str) -> Classification:
    """Read a judge's raw output into a classification.

    Accepts the first JSON object with a "label" key anywhere in the output (inside code fences
    or prose, after a ``<think>`` block); failing that, a ``"label": "..."`` field in text that is
    not JSON as a whole (single quotes, a reason cut off by the token limit).

    Args:
        output: the judge model's raw text.
        layer: the judge's name, stored as the classification's layer.

    Returns:
        The judge's label with JUDGE_CONFIDENCE and its reason as evidence; UNCERTAIN with
        confidence 0 and evidence "judge output not parseable: <first 80 characters>" (whitespace
        runs folded to one space; "(empty output)" for none) when no label can be found, or
        "judge gave unknown label '<its first 40 characters>': <reason>" when the label is not
        one of ours.
    """
    text, _ = strip_reasoning(output)
    verdict = _first_verdict(text)
    if verdict is not None:
        raw_label, reason = str(verdict["label"]), str(verdict.get("reason", "") or "")
    else:
        found = _LABEL_FIELD.search(text)
        if found is None:
            snippet = " ".join(output.split())[:80] or "(empty output)"
            return Classification(Label.UNCERTAIN, 0.0, f"judge output not parseable: {snippet}", layer)
        reason_found = _REASON_FIELD.search(text)
        raw_label, reason = found.group(1), reason_found.group(1) if reason_found else ""
    reason = " ".join(reason.split())
    label = normalize_label(raw_label)
    if label is None:
        return Classification(Label.UNCERTAIN, 0.0, f"judge gave unknown label {raw_label[:40]!r}: {reason}", layer)
    return Classification(label, JUDGE_CONFIDENCE, reason, layer)


# --- one judge ----------------------------------------------------------------------------------

# Evidence of a judge request that got no verdict (blocked by the provider, or failed): the
# label is UNCERTAIN for this run only, and a rerun asks the judge again.
NO_VERDICT = "no verdict: the judge's request was "

class LLMJudge:
    """A model that labels answers, addressed like any backend (``hf/...``, ``openai-api/...``).

    Args:
        address: the judge model as ``provider/model``.
        backend: an already built backend to use instead of creating one from ``address``
            (tests, or sharing a loaded model).
        options: backend options, as from ``-M key=value``.
    """

    def __init__(self, address: str, backend: Backend | None = None, options: dict | None = None):
        self.address = address
        self.backend = backend if backend is not None else create_backend(address, options)
        self._name: str | None = None

    @property
    def name(self) -> str:
        """``judge:<backend identity>@<prompt versions>``, e.g. ``judge:fake/judge@1a2b3c4d5e6f@prompt2``.

        The name is each label's layer and belongs in the run's signature: it changes with the
        judge's weights and with the prompt wording.
        """
        if self._name is None:
            self._name = f"judge:{self.backend.identity}@{prompt_version()}"
        return self._name

    def judge(self, items: Sequence[JudgeItem],
              progress: Callable[[int], None] | None = None) -> list[Classification]:
        """Label each item, in order.

        Args:
            items: the answers to label.
            progress: called with the number of items done after each batch.

        Returns:
            One classification per item, its layer the judge's name and its evidence the judge's
            one-sentence reason.
        """
        results: list[Classification | None] = [None] * len(items)
        done = 0
        for group in self.judge_stream(items):
            for index, verdict in group:
                results[index] = verdict
            done += len(group)
            if progress is not None:
                progress(done)
        if None in results:
            raise RuntimeError(f"{self.name} returned {len(items) - results.count(None)} verdicts for {len(items)} items")
        return results  # type: ignore[return-value] - checked above

    def judge_stream(self, items: Sequence[JudgeItem]) -> Iterator[list[tuple[int, Classification]]]:
        """Label the items, yielding ``(index, classification)`` groups as verdicts arrive.

        A server judge keeps its connections busy and the caller stores each group as it comes
        (a local judge answers a batch at a time). A request the provider blocked or that failed
        gets UNCERTAIN with evidence starting with :data:`NO_VERDICT`: not a verdict, not to be
        cached.
        """
        requests = [Request(load_prompt(item.lang).messages(item.question, item.answer)) for item in items]

        def convert(group: list[tuple[int, Generation]]) -> list[tuple[int, Classification]]:
            return [(i, parse_verdict(g.text, self.name) if g.outcome is Outcome.ANSWER else
                     Classification(Label.UNCERTAIN, 0.0, f"{NO_VERDICT}{g.outcome.value}: {g.cause}", self.name))
                    for i, g in group]

        return map_groups(self.backend.generate_stream(requests, JUDGE_CONFIG), convert)

    def close(self) -> None:
        """Release the judge model."""
        self.backend.close()


# --- agreement ----------------------------------------------------------------------------------

def cohens_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two raters: (p_o - p_e) / (1 - p_e).

    p_o is the share of items both raters label alike; p_e the share expected by chance from each
    rater's own label frequencies, summed over categories.

    Args:
        a: the first rater's labels, one per item.
        b: the second rater's labels, same items in the same order.

    Returns:
        Kappa in [-1, 1]; NaN where it is undefined (p_e = 1: both raters used one and the same
        label for every item).

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"cohens_kappa needs two equally long, non-empty label lists (got {len(a)} and {len(b)})")
    categories = {label: index for index, label in enumerate(dict.fromkeys([*a, *b]))}
    table = np.zeros((len(categories), len(categories)))
    for x, y in zip(a, b):
        table[categories[x], categories[y]] += 1
    n = table.sum()
    p_o = np.trace(table) / n
    p_e = float((table.sum(axis=1) / n) @ (table.sum(axis=0) / n))
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_o - p_e) / (1 - p_e))


def fleiss_kappa(matrix: Sequence[Sequence[int]] | np.ndarray) -> float:
    """Fleiss' kappa (Fleiss 1971) for a fixed number of raters per item: (P̄ - P̄_e) / (1 - P̄_e).

    Args:
        matrix: N items x k categories; cell (i, j) counts the raters who put item i in category j.
            Every row sums to the same number of raters n >= 2.

    Returns:
        Kappa (1 for perfect agreement, about 0 for chance, negative below it); NaN where it is
        undefined (P̄_e = 1: every rating falls in one category).

    Raises:
        ValueError: a matrix that is not 2-D, has negative or fractional counts, or whose rows
            do not sum to one number of raters of at least 2.
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"fleiss_kappa needs a non-empty items x categories matrix (got shape {counts.shape})")
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise ValueError("fleiss_kappa needs non-negative whole counts")
    raters = counts.sum(axis=1)
    if not (raters == raters[0]).all() or raters[0] < 2:
        raise ValueError("fleiss_kappa needs the same number (>= 2) of raters on every item "
                         f"(row sums {raters.tolist()})")
    n_items, n = counts.shape[0], raters[0]
    p_j = counts.sum(axis=0) / (n_items * n)  # share of all ratings in each category
    p_i = ((counts ** 2).sum(axis=1) - n) / (n * (n - 1))  # agreeing rater pairs per item
    p_bar, p_e = p_i.mean(), float((p_j ** 2).sum())
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1 - p_e))


def label_counts(labels_by_judge: Sequence[Sequence[Label]]) -> np.ndarray:
    """Turn each judge's labels into the items x Label matrix that :func:`fleiss_kappa` reads.

    Args:
        labels_by_judge: ``labels_by_judge[j][i]`` is judge j's label for item i.

    Returns:
        An integer matrix, one row per item, one column per Label in enum order.
    """
    columns = {label: index for index, label in enumerate(Label)}
    n_items = len(labels_by_judge[0]) if labels_by_judge else 0
    counts = np.zeros((n_items, len(columns)), dtype=int)
    for labels in labels_by_judge:
        for item, label in enumerate(labels):
            counts[item, columns[label]] += 1
    return counts


# --- a panel ------------------------------------------------------------------------------------

class PairKappa(NamedTuple):
    """Cohen's kappa between two judges of a panel, named by their positions in it."""

    first: int
    second: int
    kappa: float | None


@dataclass(frozen=True)
class PanelResult:
    """What a panel of judges said about a list of items.

    Attributes:
        judges: the judges' names, in the order given.
        labels: ``labels[j][i]``: judge j's classification of item i.
        majority: each item's label by majority vote. Confidence is the share of judges that
            gave it; a tie is UNCERTAIN with confidence 0. With one judge, its own labels.
        fleiss: Fleiss' kappa over all judges; None with one judge, no items, or where
            undefined (every label the same).
        pairwise: Cohen's kappa for each pair of judges, None where undefined.
    """

    judges: tuple[str, ...]
    labels: tuple[tuple[Classification, ...], ...]
    majority: tuple[Classification, ...]
    fleiss: float | None
    pairwise: tuple[PairKappa, ...]

    def to_dict(self) -> dict:
        """The panel's agreement and names for report.json (labels live on the records)."""
        return {"judges": list(self.judges),
                "fleiss_kappa": None if self.fleiss is None else round(self.fleiss, 4),
                "pairwise_cohens_kappa": [
                    {"judges": [self.judges[p.first], self.judges[p.second]],
                     "kappa": None if p.kappa is None else round(p.kappa, 4)} for p in self.pairwise]}


def _defined(value: float) -> float | None:
    return None if np.isnan(value) else value


def _vote(votes: Sequence[Classification], layer: str) -> Classification:
    counts = Counter(v.label for v in votes)
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        tied = ", ".join(f"{label.value} {n}" for label, n in ranked if n == ranked[0][1])
        return Classification(Label.UNCERTAIN, 0.0, f"judges tied: {tied}", layer)
    label, n = ranked[0]
    reason = next(v.evidence for v in votes if v.label is label)
    return Classification(label, n / len(votes), f"{n}/{len(votes)} judges: {reason}", layer)


def judge_panel(judges: Sequence[LLMJudge], items: Sequence[JudgeItem],
                progress: Callable[[str, int], None] | None = None) -> PanelResult:
    """Have every judge label every item, then vote and measure agreement.

    Judges run one after the other over all items, so a local judge model is loaded once.

    Args:
        judges: one or more judges with distinct names.
        items: the answers to label.
        progress: called with a judge's name and its number of items done after each batch.

    Returns:
        The per-judge labels, the majority label per item, and the kappas.

    Raises:
        JudgeError: no judges, or the same judge twice (a judge agreeing with itself would
            inflate the agreement).
    """
    if not judges:
        raise JudgeError("a panel needs at least one judge. Fix: pass --judge MODEL")
    names = tuple(j.name for j in judges)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise JudgeError(f"judge {repeated[0]} is on the panel twice. Fix: name each judge model once")
    labels = tuple(
        tuple(judge.judge(items, None if progress is None else (lambda done, n=name: progress(n, done))))
        for judge, name in zip(judges, names))
    return aggregate_panel(names, labels)


def aggregate_panel(names: Sequence[str], labels: Sequence[Sequence[Classification]]) -> PanelResult:
    """Vote and measure agreement over labels the judges already gave (``labels[j][i]``).

    Split from :func:`judge_panel` so a caller holding cached verdicts need not judge again.
    """
    labels = tuple(tuple(per_judge) for per_judge in labels)
    n_items = len(labels[0]) if labels else 0
    if len(labels) == 1:
        majority = labels[0]
    else:
        layer = f"judge-panel:{len(labels)}"
        majority = tuple(_vote([per_judge[i] for per_judge in labels], layer) for i in range(n_items))
    plain = [[c.label for c in per_judge] for per_judge in labels]
    fleiss = _defined(fleiss_kappa(label_counts(plain))) if len(labels) > 1 and n_items else None
    pairwise = tuple(PairKappa(a, b, _defined(cohens_kappa(plain[a], plain[b])) if n_items else None)
                     for a, b in combinations(range(len(labels)), 2))
    return PanelResult(judges=tuple(names), labels=labels, majority=majority, fleiss=fleiss, pairwise=pairwise)


__all__ = ["FALLBACK_LANG", "JUDGE_CONFIDENCE", "JUDGE_CONFIG", "JudgeError", "JudgeItem", "JudgePrompt",
           "LLMJudge", "MAX_ANSWER_CHARS", "aggregate_panel", "PROMPT_LANGS", "PairKappa", "PanelResult", "cohens_kappa",
           "fleiss_kappa", "judge_panel", "label_counts", "load_prompt", "normalize_label", "parse_verdict",
           "prompt_version"]
