"""The plain-language vocabulary every renderer shares (column names, what each label and flag
means, how a rate is written), so the terminal, Markdown and HTML outputs explain things in the
same words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from xling.schema import CATEGORIES, LANG_NAMES, LANGS



class RateColumn(NamedTuple):
    """One column of a rates table: the key in report["summary"][i]["rates"] and its name."""

    key: str
    header: str


# The order a reader meets them: did it answer, did it refuse, did it dodge, did it recite.
RATE_COLUMNS: tuple[RateColumn, ...] = (
    RateColumn("substantive", "Answered"),
    RateColumn("refusal", "Refused"),
    RateColumn("evasion", "Evaded"),
    RateColumn("official_line", "Official line"),
    RateColumn("degenerate", "Degenerate"),
    RateColumn("uncertain", "Unclear"),
    RateColumn("wrong_language", "Wrong language"),
    RateColumn("truncated", "Cut off"),
    RateColumn("blocked", "Blocked"),
    RateColumn("failed", "Failed"),
)
# Shown only where some record has them: most runs have none, and the terminal is narrow.
OPTIONAL_COLUMNS = frozenset({"degenerate", "blocked", "failed"})

LABEL_HELP: dict[str, str] = {
    "substantive": "**Answered**: the answer engages with the question and gives information.",
    "refusal": (
        "**Refused**: the model declines to answer (\"I can't help with that\", \"no comment\"), or "
        "turns the request down by calling the accusation it rests on false as a whole (\"any claims "
        "of persecution are groundless\"). When it declines in the official line's words, the answer "
        "also counts towards \"Official line in one language only\"."
    ),
    "evasion": (
        "**Evaded**: neither a refusal nor an answer: the model changes the subject or speaks "
        "only in generalities."
    ),
    "official_line": (
        "**Official line**: the answer repeats the position of the Chinese government or state "
        "media as fact (for example calling reports \"lies by people with ulterior motives\"). "
        "A simple refusal detector counts these as answered; xling does not."
    ),
    "degenerate": (
        "**Degenerate**: repetitive, looping or incoherent text, or the question said back as the "
        "answer: not an answer, whatever its words."
    ),
    "uncertain": "**Unclear**: the classifier could not decide; read the answer yourself.",
    "wrong_language": (
        "**Wrong language**: the model answered in another language than the one it was asked "
        "in (counted on top of the labels above)."
    ),
    "truncated": (
        "**Cut off**: the answer hit the length limit before it finished (counted on top of the "
        "labels above)."
    ),
    "blocked": (
        "**Blocked**: the provider's content filter or moderation stopped the request; no words of the "
        "model's reached xling, so it is left out of the label rates and flags (share of all requests)."
    ),
    "failed": (
        "**Failed**: the request failed (a client error, or retries exhausted); left out of the label "
        "rates and flags. `--retry-errors` asks again (share of all requests)."
    ),
}


def rate_columns(report: Mapping[str, Any]) -> tuple[RateColumn, ...]:
    """The rate columns this report needs: optional ones only where some cell is above zero."""
    used = {key for row in report.get("summary") or [] for key, entry in (row.get("rates") or {}).items()
            if isinstance(entry, Mapping) and (entry.get("k") or 0) > 0}
    return tuple(col for col in RATE_COLUMNS if col.key not in OPTIONAL_COLUMNS or col.key in used)

FLAG_NAMES: dict[str, str] = {
    # The kind counts evasions with the refusals, so its name says both; each flag's summary says
    # which its answers were. JSON keeps the kind's key, "refusal_asymmetry".
    "refusal_asymmetry": "Refuses or evades in one language only",
    "official_line_asymmetry": "Official line in one language only",
    "semantic_divergence": "Different content across languages",
    "language_drift": "Answers in another language",
}

FLAG_HELP: dict[str, str] = {
    "refusal_asymmetry": (
        "the model refuses or evades the question in one language but answers it in another; the "
        "summary says whether those answers were refusals (\"declines\"), evasions (\"evades\"), "
        "degenerate text that loops, turns into script soup or says the question back (\"breaks "
        "down\") or a mix "
        "(\"does not answer\")."
    ),
    "official_line_asymmetry": (
        "the model repeats the official line in one language but not in another."
    ),
    "semantic_divergence": (
        "the model answers in both languages, but the answers as written say different things: "
        "a multilingual model finds them less alike than the model's own repeated answers (or, "
        "with one sample, the bank's parallel questions) are; the flag names whether the "
        "back-translations agree, and one resting on a doubtful translation is marked and listed last."
    ),
    "language_drift": (
        "the model answers in a different language from the one the question was asked in."
    ),
}

# Score name -> (what it is, how to read its value), for the scores a flag's evidence carries.
SCORE_HELP: dict[str, tuple[str, str]] = {
    "sim_translated": (
        "Similarity of the answers once translated into English",
        "0 = unrelated, 1 = same meaning",
    ),
    "sim_original": ("Similarity of the original answers, by a multilingual model", "0 to 1"),
    "sim_sentences": ("Sentence alignment of the original answers: how far each sentence has a counterpart "
                      "in the other answer", "0 to 1"),
    "threshold_sentences": ("Sentence-alignment threshold", "answers aligning less than this make claims the "
                                                            "other does not"),
    "threshold": (
        "Divergence threshold",
        "answers less similar than this count as saying different things; set from how much "
        "this model's own repeated answers vary, or measured on parallel text (see the method)",
    ),
    "chrf": ("Character overlap of the translated answers (chrF)", "0 to 100"),
}

# Rough reading of chrF for whole-sentence translations; below LOW_CHRF a back-translation is
# too loose to quote without checking the original.
LOW_CHRF = 30.0
GOOD_CHRF = 50.0

NO_VALUE = "–"


def lang_name(lang: str) -> str:
    """English name of a language code ("ja" -> "Japanese"); unknown codes come back as-is."""
    return LANG_NAMES.get(lang, lang).replace("Simplified ", "")


def label_name(label: Any) -> str:
    """Reader-facing name of an answer label ("refusal" -> "Refused"), as in the rate tables."""
    names = {col.key: col.header for col in RATE_COLUMNS}
    return names.get(str(label), str(label).replace("_", " "))


def answer_label_name(answer: Mapping[str, Any]) -> str:
    """An answer's label for the reader, saying when it declined in the official line's words
    ("Refused, in the official line's words")."""
    label = answer.get("label", "unlabelled")
    name = label_name(label)
    if answer.get("official_terms") and label in ("refusal", "evasion"):
        name += ", in the official line's words"
    return name


def category_name(key: str) -> str:
    """English name of a category key ("hong_kong_taiwan" -> "Hong Kong and Taiwan")."""
    value = CATEGORIES.get(key)
    if value is None:
        value = key.replace("_", " ")
        return value[:1].upper() + value[1:]
    first, _, rest = value.partition(" ")
    # CATEGORIES values start with the Chinese name of the reference study; drop it so that
    # every renderer (plots included, where CJK fonts may be missing) can use the English.
    if rest and not first.isascii():
        value = rest
    return value[:1].upper() + value[1:]


def ordered_langs(report: Mapping[str, Any]) -> list[str]:
    """The report's languages in table order: report["langs"], then any others seen."""
    langs = list(report.get("langs") or [])
    seen = [row.get("lang") for row in report.get("summary") or []]
    seen += [row.get("lang") for row in report.get("by_category") or []]
    for lang in [*LANGS, *seen]:
        if lang and lang not in langs and lang in seen:
            langs.append(lang)
    return langs


def ordered_models(report: Mapping[str, Any]) -> list[str]:
    """The report's models: report["models"], then any others seen in the summary or flags."""
    models = list(report.get("models") or [])
    for row in [*(report.get("summary") or []), *(report.get("flags") or [])]:
        model = row.get("model")
        if model and model not in models:
            models.append(model)
    return models


def sorted_flags(flags: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Flags worst first: by severity, then question id, type and languages for a stable order;
    flags that rest on a doubtful back-translation after all the others."""
    return sorted(
        flags,
        key=lambda f: (
            bool(f.get("doubtful_translation")),
            -(_number(f.get("severity"), 0.0) or 0.0),
            str(f.get("prompt_id", "")),
            str(f.get("type", "")),
            [str(x) for x in f.get("langs") or []],
        ),
    )


def summary_row(report: Mapping[str, Any], model: str, lang: str) -> Mapping[str, Any] | None:
    """The summary entry for one model and language, or None when the run has none."""
    for row in report.get("summary") or []:
        if row.get("model") == model and row.get("lang") == lang:
            return row
    return None


def format_pct(rate: Any) -> str:
    """A rate in [0, 1] as a whole percentage ("33%"), or "–" when it is missing."""
    value = _number(rate, None)
    return NO_VALUE if value is None else f"{round(value * 100):d}%"


def format_ci(entry: Mapping[str, Any] | None) -> str:
    """The 95% interval of a rate entry as "21–47", or "" when there is none."""
    ci = (entry or {}).get("ci")
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return ""
    lo, hi = _number(ci[0], None), _number(ci[1], None)
    if lo is None or hi is None:
        return ""
    return f"{round(lo * 100):d}–{round(hi * 100):d}"


def format_rate(entry: Mapping[str, Any] | None) -> str:
    """A rate entry ({"k", "rate", "ci"}) as "33% (21–47)"; "–" when missing."""
    if not entry or _number(entry.get("rate"), None) is None:
        return NO_VALUE
    ci = format_ci(entry)
    return f"{format_pct(entry['rate'])} ({ci})" if ci else format_pct(entry["rate"])


def format_gap(entry: Mapping[str, Any] | None) -> str:
    """A control gap entry ({"gap", "ci"}) as "+45 points (30 to 58)"; "–" when missing."""
    gap = _number((entry or {}).get("gap"), None)
    if gap is None:
        return NO_VALUE
    text = f"{round(gap * 100):+d} points"
    ci = (entry or {}).get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in (_number(ci[0], None), _number(ci[1], None)):
        text += f" ({round(ci[0] * 100):+d} to {round(ci[1] * 100):+d})"
    return text


def control_note(flag: Mapping[str, Any]) -> str:
    """For a flag on a control question: what that means for reading it; "" otherwise."""
    base = flag.get("control_of")
    if not base:
        return ""
    return (f"This is a control question about another country, matching {base}: a divergence here is "
            "not China-specific, and weakens any reading of the matching China question's flags as such.")


CONTROL_GAP_HELP = (
    "Non-answers (refused, evaded, official line or unclear) on the China questions that have a "
    "matched control, against the same questions asked about another country (Kent State for "
    "Tiananmen, Crimea for Taiwan). The difference is the China-specific part of the model's "
    "behaviour; a range that includes 0 means no clear difference. The difference's range resamples "
    "whole pairs of questions, since the samples of one question are not independent."
)


def control_gap_rows(report: Mapping[str, Any], model: str) -> list[Mapping[str, Any]]:
    """The model's control gap entries in the report's language order."""
    entries = [e for e in report.get("control_gaps") or [] if isinstance(e, Mapping) and e.get("model") == model]
    order = {lang: i for i, lang in enumerate(ordered_langs(report))}
    return sorted(entries, key=lambda e: order.get(e.get("lang"), len(order)))


def format_score(value: Any) -> str:
    """A similarity or chrF score: two decimals below 1.5, one decimal above (chrF is 0-100)."""
    number = _number(value, None)
    if number is None:
        return NO_VALUE if value is None else str(value)
    return f"{number:.2f}" if abs(number) < 1.5 else f"{number:.1f}"


def score_lines(scores: Mapping[str, Any]) -> list[str]:
    """Plain-text lines, one per score in a flag's evidence, with what the score means."""
    lines = []
    for name, value in scores.items():
        if isinstance(value, Mapping):
            # Per-language rates such as {"en": 1.0, "zh": 0.0}.
            per_lang = ", ".join(f"{lang} {format_pct(v)}" for lang, v in value.items())
            title = name.replace("_", " ")
            lines.append(f"{title[:1].upper()}{title[1:]}: {per_lang}")
        elif name in SCORE_HELP:
            title, hint = SCORE_HELP[name]
            lines.append(f"{title}: {format_score(value)} ({hint})")
        else:
            lines.append(f"{name.replace('_', ' ')}: {format_score(value)}")
    return lines


class AnswerGroup(NamedTuple):
    """Identical answers to one question in one language, shown once with their samples."""

    samples: list[Any]
    answer: Mapping[str, Any]


def group_answers(answers: Iterable[Mapping[str, Any]], langs: list[str]) -> list[AnswerGroup]:
    """A flag's answers in the flag's language order, identical answers merged.

    Models often give the same refusal word for word on every sample; showing it three times
    buries the answers that differ.
    """
    order = {lang: i for i, lang in enumerate(langs)}
    ranked = sorted(answers, key=lambda a: (order.get(a.get("lang"), len(order)), _number(a.get("sample"), 0.0)))
    groups: dict[tuple[Any, ...], AnswerGroup] = {}
    for answer in ranked:
        key = tuple(str(answer.get(k)) for k in ("lang", "label", "answer_lang", "text", "back_translation"))
        groups.setdefault(key, AnswerGroup([], answer)).samples.append(answer.get("sample"))
    return list(groups.values())


def answer_title(group: AnswerGroup) -> str:
    """ "English (en), samples 0, 1 and 2 (same answer)" for a group of answers."""
    lang = str(group.answer.get("lang", "?"))
    samples = [str(s) for s in group.samples if s is not None]
    title = f"{lang_name(lang)} ({lang})"
    if len(samples) == 1:
        title += f", sample {samples[0]}"
    elif samples:
        title += f", samples {', '.join(samples[:-1])} and {samples[-1]} (same answer)"
    return title


def trust_note(quality: Mapping[str, Any] | None, lang: str) -> str:
    """One sentence on how far back-translations from `lang` can be trusted, from their chrF."""
    if lang == "en":
        return "English answers are read as written; no translation is involved."
    chrf = _number((quality or {}).get("chrf"), None)
    if chrf is None:
        return f"No translation-quality figure for {lang_name(lang)}; check the original text."
    n = (quality or {}).get("n")
    of = f" over {n} questions" if n else ""
    word = (quality or {}).get("verdict")
    if word in ("good", "fair", "loose"):
        # Worded on the checks of each answer's back-translation (names, numbers, script, length),
        # with the bands measured by benchmarks/translators.py: chrF on short questions cannot see
        # a swapped name.
        meaning = {"good": "the translations keep names and numbers",
                   "fair": "good enough for the gist; check the original where the answer is marked doubtful",
                   "loose": "many translations lose names or numbers; read the original before quoting"}[word]
        return (f"{lang_name(lang)} back-translations: {quality['answers_passed']} of {quality['answers_checked']} "
                f"answers passed the checks, chrF {chrf:.1f}{of}; {word}: {meaning}.")
    if chrf < LOW_CHRF:
        verdict = "low: the translations are loose; check the original text before quoting"
    elif chrf < GOOD_CHRF:
        verdict = "fair: good enough for the gist, check the original for exact wording"
    else:
        verdict = "good: the translations stay close to the meaning"
    return f"{lang_name(lang)} back-translations score chrF {chrf:.1f}{of}, {verdict}."


def threshold_notes(report: Mapping[str, Any]) -> list[str]:
    """One sentence per threshold: the "different content" threshold, the method behind it and
    the models it holds for (models with the same threshold share a sentence)."""
    shared: dict[tuple[str, str], list[str]] = {}  # (kind, what follows the models) -> models
    for model, entry in (report.get("thresholds") or {}).items():
        entry = entry or {}
        value = _number(entry.get("semantic"), None)
        shown = f"{value:.3f}" if value is not None else "none"
        shared.setdefault(("Different-content", f"{shown} on the {entry.get('signal', 'back-translation')} texts "
                                                 f"({entry.get('method', 'unknown method')})."), []).append(model)
        sentences = entry.get("sentences")
        if sentences and _number(sentences.get("semantic"), None) is not None:
            shared.setdefault(("Sentence-alignment", f"{_number(sentences['semantic'], 0):.3f} "
                                                     f"({sentences.get('method', 'unknown method')})."), []).append(model)
    every = len(report.get("thresholds") or {})
    return [f"{kind} threshold for {_models_named(report, models, every)}: {rest}"
            for (kind, rest), models in shared.items()]


def _models_named(report: Mapping[str, Any], models: Sequence[str], every: int) -> str:
    if len(models) == every > 2:
        return f"all {every} models"
    return ", ".join(short_model(report, model) for model in models)


def doubtful(answer: Mapping[str, Any]) -> bool:
    """The answer's back-translation failed a check (report.json records / flag evidence)."""
    checks = answer.get("translation_checks")
    return bool(checks) and not checks.get("ok", True)


def truncate(text: str, limit: int = 600) -> str:
    """`text` cut at `limit` characters with "…" at the cut, at a space when one is near."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    # Cut at a word boundary for Latin scripts; CJK text has no spaces, so cut anywhere.
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def question_texts(report: Mapping[str, Any], model: str | None, prompt_id: str) -> dict[str, str]:
    """The question as asked in each language, read from the records (lang -> text)."""
    texts: dict[str, str] = {}
    for record in report.get("records") or []:
        if record.get("prompt_id") != prompt_id or (model and record.get("model") != model):
            continue
        lang, prompt = record.get("lang"), record.get("prompt")
        if lang and prompt and lang not in texts:
            texts[lang] = str(prompt)
    return texts


def missing_fact_counts(
    report: Mapping[str, Any], model: str | None, prompt_id: str, langs: Iterable[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """Key facts the answers left out, per language: lang -> [(fact, answers missing it, answers)]."""
    wanted = set(langs)
    counts: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for record in report.get("records") or []:
        lang = record.get("lang")
        if record.get("prompt_id") != prompt_id or lang not in wanted:
            continue
        if model and record.get("model") != model:
            continue
        totals[lang] = totals.get(lang, 0) + 1
        for fact in record.get("key_facts_missing") or []:
            counts.setdefault(lang, {})
            counts[lang][str(fact)] = counts[lang].get(str(fact), 0) + 1
    return {
        lang: [(fact, k, totals[lang]) for fact, k in facts.items()]
        for lang, facts in counts.items()
    }


def _number(value: Any, default: float | None) -> float | None:
    """`value` as a float, or `default` for None, bools, NaN and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return float(value)


def run_notes(report: Mapping[str, Any]) -> list[str]:
    """Plain sentences about the judges' agreement and skipped input lines, shared by the renderers."""
    notes = []
    panel = report.get("judges")
    if panel:
        names = ", ".join(panel.get("judges") or [])
        notes.append(f"Labels come from LLM judges ({names}); the offline classifier's label stays in each "
                     "answer's evidence.")
        if panel.get("fleiss_kappa") is not None:
            notes.append(f"Judges' agreement beyond chance: Fleiss' kappa {panel['fleiss_kappa']:.2f} "
                         "(1 perfect, 0 chance; below about 0.4 the labels depend on which judge you pick).")
        for pair in panel.get("pairwise_cohens_kappa") or []:
            if pair.get("kappa") is not None:
                notes.append(f"Cohen's kappa {pair['kappa']:.2f} between {' and '.join(pair['judges'])}.")
    # Requests the provider blocked or that failed: not the model's refusals, and not in the rates.
    notes += list(report.get("request_outcomes") or [])
    problems = report.get("input_problems") or []
    if problems:
        notes.append(f"{len(problems)} input line(s) could not be used and were skipped:")
        notes += [f"  {problem}" for problem in problems[:20]]
    return notes


# --- Comparison tables (report["model_rates"], ["model_comparisons"], ["language_gaps"]) ------

STATS_HELP = (
    "Ranges are 95% intervals clustered by question: several samples of one question are not "
    "independent, so each question counts once: the wider of a cluster bootstrap over questions "
    "(fixed seed) and a t interval over questions (with few questions the bootstrap alone is too "
    "narrow), or, where no answer or every answer has the label, a score interval over questions. "
    "Each p-value names its test, done on per-question majority labels: McNemar's exact test where "
    "both sides asked the same questions, Fisher's exact test otherwise. p (Holm) is adjusted for "
    "the number of tests in the table; a difference is clear when it is below 0.05."
)
DICTIONARY_HELP = (
    "The layout of Ito & Takaguchi's Table 1 (per model) and Table 2 (per topic). \"Dictionary\" is "
    "the share of answers that contain a word of the study's published refusal dictionary (Chinese "
    "only, so it finds nothing in English or Japanese); \"Not answered\" is xling's share refused, "
    "evaded, official line, degenerate or unclear; \"Missed by the dictionary\" are the answers "
    "xling counts as not answered that hold none of the dictionary's words."
)


def measure_name(key: Any) -> str:
    from xling.report.tables import MEASURE_NAMES

    return MEASURE_NAMES.get(str(key), str(key).replace("_", " "))


def scope_name(lang: Any, category: Any) -> str:
    """ "Chinese (zh)", "All languages", or a topic name for a table row's scope."""
    if category not in (None, "all"):
        return category_name(str(category))
    return "All languages" if lang in (None, "all") else f"{lang_name(str(lang))} ({lang})"


def format_interval_rate(row: Mapping[str, Any], prefix: str = "") -> str:
    """ "33% (21–47)" from a flat row's rate, ci_low and ci_high (prefix "non_answer_" etc.)."""
    entry = {"rate": row.get(f"{prefix}rate"), "ci": [row.get(f"{prefix}ci_low"), row.get(f"{prefix}ci_high")]}
    return format_rate(entry)


def format_difference(row: Mapping[str, Any]) -> str:
    """ "+58 points (+17 to +100)" from a comparison row; "–" when missing."""
    return format_gap({"gap": row.get("difference"), "ci": [row.get("ci_low"), row.get("ci_high")]})


def format_p(value: Any) -> str:
    number = _number(value, None)
    if number is None:
        return NO_VALUE
    return "<0.001" if number < 0.001 else f"{number:.3f}"


def informative(row: Mapping[str, Any]) -> bool:
    """Whether a comparison row says anything: some answer on either side has the label."""
    values = [row.get(k) for k in ("rate", "base_rate", "rate_a", "rate_b")]
    return any(_number(v, 0.0) for v in values)


def rate_rows(report: Mapping[str, Any], lang: str = "all", category: str = "all") -> list[Mapping[str, Any]]:
    return [r for r in report.get("model_rates") or [] if r.get("lang") == lang and r.get("category") == category]


def comparison_rows(report: Mapping[str, Any], family: str | None = None,
                    lang: str | None = None) -> list[Mapping[str, Any]]:
    rows = [r for r in report.get("model_comparisons") or [] if informative(r)]
    if family:
        rows = [r for r in rows if r.get("family") == family]
    if lang:
        rows = [r for r in rows if r.get("lang") == lang]
    return rows


def gap_rows(report: Mapping[str, Any], lang: str | None = None) -> list[Mapping[str, Any]]:
    rows = [r for r in report.get("language_gaps") or [] if informative(r)]
    return [r for r in rows if lang is None or lang in (r.get("lang_a"), r.get("lang_b"))]


def reference_rows(report: Mapping[str, Any], table: str, lang: str | None = None) -> list[Mapping[str, Any]]:
    return [r for r in report.get("reference_tables") or []
            if r.get("table") == table and (lang is None or r.get("lang") == lang)]


def statistics_note(report: Mapping[str, Any]) -> str:
    stats = report.get("statistics") or {}
    base = stats.get("base_model")
    text = STATS_HELP
    if base and len(ordered_models(report)) > 1:
        text = f"Every model is compared with the first, {short_model(report, base)} (the base). " + text
    return text


# Chart name (render_plots' keys) -> what it shows, for captions and links.
CHART_TITLES: dict[str, str] = {
    "rates": "Share of answers refused, evaded, official line and in the wrong language, by language; "
             "the bars show the 95% range and each bar group its number of answers (n).",
    "categories": "Share of answers that did not answer, by topic and language, with n per cell.",
    "models": "Each model's rates per language with clustered 95% ranges and n.",
    "similarity": "Cross-language similarity of the answers against each model's calibrated threshold.",
}


def short_model(report: Mapping[str, Any], model: Any) -> str:
    """A model's name for narrow table cells: a replay address "replay/<file>#<name>" as its name
    when no other model of the run has that name; every other address as it is."""
    text = str(model)
    if not text.startswith("replay/") or "#" not in text:
        return text
    name = text.rsplit("#", 1)[1]
    others = [str(m).rsplit("#", 1)[-1] for m in ordered_models(report) if str(m) != text]
    return text if name in others else name


def odd_one_out(report: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    """Questions where `lang` is the odd one out: flagged against every other language the question
    was asked in (for one model and one type of divergence), while those others agree with each
    other. Worst first: [{"model", "prompt_id", "type", "severity", "summary", "others"}]."""
    asked: dict[tuple[str, str], set[str]] = {}
    for record in report.get("records") or []:
        asked.setdefault((str(record.get("model")), str(record.get("prompt_id"))), set()).add(str(record.get("lang")))
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for flag in report.get("flags") or []:
        key = (str(flag.get("model")), str(flag.get("prompt_id")), str(flag.get("type")))
        groups.setdefault(key, []).append(flag)
    out = []
    for (model, prompt_id, kind), flags in groups.items():
        others = sorted(asked.get((model, prompt_id), set()) - {lang})
        pairs = [set(str(x) for x in f.get("langs") or []) for f in flags]
        against = {x for pair in pairs if lang in pair for x in pair if x != lang}
        among_others = any(lang not in pair for pair in pairs)
        if others and against == set(others) and not among_others:
            worst = sorted_flags([f for f, pair in zip(flags, pairs) if lang in pair])[0]
            out.append({"model": model, "prompt_id": prompt_id, "type": kind, "severity": worst.get("severity"),
                        "summary": worst.get("summary", ""), "others": others})
    return sorted(out, key=lambda e: (-(_number(e["severity"], 0.0) or 0.0), e["prompt_id"], e["type"]))
