"""The per-language Markdown report: what changes when a question is asked in one language."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from xling.report.tables import MEASURES
from xling.report._common import doubtful, threshold_notes
from xling.report._common import (
    AnswerGroup,
    FLAG_HELP,
    FLAG_NAMES,
    GOOD_CHRF,
    LABEL_HELP,
    LOW_CHRF,
    NO_VALUE,
    RATE_COLUMNS,
    rate_columns,
    CHART_TITLES,
    DICTIONARY_HELP,
    odd_one_out,
    _number,
    comparison_rows,
    format_difference,
    format_interval_rate,
    format_p,
    gap_rows,
    measure_name,
    rate_rows,
    reference_rows,
    statistics_note,
    CONTROL_GAP_HELP,
    answer_title,
    category_name,
    control_gap_rows,
    control_note,
    format_gap,
    format_pct,
    format_rate,
    format_score,
    group_answers,
    answer_label_name,
    lang_name,
    missing_fact_counts,
    ordered_langs,
    ordered_models,
    question_texts,
    run_notes,
    score_lines,
    sorted_flags,
    summary_row,
    truncate,
    trust_note,
)

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
        "probably (95% confidence) between 21% and 47%. The range counts whole questions, since a",
        "model's answers to one question tend to agree: few questions give wide ranges. Two",
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
    lines += [f"- {md_inline(note)}" for note in threshold_notes(report)] + [""]
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
            cells += [format_rate(rates.get(col.key)) for col in rate_columns(report)]
            rows.append(cells)
        lines += _md_table(["Language", "Answers", *[c.header for c in rate_columns(report)]], rows)
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
        lines += _control_gap_table(report, model, lang)
    return lines


def _control_gap_table(report: Mapping[str, Any], model: str, lang: str) -> list[str]:
    entries = control_gap_rows(report, model)
    if not entries:
        return []
    rows = []
    for entry in sorted(entries, key=lambda e: e.get("lang") != lang):
        name = md_inline(f"{lang_name(entry.get('lang'))} ({entry.get('lang')})")
        rows.append([f"**{name}**" if entry.get("lang") == lang else name, str(entry.get("pairs", NO_VALUE)),
                     format_rate(entry.get("china")), format_rate(entry.get("control")), format_gap(entry)])
    return ["**China questions against matched controls.** " + CONTROL_GAP_HELP, "",
            *_md_table(["Language", "Pairs", "China questions", "Matched controls", "Difference"], rows), ""]


def _answer_block(group: AnswerGroup) -> list[str]:
    answer = group.answer
    lang = str(answer.get("lang", "?"))
    answer_lang = answer.get("answer_lang")
    label = answer_label_name(answer)
    lines = [f"**{md_inline(answer_title(group))}: {md_inline(label)}**"]
    if answer_lang and answer_lang != lang:
        lines[0] += f" (written in {md_inline(lang_name(str(answer_lang)))}, not {md_inline(lang_name(lang))})"
    text = str(answer.get("text") or "")
    lines += ["", "Original:", "", md_quote(text), ""]
    back = answer.get("back_translation")
    if back and str(back) != text:
        lines += ["Back-translation into English"
                  + (f" (**doubtful translation**: {md_inline('; '.join(answer['translation_checks']['details']))})"
                     if doubtful(answer) else "") + ":", "", md_quote(str(back)), ""]
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
    title = f"#### {number}. {md_inline(FLAG_NAMES.get(kind, kind.replace('_', ' ')))}: {_md_code(prompt_id)}"
    if flag.get("control_of"):
        title += " (control)"
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
    if control_note(flag):
        facts.append(md_inline(control_note(flag)))
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

    missing = missing_fact_counts(report, model, prompt_id, langs)
    if missing:
        lines += ["**Key facts left out**", ""]
        for lang in langs:
            for fact, k, total in missing.get(lang, []):
                lines.append(
                    f"- {md_inline(lang_name(lang))}: {md_inline(fact)} (missing from {k} of {total} answers)"
                )
        lines.append("")
    return lines


def _run_notes(report: Mapping[str, Any]) -> list[str]:
    notes = run_notes(report)
    if not notes:
        return []
    return ["## About this run", ""] + [f"- {md_inline(n.strip())}" for n in notes] + [""]


def _models_section(report: Mapping[str, Any], lang: str) -> list[str]:
    """This language's rates per model with clustered ranges, and every model against the base."""
    rates = rate_rows(report, lang)
    if not rates:
        return []
    name = md_inline(lang_name(lang))
    measures = [m for m in MEASURES if any(r.get("measure") == m.key for r in rates)]
    lines = [f"## Models side by side, asked in {name}", "", md_inline(statistics_note(report)), ""]
    rows = []
    for model in ordered_models(report):
        cells = {r.get("measure"): r for r in rates if r.get("model") == model}
        if cells:
            first = next(iter(cells.values()))
            rows.append([_md_code(model), f"{first.get('n')} ({first.get('questions')} questions)"]
                        + [format_interval_rate(cells[m.key]) if m.key in cells else NO_VALUE for m in measures])
    lines += _md_table(["Model", "Answers", *[m.header for m in measures]], rows) + [""]
    comparisons = comparison_rows(report, "by language", lang)
    if comparisons:
        lines += [f"### Difference from the base model, {_md_code(ordered_models(report)[0])}", "",
                  "Measures where no answer of either model has the label are left out.", ""]
        lines += _md_table(["Model", "Measure", "Base", "Model", "Difference (95% range)", "Test", "p", "p (Holm)"],
                           [[_md_code(r.get("model")), measure_name(r.get("measure")), format_pct(r.get("base_rate")),
                             format_pct(r.get("rate")), format_difference(r), md_inline(r.get("test")),
                             format_p(r.get("p")), _bold_if(r, format_p(r.get("p_holm")))] for r in comparisons])
        lines.append("")
    gaps = gap_rows(report, lang)
    if gaps:
        lines += [f"### Gaps between {name} and the other languages", "",
                  "The same questions in two languages, paired by question; Holm's correction runs over every "
                  "language gap of the run.", ""]
        lines += _md_table(["Model", "Languages", "Measure", "First", "Second", "Difference (95% range)", "Test",
                            "p", "p (Holm)"],
                           [[_md_code(r.get("model")), f"{lang_name(str(r.get('lang_a')))} vs {lang_name(str(r.get('lang_b')))}",
                             measure_name(r.get("measure")), format_pct(r.get("rate_a")), format_pct(r.get("rate_b")),
                             format_difference(r), md_inline(r.get("test")), format_p(r.get("p")),
                             _bold_if(r, format_p(r.get("p_holm")))] for r in gaps])
        lines.append("")
    return lines


def _bold_if(row: Mapping[str, Any], text: str) -> str:
    p = row.get("p_holm")
    return f"**{text}**" if isinstance(p, (int, float)) and p < 0.05 else text


def _reference_section(report: Mapping[str, Any], lang: str) -> list[str]:
    table1, table2 = reference_rows(report, "table1", lang), reference_rows(report, "table2", lang)
    if not table1:
        return []

    def cells(r: Mapping[str, Any]) -> list[str]:
        return [str(r.get("n")), format_interval_rate(r, "dictionary_refusal_"), format_interval_rate(r, "non_answer_"),
                format_interval_rate(r, "missed_by_dictionary_")]

    heads = ["Answers", "Dictionary refusal", "Not answered (xling)", "Missed by the dictionary"]
    lines = [f"## The reference study's tables, asked in {md_inline(lang_name(lang))}", "", md_inline(DICTIONARY_HELP), "",
             "### Table 1: non-answers per model", ""]
    lines += _md_table(["Model", *heads], [[_md_code(r.get("model")), *cells(r)] for r in table1]) + [""]
    lines += ["### Table 2: non-answers per topic", ""]
    lines += _md_table(["Model", "Topic", *heads],
                       [[_md_code(r.get("model")), md_inline(category_name(str(r.get("category")))), *cells(r)]
                        for r in table2]) + [""]
    return lines


def _charts_section(report: Mapping[str, Any], charts: Mapping[str, str] | None) -> list[str]:
    if not charts:
        return []
    lines = ["## Charts", ""]
    for name, path in charts.items():
        lines.append(f"- [{md_inline(CHART_TITLES.get(name, name))}]({path})")
    return lines + [""]


def render_markdown(report: Mapping[str, Any], lang: str, charts: Mapping[str, str] | None = None) -> str:
    """Render the divergence report for questions asked in `lang`.

    Args:
        report: The dict the pipeline writes as report.json. Optional keys may be absent.
        lang: The asked language the report is about ("zh", "en", "ja").
        charts: Chart name -> file name beside the report, linked from a "Charts" section.

    Returns:
        A Markdown document: signature and how to read it, the rates for `lang` next to the
        other languages, a per-topic table, then every flag that involves `lang` with the
        question, each answer's original text and back-translation, labels and scores.
    """
    lines = _header(report, lang) + _how_to_read(report, lang)
    lines += _rates_section(report, lang) + _models_section(report, lang) + _reference_section(report, lang)
    lines += _category_section(report, lang) + _charts_section(report, charts) + _run_notes(report)

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
    lines += _odd_one_out_section(report, lang)
    # Grouped by type of divergence, worst first within each; numbered through.
    order = {kind: i for i, kind in enumerate(FLAG_NAMES)}
    number = 0
    for kind in sorted({str(f.get("type")) for f in flags}, key=lambda k: (order.get(k, len(order)), k)):
        mine = [f for f in flags if str(f.get("type")) == kind]
        lines += [f"### {md_inline(FLAG_NAMES.get(kind, kind.replace('_', ' ')))} ({len(mine)})", ""]
        for flag in mine:
            number += 1
            lines += _flag_section(report, flag, number)
    return "\n".join(lines).rstrip() + "\n"


def _odd_one_out_section(report: Mapping[str, Any], lang: str) -> list[str]:
    entries = odd_one_out(report, lang)
    if not entries:
        return []
    name = md_inline(lang_name(lang))
    several = len(ordered_models(report)) > 1
    lines = [f"### Where {name} is the odd one out ({len(entries)})", "",
             f"Questions on which {name} differs from every other language while those agree with each other.", ""]
    rows = [([_md_code(e["model"])] if several else []) + [
        _md_code(e["prompt_id"]), md_inline(FLAG_NAMES.get(e["type"], e["type"])),
        format_score(e["severity"]), md_inline(", ".join(lang_name(x) for x in e["others"])), md_inline(e["summary"])]
        for e in entries]
    headers = (["Model"] if several else []) + ["Question", "Divergence", "Severity", "Differs from", "What happened"]
    return lines + _md_table(headers, rows) + [""]
