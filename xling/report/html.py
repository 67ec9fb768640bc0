"""One self-contained HTML page for a whole run: every language, table, chart and divergence.

Everything taken from the report passes through `html.escape`: answers are untrusted model
output and may contain markup (a model asked about web pages will happily write <script>).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from xling.report._common import doubtful, threshold_notes
from xling.report.browser import BROWSER_CSS, render_browser
from xling.report.tables import MEASURES
from xling.report._common import (
    FLAG_HELP,
    FLAG_NAMES,
    GOOD_CHRF,
    LABEL_HELP,
    LOW_CHRF,
    NO_VALUE,
    RATE_COLUMNS,
    rate_columns,
    CHART_TITLES,
    CONTROL_GAP_HELP,
    DICTIONARY_HELP,
    AnswerGroup,
    comparison_rows,
    format_difference,
    format_interval_rate,
    format_p,
    gap_rows,
    measure_name,
    rate_rows,
    reference_rows,
    scope_name,
    short_model,
    statistics_note,
    answer_title,
    category_name,
    control_gap_rows,
    control_note,
    format_gap,
    format_ci,
    format_pct,
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
    trust_note,
)

# BCP 47 tags so that browsers pick Chinese or Japanese glyphs for the shared Han characters.
_HTML_LANG = {"zh": "zh-Hans", "ja": "ja", "en": "en"}

_CSS = """
:root { --fg:#1d1d1f; --muted:#5f6368; --line:#d9dce1; --bg:#fff; --soft:#f5f6f8;
        --high:#b3261e; --medium:#a15c00; --low:#1a5fb4; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); line-height:1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC",
       "PingFang SC", "Hiragino Sans", "Yu Gothic", "Microsoft YaHei", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size:1.7rem; margin:.2rem 0 .4rem; }
h2 { font-size:1.3rem; margin-top:2.4rem; border-bottom:1px solid var(--line); padding-bottom:.3rem; }
h3 { font-size:1.1rem; margin:.2rem 0 .5rem; }
h4 { font-size:.95rem; margin:1rem 0 .4rem; }
.meta, .muted, small { color:var(--muted); }
code, .sig { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:.85em; }
.sig { word-break: break-all; background:var(--soft); padding:.5rem .7rem; border-radius:6px; }
nav a { margin-right:1rem; }
table { border-collapse: collapse; margin:.6rem 0 1.2rem; font-size:.92rem; }
th, td { border:1px solid var(--line); padding:.3rem .55rem; text-align:right; vertical-align:top; }
th:first-child, td:first-child, td:has(> code) { text-align:left; }
th { background:var(--soft); font-weight:600; }
td small { white-space:nowrap; }
.warn { background:#fff4e5; border-left:4px solid var(--medium); padding:.4rem .7rem; }
figure { margin:1rem 0; }
figure img { max-width:100%; border:1px solid var(--line); }
.flag { border:1px solid var(--line); border-left:6px solid var(--muted); border-radius:6px;
        padding:.8rem 1rem; margin:1.2rem 0; }
.flag.high { border-left-color:var(--high); } .flag.medium { border-left-color:var(--medium); }
.flag.low { border-left-color:var(--low); }
.badge { display:inline-block; font-size:.75rem; font-weight:700; text-transform:uppercase;
         padding:.05rem .45rem; border-radius:4px; color:#fff; background:var(--muted); }
.badge.high { background:var(--high); } .badge.medium { background:var(--medium); }
.badge.low { background:var(--low); }
.summary { font-size:1.02rem; font-weight:600; }
.pair { display:grid; grid-template-columns: 1fr 1fr; gap:.7rem; }
@media (max-width: 760px) { .pair { grid-template-columns: 1fr; } }
.pair > div { background:var(--soft); border-radius:6px; padding:.5rem .7rem; min-width:0; }
.pair h5 { margin:0 0 .3rem; font-size:.78rem; color:var(--muted); text-transform:uppercase; }
.text { white-space:pre-wrap; overflow-wrap:anywhere; max-height:26rem; overflow:auto; }
.why { font-size:.85rem; color:var(--muted); margin:.3rem 0 .8rem; }
.label { font-weight:700; }
ul.tight { margin:.2rem 0 .6rem; padding-left:1.2rem; }
"""


def _e(value: Any) -> str:
    """`value` as escaped HTML text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _help_html(text: str) -> str:
    """The shared Markdown-ish help strings ("**Answered**: ...") as escaped HTML."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", _e(text))


def _lang_attr(lang: Any) -> str:
    return _e(_HTML_LANG.get(str(lang), str(lang)))


def _rate_html(entry: Mapping[str, Any] | None) -> str:
    if not entry or format_pct(entry.get("rate")) == NO_VALUE:
        return NO_VALUE
    ci = format_ci(entry)
    return _e(format_pct(entry["rate"])) + (f" <small>({_e(ci)})</small>" if ci else "")


# A longer signature (many models' names: over 1,500 characters for a 25-model replay) would fill
# the first screen: it opens on a click.
SIGNATURE_SHOWN = 300


def _signature(signature: str) -> str:
    whole = f"<p class=\"sig\" title=\"reproducibility signature\">{_e(signature)}</p>"
    if len(signature) <= SIGNATURE_SHOWN:
        return whole
    return (f"<details><summary class=\"sig\">{_e(signature[:SIGNATURE_SHOWN])}… "
            f"(all {len(signature):,} characters)</summary>{whole}</details>")


def _header(report: Mapping[str, Any]) -> list[str]:
    langs = ", ".join(f"{lang_name(x)} ({x})" for x in ordered_langs(report))
    models = ordered_models(report)
    meta = [f"Suite <code>{_e(report.get('suite', '?'))}</code>", f"languages {_e(langs)}"]
    meta.append(("models " if len(models) != 1 else "model ")
                + ", ".join(f"<code title=\"{_e(m)}\">{_e(short_model(report, m))}</code>" for m in models))
    if report.get("created"):
        meta.append(f"created {_e(report['created'])}")
    n_flags = len(report.get("flags") or [])
    return [
        "<h1>Does the model answer differently depending on the language it is asked in?</h1>",
        f"<p class=\"meta\">{' · '.join(meta)}</p>",
        _signature(str(report.get("signature", "unknown"))),
        "<p class=\"muted\">The signature names the model, questions, settings and tool versions behind"
        " these numbers; two reports are comparable only when their signatures match.</p>",
        "<nav><a href=\"#how\">How to read</a><a href=\"#rates\">Rates</a><a href=\"#models\">Models compared</a>"
        "<a href=\"#gaps\">Language gaps</a><a href=\"#reference\">Reference tables</a>"
        "<a href=\"#topics\">By topic</a><a href=\"#charts\">Charts</a>"
        f"<a href=\"#flags\">Divergences ({n_flags})</a><a href=\"#answers\">Every answer</a></nav>",
    ]


def _how_to_read(report: Mapping[str, Any]) -> list[str]:
    out = [
        "<section id=\"how\"><h2>How to read this report</h2>",
        "<p>Each question is asked several times in each language, and every answer gets one label:</p>",
        "<ul>" + "".join(f"<li>{_help_html(LABEL_HELP[c.key])}</li>" for c in RATE_COLUMNS) + "</ul>",
        "<p>A figure such as <b>33% <small>(21–47)</small></b> means 33% of the answers, and that the true"
        " rate is probably (95% confidence) between 21% and 47%. Every range counts whole questions, since"
        " a model's answers to one question tend to agree: few questions give wide ranges. Two"
        " languages differ clearly only when their ranges barely overlap.</p>",
        "<p>A <b>divergence</b> is a question on which the model behaves differently by language:</p>",
        "<ul>"
        + "".join(f"<li><b>{_e(FLAG_NAMES[k])}</b>: {_e(v)}</li>" for k, v in FLAG_HELP.items())
        + "</ul>",
        "<p>Each divergence is rated high, medium or low by how large and how consistent the difference"
        " is across the repeated answers.</p>",
        "<h3>How far to trust the English translations</h3>",
        "<p>Answers in Chinese and Japanese are machine-translated back into English. To measure how"
        " faithful that is, xling also translates the questions themselves back into English and"
        " compares them with the original English questions using chrF, a 0–100 score of character"
        f" overlap: above {GOOD_CHRF:.0f} the translations are close, {LOW_CHRF:.0f}–{GOOD_CHRF:.0f}"
        f" good enough for the gist, below {LOW_CHRF:.0f} too loose to quote without checking the"
        " original.</p>",
        "<ul>",
    ]
    out += [f"<li>{_e(note)}</li>" for note in threshold_notes(report)]
    quality = report.get("translation_quality") or {}
    for lang in ordered_langs(report):
        entry = quality.get(lang)
        chrf = (entry or {}).get("chrf")
        low = isinstance(chrf, (int, float)) and chrf < LOW_CHRF
        note = _e(trust_note(entry, lang))
        out.append(f"<li class=\"warn\"><b>Warning:</b> {note}</li>" if low else f"<li>{note}</li>")
    out.append("</ul></section>")
    return out


def _rates(report: Mapping[str, Any]) -> list[str]:
    out = ["<section id=\"rates\"><h2>How often each thing happens</h2>"]
    if not report.get("summary"):
        out.append("<p>No answers were recorded in this run, so there is nothing to count.</p></section>")
        return out
    models = ordered_models(report)
    for model in models:
        if len(models) > 1:
            out.append(f"<h3><code>{_e(model)}</code></h3>")
        columns = rate_columns(report)
        head = "".join(f"<th>{_e(c.header)}</th>" for c in columns)
        out.append(f"<table><thead><tr><th>Language</th><th>Answers</th>{head}</tr></thead><tbody>")
        for lang in ordered_langs(report):
            row = summary_row(report, model, lang) or {}
            rates = row.get("rates") or {}
            n = row.get("n")
            cells = "".join(f"<td>{_rate_html(rates.get(c.key))}</td>" for c in columns)
            n_cell = _e(n) if isinstance(n, int) else NO_VALUE
            out.append(f"<tr><td>{_e(lang_name(lang))} ({_e(lang)})</td><td>{n_cell}</td>{cells}</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return out


def _table(headers: list[str], rows: list[list[str]], table_id: str = "") -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    ident = f" id=\"{_e(table_id)}\"" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _p_html(row: Mapping[str, Any]) -> str:
    p, holm = format_p(row.get("p")), format_p(row.get("p_holm"))
    strong = isinstance(row.get("p_holm"), (int, float)) and row["p_holm"] < 0.05
    text = f"{_e(holm)} <small>(raw {_e(p)})</small>"
    return f"<b>{text}</b>" if strong else text


def _models(report: Mapping[str, Any]) -> list[str]:
    out = ["<section id=\"models\"><h2>Models side by side</h2>"]
    models = ordered_models(report)
    if not report.get("model_rates"):
        out.append("<p>No comparison tables in this run.</p></section>")
        return out
    out.append(f"<p class=\"muted\">{_e(statistics_note(report))}</p>")
    measures = [m for m in MEASURES if any(r.get("measure") == m.key for r in report.get("model_rates") or [])]
    scopes = [(lang, "all") for lang in [*ordered_langs(report), "all"]]
    scopes += [("all", c) for c in dict.fromkeys(r.get("category") for r in report.get("model_rates") or []
                                                  if r.get("family") == "by category")]
    out.append("<h3>Rates per model, by language and by topic</h3>")
    headers = ["Scope", "Model", "Answers"] + [_e(m.header) for m in measures]
    rows = []
    for lang, category in scopes:
        mine = rate_rows(report, lang, category)
        for model in models:
            cells = {r.get("measure"): r for r in mine if r.get("model") == model}
            if not cells:
                continue
            any_row = next(iter(cells.values()))
            rows.append([_e(scope_name(lang, category)), f"<code title=\"{_e(model)}\">{_e(short_model(report, model))}</code>",
                         f"{_e(any_row.get('n'))} <small>({_e(any_row.get('questions'))} q.)</small>"]
                        + [_e(format_interval_rate(cells[m.key])) if m.key in cells else NO_VALUE for m in measures])
    out.append(_table(headers, rows, "model-rates"))
    comparisons = comparison_rows(report)
    if len(models) > 1:
        out.append(f"<h3>Difference from the base model, <code>{_e(models[0])}</code></h3>")
        out.append("<p class=\"muted\">Measures where no answer of either model has the label are left out."
                   " Holm's correction runs over the by-language and the by-topic tests separately.</p>")
        headers = ["Scope", "Model", "Measure", "Base rate", "Rate", "Difference (95% range)", "Test", "p (Holm)"]
        rows = [[_e(scope_name(r.get("lang"), r.get("category"))), f"<code>{_e(short_model(report, r.get('model')))}</code>",
                 _e(measure_name(r.get("measure"))), _e(format_pct(r.get("base_rate"))), _e(format_pct(r.get("rate"))),
                 _e(format_difference(r)), _e(r.get("test")), _p_html(r)] for r in comparisons]
        out.append(_table(headers, rows, "model-comparisons") if rows else "<p>No differences to show.</p>")
    out.append("</section>")
    return out


def _gaps(report: Mapping[str, Any]) -> list[str]:
    out = ["<section id=\"gaps\"><h2>Gaps between languages, per model</h2>"]
    rows = gap_rows(report)
    if not rows:
        out.append("<p>No language gaps in this run.</p></section>")
        return out
    out.append("<p class=\"muted\">The same questions in two languages: the first language's rate minus the"
               " second's, paired by question (McNemar). Holm's correction runs over every gap in the table.</p>")
    headers = ["Model", "Languages", "Measure", "First", "Second", "Difference (95% range)", "Test", "p (Holm)"]
    body = [[f"<code>{_e(short_model(report, r.get('model')))}</code>",
             _e(f"{lang_name(str(r.get('lang_a')))} vs {lang_name(str(r.get('lang_b')))}"),
             _e(measure_name(r.get("measure"))), _e(format_pct(r.get("rate_a"))), _e(format_pct(r.get("rate_b"))),
             _e(format_difference(r)), _e(r.get("test")), _p_html(r)] for r in rows]
    out += [_table(headers, body, "language-gaps"), "</section>"]
    return out


def _reference(report: Mapping[str, Any]) -> list[str]:
    out = ["<section id=\"reference\"><h2>The reference study's tables</h2>"]
    table1 = reference_rows(report, "table1")
    if not table1:
        out.append("<p>No reference tables in this run.</p></section>")
        return out
    out.append(f"<p class=\"muted\">{_e(DICTIONARY_HELP)}</p>")
    headers = ["Model", "Language", "Answers", "Dictionary refusal", "Not answered (xling)", "Missed by the dictionary"]

    def cells(r: Mapping[str, Any]) -> list[str]:
        return [_e(r.get("n")), _e(format_interval_rate(r, "dictionary_refusal_")),
                _e(format_interval_rate(r, "non_answer_")), _e(format_interval_rate(r, "missed_by_dictionary_"))]

    out.append("<h3>Table 1: non-answers per model</h3>")
    out.append(_table(headers, [[f"<code>{_e(short_model(report, r.get('model')))}</code>", _e(scope_name(r.get("lang"), "all"))] + cells(r)
                                for r in table1], "table1"))
    out.append("<h3>Table 2: non-answers per topic</h3>")
    rows = [[f"<code>{_e(short_model(report, r.get('model')))}</code>", _e(scope_name(r.get("lang"), "all")),
             _e(category_name(str(r.get("category"))))] + cells(r) for r in reference_rows(report, "table2")]
    out.append(_table(["Model", "Language", "Topic"] + headers[2:], rows, "table2"))
    out.append("</section>")
    return out


def _tint(rate: Any) -> str:
    """A red background whose strength follows a rate, as an inline style (no script needed)."""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        return ""
    alpha = max(0.0, min(1.0, float(rate))) * 0.55
    return f" style=\"background:rgba(179,38,30,{alpha:.2f})\""


def _topics(report: Mapping[str, Any]) -> list[str]:
    out = [
        "<section id=\"topics\"><h2>By topic</h2>",
        "<p>Share of answers that did <b>not</b> answer the question (refused, evaded, official line"
        " or unclear), per topic and language, with the number of answers. Darker is more.</p>",
    ]
    entries = report.get("by_category") or []
    if not entries:
        out.append("<p>No per-topic figures in this run.</p></section>")
        return out
    langs = ordered_langs(report)
    models = ordered_models(report)
    for model in models:
        mine = [e for e in entries if e.get("model") == model]
        if not mine:
            continue
        if len(models) > 1:
            out.append(f"<h3><code>{_e(model)}</code></h3>")
        head = "".join(f"<th>{_e(lang_name(x))} ({_e(x)})</th>" for x in langs)
        out.append(f"<table><thead><tr><th>Topic</th>{head}</tr></thead><tbody>")
        for category in dict.fromkeys(str(e.get("category", "?")) for e in mine):
            cells = []
            for lang in langs:
                entry = next((e for e in mine if e.get("category") == category and e.get("lang") == lang), None)
                rate_entry = (entry or {}).get("non_substantive")
                body = _rate_html(rate_entry)
                if entry and isinstance(entry.get("n"), int) and body != NO_VALUE:
                    body += f" <small>n={_e(entry['n'])}</small>"
                cells.append(f"<td{_tint((rate_entry or {}).get('rate'))}>{body}</td>")
            out.append(f"<tr><td>{_e(category_name(category))}</td>{''.join(cells)}</tr>")
        out.append("</tbody></table>")
        out += _control_gaps(report, model)
    out.append("</section>")
    return out


def _control_gaps(report: Mapping[str, Any], model: str) -> list[str]:
    entries = control_gap_rows(report, model)
    if not entries:
        return []
    out = [f"<p><b>China questions against matched controls.</b> {_e(CONTROL_GAP_HELP)}</p>",
           "<table><thead><tr><th>Language</th><th>Pairs</th><th>China questions</th><th>Matched controls</th>"
           "<th>Difference</th></tr></thead><tbody>"]
    for entry in entries:
        out.append(f"<tr><td>{_e(lang_name(entry.get('lang')))} ({_e(entry.get('lang'))})</td>"
                   f"<td>{_e(entry.get('pairs', NO_VALUE))}</td><td>{_rate_html(entry.get('china'))}</td>"
                   f"<td>{_rate_html(entry.get('control'))}</td><td>{_e(format_gap(entry))}</td></tr>")
    out.append("</tbody></table>")
    return out


def _safe_src(path: str) -> bool:
    """Only embedded PNGs and plain relative paths become image sources (no "javascript:" or
    other schemes)."""
    if path.startswith("data:image/png;base64,"):
        return True
    return bool(path) and ":" not in path.split("/", 1)[0] and not path.startswith("//")


def _charts(images: Mapping[str, str] | None) -> list[str]:
    out = ["<section id=\"charts\"><h2>Charts</h2>"]
    usable = {name: src for name, src in (images or {}).items() if _safe_src(str(src))}
    if not usable:
        out.append("<p>No charts for this run.</p>")
    captions = CHART_TITLES
    for name, src in usable.items():
        caption = captions.get(name, name)
        out.append(
            f"<figure><img src=\"{_e(src)}\" alt=\"{_e(caption)}\"><figcaption class=\"muted\">"
            f"{_e(caption)}</figcaption></figure>"
        )
    out.append("</section>")
    return out


def _answer(group: AnswerGroup) -> list[str]:
    answer = group.answer
    lang = str(answer.get("lang", "?"))
    answer_lang = str(answer.get("answer_lang") or lang)
    label = answer_label_name(answer)
    drift = (
        f" <small>written in {_e(lang_name(answer_lang))}, not {_e(lang_name(lang))}</small>"
        if answer_lang != lang
        else ""
    )
    text = str(answer.get("text") or "")
    back = answer.get("back_translation")
    if back and str(back) != text:
        right = f"<div class=\"text\" lang=\"en\">{_e(back)}</div>"
    elif answer_lang == "en":
        right = "<div class=\"text muted\">Written in English; no translation needed.</div>"
    else:
        right = "<div class=\"text muted\">No back-translation was stored for this answer.</div>"
    out = [
        f"<h4>{_e(answer_title(group))}: <span class=\"label\">{_e(label)}</span>{drift}</h4>",
        "<div class=\"pair\">",
        f"<div><h5>Original</h5><div class=\"text\" lang=\"{_lang_attr(answer_lang)}\">{_e(text)}</div></div>",
        f"<div><h5>Back-translation into English</h5>{right}"
        + (f"<p class=\"warn\">Doubtful translation: {_e('; '.join(answer['translation_checks']['details']))}</p>"
           if doubtful(answer) else "") + "</div>",
        "</div>",
    ]
    if answer.get("evidence"):
        out.append(f"<p class=\"why\">Why this label: {_e(answer['evidence'])}</p>")
    return out


def _flag(report: Mapping[str, Any], flag: Mapping[str, Any], number: int) -> list[str]:
    kind = str(flag.get("type", "divergence"))
    level = str(flag.get("level", "") or "")
    level_class = level if level in ("high", "medium", "low") else ""
    severity = flag.get("severity")
    prompt_id = str(flag.get("prompt_id", "?"))
    model = flag.get("model")
    langs = [str(x) for x in flag.get("langs") or []]
    sev = f" <small>severity {severity:.2f}</small>" if isinstance(severity, (int, float)) else ""
    out = [
        f"<article class=\"flag {level_class}\" id=\"flag-{number}\">",
        f"<h3>{number}. <span class=\"badge {level_class}\">{_e(level or '?')}</span> "
        f"{_e(FLAG_NAMES.get(kind, kind))}: <code>{_e(prompt_id)}</code>"
        f"{' (control)' if flag.get('control_of') else ''}{sev}</h3>",
    ]
    if flag.get("summary"):
        out.append(f"<p class=\"summary\">{_e(flag['summary'])}</p>")
    facts = [
        f"Languages: {_e(', '.join(f'{lang_name(x)} ({x})' for x in langs))}",
        f"Topic: {_e(category_name(str(flag.get('category', '?'))))}",
    ]
    if model and len(ordered_models(report)) > 1:
        facts.insert(0, f"Model: <code>{_e(model)}</code>")
    if kind in FLAG_HELP:
        facts.append(f"What this flag means: {_e(FLAG_HELP[kind])}")
    if control_note(flag):
        facts.append(_e(control_note(flag)))
    evidence = flag.get("evidence") or {}
    scores = evidence.get("scores") or {}
    facts += [f"Score: {_e(line)}" for line in score_lines(scores)]
    out.append("<ul class=\"tight\">" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>")

    questions = question_texts(report, model, prompt_id)
    if questions:
        rows = "".join(
            f"<tr><td>{_e(lang_name(x))} ({_e(x)})</td>"
            f"<td style=\"text-align:left\" lang=\"{_lang_attr(x)}\">{_e(questions[x])}</td></tr>"
            for x in (langs or list(questions))
            if x in questions
        )
        out.append(f"<table><thead><tr><th>Asked in</th><th>Question</th></tr></thead><tbody>{rows}</tbody></table>")

    answers = evidence.get("answers") or []
    for group in group_answers(answers, langs):
        out += _answer(group)
    if not answers:
        out.append("<p class=\"muted\">No answers were attached to this flag.</p>")

    missing = missing_fact_counts(report, model, prompt_id, langs)
    if missing:
        items = "".join(
            f"<li>{_e(lang_name(x))}: {_e(fact)} <small>(missing from {k} of {total} answers)</small></li>"
            for x in langs
            for fact, k, total in missing.get(x, [])
        )
        out.append(f"<h4>Key facts left out</h4><ul class=\"tight\">{items}</ul>")
    out.append("</article>")
    return out


def render_html(report: Mapping[str, Any], images: Mapping[str, str] | None = None) -> str:
    """Render a whole run as one self-contained HTML page.

    Args:
        report: The dict the pipeline writes as report.json. Optional keys may be absent.
        images: Chart name ("rates", "categories") -> image path relative to the page; charts
            are shown in this order. Paths with a URL scheme are ignored.

    Returns:
        An HTML document with inline CSS and no script or external asset (the images aside):
        how to read it, the rates per model and language, the per-topic table, the charts, and
        every divergence with each answer's original text beside its back-translation.
    """
    body = _header(report) + _how_to_read(report) + _rates(report) + _models(report) + _gaps(report)
    body += _reference(report) + _topics(report) + _charts(images)
    notes = run_notes(report)
    if notes:
        body.append("<section id=\"notes\"><h2>About this run</h2><ul>"
                    + "".join(f"<li>{_e(n.strip())}</li>" for n in notes) + "</ul></section>")
    flags = sorted_flags(report.get("flags") or [])
    body.append(f"<section id=\"flags\"><h2>Divergences between languages ({len(flags)})</h2>")
    if not report.get("records") and not flags:
        body.append("<p>This run holds no answers and no divergences, so there is nothing to show.</p>")
    elif not flags:
        body.append("<p>No divergences between languages were flagged.</p>")
    for number, flag in enumerate(flags, start=1):
        body += _flag(report, flag, number)
    body.append("</section>")
    body += render_browser(report)
    title = f"xling report: {report.get('suite', '')} ({', '.join(ordered_langs(report))})"
    return "\n".join(
        [
            "<!doctype html>",
            "<html lang=\"en\">",
            "<head>",
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}{BROWSER_CSS}</style>",
            "</head>",
            "<body><main>",
            *body,
            "</main></body>",
            "</html>",
            "",
        ]
    )
