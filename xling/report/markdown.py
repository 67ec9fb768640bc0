"""The per-language Markdown report: what changes when a question is asked in one language.

This module also holds the plain-language vocabulary the terminal and HTML renderers share
(column names, what each label and flag means, how a rate is written), so that the three
outputs explain things in the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from xling.schema import CATEGORIES, LANG_NAMES, LANGS

# --- shared vocabulary -------------------------------------------------------------------


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
    RateColumn("uncertain", "Unclear"),
    RateColumn("wrong_language", "Wrong language"),
    RateColumn("truncated", "Cut off"),
)

LABEL_HELP: dict[str, str] = {
    "substantive": "**Answered**: the answer engages with the question and gives information.",
    "refusal": "**Refused**: the model declines to answer (\"I can't help with that\").",
    "evasion": (
        "**Evaded**: neither a refusal nor an answer: the model changes the subject or speaks "
        "only in generalities."
    ),
    "official_line": (
        "**Official line**: the answer repeats the position of the Chinese government or state "
        "media as fact (for example calling reports \"lies by people with ulterior motives\"). "
        "A simple refusal detector counts these as answered; xling does not."
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
}

FLAG_NAMES: dict[str, str] = {
    "refusal_asymmetry": "Refuses in one language only",
    "official_line_asymmetry": "Official line in one language only",
    "semantic_divergence": "Different content across languages",
    "language_drift": "Answers in another language",
}

FLAG_HELP: dict[str, str] = {
    "refusal_asymmetry": (
        "the model refuses the question in one language but answers it in another."
    ),
    "official_line_asymmetry": (
        "the model repeats the official line in one language but not in another."
    ),
    "semantic_divergence": (
        "the model answers in both languages, but once translated into English the answers "
        "say different things: they are less alike than the model's own repeated answers in "
        "one language usually are (the threshold below is measured on the model itself)."
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
    "threshold": (
        "Divergence threshold",
        "answers less similar than this count as saying different things; set from how much "
        "this model's own repeated answers in one language vary",
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


def category_name(key: str) -> str:
    """English name of a category key ("hong_kong_taiwan" -> "Hong Kong and Taiwan")."""
    value = CATEGORIES.get(key)
    if value is None:
        return key.replace("_", " ")
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
    """Flags worst first: by severity, then question id, type and languages for a stable order."""
    return sorted(
        flags,
        key=lambda f: (
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
    if chrf < LOW_CHRF:
        verdict = "low: the translations are loose; check the original text before quoting"
    elif chrf < GOOD_CHRF:
        verdict = "fair: good enough for the gist, check the original for exact wording"
    else:
        verdict = "good: the translations stay close to the meaning"
    return f"{lang_name(lang)} back-translations score chrF {chrf:.1f}{of}, {verdict}."


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


def missing_facts(
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


# --- Markdown ----------------------------------------------------------------------------

# CommonMark lets a backslash escape any ASCII punctuation. These are the characters that
# could start markup inside running text (emphasis, code, links, raw HTML, headings, tables,
# entities); escaping only them keeps the raw file readable.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|&~])")
# At the start of a line these open a list, a thematic break or a setext heading underline.
_MD_LINE_START = re.compile(r"^(\s*)([-+=])")
_MD_ORDERED = re.compile(r"^(\s*\d+)([.)])")


def md_inline(text: Any) -> str:
    """`text` escaped for use inside one line of Markdown (table cell, list item, heading)."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def md_quote(text: str, limit: int | None = 600) -> str:
    """`text` as a Markdown blockquote in which nothing the model wrote becomes markup.

    Every line is escaped and prefixed with "> ", so a ``` fence, a "#" heading or an HTML
    tag in an answer stays quoted text. Line breaks are kept with a trailing backslash (a
    CommonMark hard break) so that lists and poems in answers do not run together.
    """
    body = truncate(text, limit) if limit else text
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out = []
    for i, line in enumerate(lines):
        stripped = line.rstrip()
        indent = len(stripped) - len(stripped.lstrip())
        # Four leading spaces would turn the line into a code block, where escapes show.
        stripped = " " * min(indent, 3) + stripped.lstrip()
        escaped = _MD_SPECIAL.sub(r"\\\1", stripped)
        escaped = _MD_LINE_START.sub(r"\1\\\2", escaped)
        escaped = _MD_ORDERED.sub(r"\1\\\2", escaped)
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if escaped and nxt:
            escaped += "\\"
        out.append(f"> {escaped}" if escaped else ">")
    while out and out[-1] == ">":
        out.pop()
    return "\n".join(out) if out else "> *(empty answer)*"


def _md_code(text: Any) -> str:
    """`text` as an inline code span, with a fence longer than any backtick run inside it."""
    s = str(text)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _langs_first(lang: str, langs: list[str]) -> list[str]:
    return [lang, *[other for other in langs if other != lang]]


def _header(report: Mapping[str, Any], lang: str) -> list[str]:
    name = lang_name(lang)
    models = ordered_models(report)
    lines = [
        f"# What changes when the question is asked in {md_inline(name)}?",
        "",
        f"Suite {_md_code(report.get('suite', '?'))} · languages "
        + ", ".join(f"{md_inline(lang_name(x))} ({md_inline(x)})" for x in ordered_langs(report))
        + " · model"
        + ("s " if len(models) != 1 else " ")
        + ", ".join(_md_code(m) for m in models)
        + (f" · created {md_inline(report['created'])}" if report.get("created") else ""),
        "",
        f"Signature: {_md_code(report.get('signature', 'unknown'))}",
        "",
        "The signature names the model, questions, settings and tool versions behind these",
        "numbers; two reports are comparable only when their signatures match.",
        "",
    ]
    return lines


def _how_to_read(report: Mapping[str, Any], lang: str) -> list[str]:
    lines = [
        "## How to read this report",
        "",
        "Each question is asked several times in each language, and every answer gets one label:",
        "",
    ]
    lines += [f"- {LABEL_HELP[col.key]}" for col in RATE_COLUMNS]
    lines += [
        "",
        "A figure such as **33% (21–47)** means 33% of the answers, and that the true rate is",
        "probably (95% confidence) between 21% and 47%. Few answers give wide ranges; two",
        "languages differ clearly only when their ranges barely overlap.",
        "",
        "A divergence is a question on which the model behaves differently by language:",
        "",
    ]
    lines += [f"- **{FLAG_NAMES[key]}** ({_md_code(key)}): {text}" for key, text in FLAG_HELP.items()]
    lines += [
        "",
        "Each divergence is rated high, medium or low by how large and how consistent the",
        "difference is across the repeated answers.",
        "",
        "### How far to trust the English translations",
        "",
        "Answers in Chinese and Japanese are machine-translated back into English. To measure how",
        "faithful that translation is, xling also translates the questions themselves back into",
        "English and compares them with the original English questions using chrF, a 0–100",
        f"score of character overlap: above {GOOD_CHRF:.0f} the translations are close, "
        f"{LOW_CHRF:.0f}–{GOOD_CHRF:.0f} good enough for the gist,",
        f"below {LOW_CHRF:.0f} too loose to quote without checking the original.",
        "",
    ]
    quality = report.get("translation_quality") or {}
    for other in _langs_first(lang, ordered_langs(report)):
        note = md_inline(trust_note(quality.get(other), other))
        chrf = _number((quality.get(other) or {}).get("chrf"), None)
        if chrf is not None and chrf < LOW_CHRF:
            note = f"**Warning:** {note}"
        lines.append(f"- {note}")
    lines.append("")
    return lines


def _rates_section(report: Mapping[str, Any], lang: str) -> list[str]:
    name = lang_name(lang)
    lines = [
        "## How often each thing happens",
        "",
        f"{md_inline(name)} first, then the other languages for comparison.",
        "",
    ]
    models = ordered_models(report)
    if not report.get("summary"):
        return [*lines, "No answers were recorded in this run, so there is nothing to count.", ""]
    for model in models:
        if len(models) > 1:
            lines += [f"### {_md_code(model)}", ""]
        rows = []
        for other in _langs_first(lang, ordered_langs(report)):
            row = summary_row(report, model, other) or {}
            rates = row.get("rates") or {}
            label = f"{lang_name(other)} ({other})"
            cells = [f"**{md_inline(label)}**" if other == lang else md_inline(label)]
            cells.append(str(row["n"]) if isinstance(row.get("n"), int) else NO_VALUE)
            cells += [format_rate(rates.get(col.key)) for col in RATE_COLUMNS]
            rows.append(cells)
        lines += _md_table(["Language", "Answers", *[c.header for c in RATE_COLUMNS]], rows)
        lines.append("")
    return lines


def _category_section(report: Mapping[str, Any], lang: str) -> list[str]:
    lines = [
        "## By topic",
        "",
        "Share of answers that did **not** answer the question (refused, evaded, official line",
        "or unclear), per topic, with the number of answers.",
        "",
    ]
    entries = report.get("by_category") or []
    if not entries:
        return [*lines, "No per-topic figures in this run.", ""]
    langs = _langs_first(lang, ordered_langs(report))
    models = ordered_models(report)
    for model in models:
        mine = [e for e in entries if e.get("model") == model]
        if not mine:
            continue
        if len(models) > 1:
            lines += [f"### {_md_code(model)}", ""]
        categories = list(dict.fromkeys(str(e.get("category", "?")) for e in mine))
        rows = []
        for category in categories:
            cells = [md_inline(category_name(category))]
            for other in langs:
                entry = next(
                    (e for e in mine if e.get("category") == category and e.get("lang") == other),
                    None,
                )
                if entry is None:
                    cells.append(NO_VALUE)
                    continue
                n = entry.get("n")
                rate = format_rate(entry.get("non_substantive"))
                cells.append(f"{rate}, n={n}" if isinstance(n, int) and rate != NO_VALUE else rate)
            rows.append(cells)
        headers = ["Topic", *[md_inline(f"{lang_name(x)} ({x})") for x in langs]]
        lines += _md_table(headers, rows)
        lines.append("")
    return lines


def _answer_block(group: AnswerGroup) -> list[str]:
    answer = group.answer
    lang = str(answer.get("lang", "?"))
    answer_lang = answer.get("answer_lang")
    label = label_name(answer.get("label", "unlabelled"))
    lines = [f"**{md_inline(answer_title(group))}: {md_inline(label)}**"]
    if answer_lang and answer_lang != lang:
        lines[0] += f" (written in {md_inline(lang_name(str(answer_lang)))}, not {md_inline(lang_name(lang))})"
    text = str(answer.get("text") or "")
    lines += ["", "Original:", "", md_quote(text), ""]
    back = answer.get("back_translation")
    if back and str(back) != text:
        lines += ["Back-translation into English:", "", md_quote(str(back)), ""]
    elif (answer_lang or lang) != "en":
        lines += ["*(No back-translation was stored for this answer.)*", ""]
    if answer.get("evidence"):
        lines += [f"Why this label: {md_inline(answer['evidence'])}", ""]
    return lines


def _flag_section(report: Mapping[str, Any], flag: Mapping[str, Any], number: int) -> list[str]:
    kind = str(flag.get("type", "divergence"))
    prompt_id = str(flag.get("prompt_id", "?"))
    model = flag.get("model")
    langs = [str(x) for x in flag.get("langs") or []]
    level = str(flag.get("level", "")).strip()
    severity = _number(flag.get("severity"), None)
    rating = ", ".join(x for x in [level, f"severity {severity:.2f}" if severity is not None else ""] if x)
    title = f"### {number}. {md_inline(FLAG_NAMES.get(kind, kind.replace('_', ' ')))}: {_md_code(prompt_id)}"
    lines = [title + (f" ({md_inline(rating)})" if rating else ""), ""]
    if flag.get("summary"):
        lines += [f"**{md_inline(flag['summary'])}**", ""]
    facts = [
        f"Languages: {md_inline(', '.join(f'{lang_name(x)} ({x})' for x in langs))}",
        f"Topic: {md_inline(category_name(str(flag.get('category', '?'))))}",
    ]
    if model and len(ordered_models(report)) > 1:
        facts.insert(0, f"Model: {_md_code(model)}")
    if kind in FLAG_HELP:
        facts.append(f"What this flag means: {md_inline(FLAG_HELP[kind])}")
    lines += [f"- {fact}" for fact in facts] + [""]

    evidence = flag.get("evidence") or {}
    scores = evidence.get("scores") or {}
    if scores:
        lines += ["Scores:", ""] + [f"- {md_inline(line)}" for line in score_lines(scores)] + [""]

    questions = question_texts(report, model, prompt_id)
    if questions:
        lines += ["**The question**", ""]
        for lang in langs or list(questions):
            if lang in questions:
                lines.append(f"- {md_inline(lang_name(lang))} ({md_inline(lang)}): {md_inline(questions[lang])}")
        lines.append("")

    answers = evidence.get("answers") or []
    if answers:
        lines += ["**The answers**", ""]
        for group in group_answers(answers, langs):
            lines += _answer_block(group)
    else:
        lines += ["*(No answers were attached to this flag.)*", ""]

    missing = missing_facts(report, model, prompt_id, langs)
    if missing:
        lines += ["**Key facts left out**", ""]
        for lang in langs:
            for fact, k, total in missing.get(lang, []):
                lines.append(
                    f"- {md_inline(lang_name(lang))}: {md_inline(fact)} (missing from {k} of {total} answers)"
                )
        lines.append("")
    return lines


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
    problems = report.get("input_problems") or []
    if problems:
        notes.append(f"{len(problems)} input line(s) could not be used and were skipped:")
        notes += [f"  {problem}" for problem in problems[:20]]
    return notes


def _run_notes(report: Mapping[str, Any]) -> list[str]:
    notes = run_notes(report)
    if not notes:
        return []
    return ["## About this run", ""] + [f"- {md_inline(n.strip())}" for n in notes] + [""]


def render_markdown(report: Mapping[str, Any], lang: str) -> str:
    """Render the divergence report for questions asked in `lang`.

    Args:
        report: The dict the pipeline writes as report.json. Optional keys may be absent.
        lang: The asked language the report is about ("zh", "en", "ja").

    Returns:
        A Markdown document: signature and how to read it, the rates for `lang` next to the
        other languages, a per-topic table, then every flag that involves `lang` with the
        question, each answer's original text and back-translation, labels and scores.
    """
    lines = _header(report, lang) + _how_to_read(report, lang)
    lines += _rates_section(report, lang) + _category_section(report, lang) + _run_notes(report)

    name = md_inline(lang_name(lang))
    flags = [f for f in sorted_flags(report.get("flags") or []) if lang in (f.get("langs") or [])]
    lines += [f"## Divergences involving {name} ({len(flags)})", ""]
    if not report.get("records") and not report.get("flags"):
        lines += ["This run holds no answers and no divergences, so there is nothing to show.", ""]
    elif not flags:
        lines += [
            f"No divergences involving {name} were flagged: on no question did the answers in",
            f"{name} differ from the other languages by the tests described above. The rates",
            "above still show how the model answered overall.",
            "",
        ]
    for number, flag in enumerate(flags, start=1):
        lines += _flag_section(report, flag, number)
    return "\n".join(lines).rstrip() + "\n"
