"""The summary printed at the end of a run: rates per language, the worst divergences, trust."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from xling.report._common import threshold_notes
from xling.report._common import (
    FLAG_NAMES,
    LOW_CHRF,
    NO_VALUE,
    rate_columns,
    comparison_rows,
    control_gap_rows,
    format_difference,
    format_p,
    gap_rows,
    measure_name,
    scope_name,
    short_model,
    format_ci,
    format_gap,
    format_pct,
    lang_name,
    ordered_langs,
    ordered_models,
    sorted_flags,
    summary_row,
    trust_note,
)


def _terminal_columns(report: Mapping[str, Any]):
    # The terminal table leaves out "uncertain" to fit 120 columns; the Markdown report has it.
    return tuple(col for col in rate_columns(report) if col.key != "uncertain")

_LEVEL_STYLES = {"high": "bold red", "medium": "yellow", "low": "cyan"}


def _rate_cell(entry: Mapping[str, Any] | None) -> Text:
    """ "33% (21–47)" with the interval dim, or "–"."""
    if not entry or format_pct(entry.get("rate")) == NO_VALUE:
        return Text(NO_VALUE, style="dim")
    cell = Text(format_pct(entry["rate"]))
    ci = format_ci(entry)
    if ci:
        cell.append(f" ({ci})", style="dim")
    return cell


def _rates_table(report: Mapping[str, Any], model: str, console: Console) -> Table:
    """A row per language while every cell fits on one line; else a row per share.

    Up to nine shares and three languages: the row-per-language layout, which matches the
    Markdown report, needs about 100 columns for the six usual shares and 140 with all nine;
    squeezed into 80, rich cuts headers and intervals ("Langu…", "(15–4…") or drops the last
    columns. Turned around, three language columns hold "100% (76–100)" whole in 65 columns.
    """
    by_language = _rates_by_language(report, model)
    natural_width = console.measure(by_language, options=console.options.update_width(10_000)).maximum
    return by_language if natural_width <= console.width else _rates_by_share(report, model)


def _rates_title(report: Mapping[str, Any], model: str) -> Text:
    return Text(f"{short_model(report, model)}: share of answers, with 95% range")


def _rates_by_language(report: Mapping[str, Any], model: str) -> Table:
    # No vertical rules (SIMPLE_HEAVY): the table is wide enough as it is.
    table = Table(title=_rates_title(report, model), title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("Language")
    table.add_column("n", justify="right")
    columns = _terminal_columns(report)
    for col in columns:
        # Two-word headers on two lines, so they do not widen their columns.
        table.add_column("\n".join(col.header.split()), justify="right")
    for lang in ordered_langs(report):
        row = summary_row(report, model, lang) or {}
        rates = row.get("rates") or {}
        table.add_row(
            Text(f"{lang_name(lang)} ({lang})"),
            _count_text(row.get("n")),
            *[_rate_cell(rates.get(col.key)) for col in columns],
        )
    return table


def _rates_by_share(report: Mapping[str, Any], model: str) -> Table:
    table = Table(title=_rates_title(report, model), title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("Share")
    langs = ordered_langs(report)
    rows = {lang: summary_row(report, model, lang) or {} for lang in langs}
    for lang in langs:
        # fold, not the ellipsis: should a cell not fit, its interval breaks but stays whole.
        table.add_column(f"{lang_name(lang)} ({lang})", justify="right", overflow="fold")
    table.add_row(Text("Answers (n)"), *[_count_text(rows[lang].get("n")) for lang in langs])
    for col in _terminal_columns(report):
        table.add_row(Text(col.header), *[_rate_cell((rows[lang].get("rates") or {}).get(col.key)) for lang in langs])
    return table


# With more models than this the terminal prints one overview table and the clearest differences
# from the base (a replay of SpeechMap's 25 models made 1,500 lines); report.en.md has them all.
MANY_MODELS = 4


def _overview_table(report: Mapping[str, Any], models: list[str]) -> Table:
    table = Table(title=Text("Per model and language: share answered (95% range), and refused · evaded · official "
                             "line, in %; each model's whole table is in report.en.md"),
                  title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("Model", overflow="fold")
    langs = ordered_langs(report)
    for lang in langs:
        table.add_column(f"{lang}\nanswered", justify="right", overflow="fold")
        table.add_column(f"{lang} refused ·\nevaded · official", justify="right")
    for model in models:
        cells = [Text(short_model(report, model))]
        for lang in langs:
            rates = (summary_row(report, model, lang) or {}).get("rates") or {}
            cells.append(_rate_cell(rates.get("substantive")))
            cells.append(Text(" · ".join(format_pct((rates.get(key) or {}).get("rate")).rstrip("%")
                                         for key in ("refusal", "evasion", "official_line"))))
        table.add_row(*cells)
    return table


def _count_text(n: Any) -> Text:
    return Text(str(n) if isinstance(n, int) else NO_VALUE)


def _flags_table(report: Mapping[str, Any], flags: list[Mapping[str, Any]], top: int) -> Table:
    several_models = len(ordered_models(report)) > 1
    shown = flags[:top]
    title = f"Top {len(shown)} of {len(flags)} divergences, worst first"
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("Type")
    table.add_column("Question", overflow="fold")  # ids are looked up; never cut them
    if several_models:
        table.add_column("Model", overflow="fold")  # "deepseek_d…" would not say which DeepSeek
    table.add_column("Langs")
    table.add_column("Level")
    table.add_column("What happened", ratio=1)
    for flag in shown:
        kind = str(flag.get("type", "?"))
        cells = [Text(FLAG_NAMES.get(kind, kind)), _question_text(flag)]
        if several_models:
            cells.append(Text(short_model(report, flag.get("model", "?"))))
        cells += [Text(_langs(flag)), _level_text(flag), Text(str(flag.get("summary", "")))]
        table.add_row(*cells)
    return table


def _question_text(flag: Mapping[str, Any]) -> Text:
    question = Text(str(flag.get("prompt_id", "?")))
    if flag.get("control_of"):
        question.append(" (control)", style="dim")
    return question


def _level_text(flag: Mapping[str, Any]) -> Text:
    """ "high 0.83": the level in its colour, the severity dim."""
    level = str(flag.get("level", "") or "")
    text = Text(level or NO_VALUE, style=_LEVEL_STYLES.get(level, ""))
    severity = flag.get("severity")
    if isinstance(severity, (int, float)) and not isinstance(severity, bool):
        text.append(f" {severity:.2f}", style="dim")
    return text


def _langs(flag: Mapping[str, Any]) -> str:
    return ", ".join(str(x) for x in flag.get("langs") or [])


def _control_gap_table(report: Mapping[str, Any], model: str) -> Table | None:
    # The China-specific part of the non-answer rate, which the rates table alone cannot show (a
    # model cautious about all politics declines the controls about other countries too).
    entries = control_gap_rows(report, model)
    if not entries:
        return None
    table = Table(title=Text("Non-answers: China questions vs their matched controls (other countries)"),
                  title_justify="left", box=box.SIMPLE_HEAVY)
    for header in ("Language", "Pairs", "China", "Controls"):
        table.add_column(header, justify="left" if header == "Language" else "right")
    table.add_column("Difference, 95% range", justify="right")
    for entry in entries:
        table.add_row(Text(f"{lang_name(entry.get('lang'))} ({entry.get('lang')})"), Text(str(entry.get("pairs", NO_VALUE))),
                      _rate_cell(entry.get("china")), _rate_cell(entry.get("control")),
                      Text(format_gap(entry), style="bold"))
    return table


def _p_text(row: Mapping[str, Any]) -> Text:
    p = row.get("p_holm")
    clear = isinstance(p, (int, float)) and p < 0.05
    return Text(format_p(p), style="bold" if clear else "")


def _test_name(row: Mapping[str, Any]) -> str:
    return str(row.get("test") or NO_VALUE).split(" (")[0]  # "McNemar exact", "Fisher exact"


def _difference_text(row: Mapping[str, Any], wide: bool) -> Text:
    """ "+58 points (+17 to +100)"; narrow, the range on a line of its own, so that it is never
    broken in the middle ("(+17" / "to +100)")."""
    text = format_difference(row)
    return Text(text if wide else text.replace(" (", "\n(", 1))


def _comparison_table(report: Mapping[str, Any], wide: bool = True) -> Table | None:
    rows = comparison_rows(report, "by language")
    if not rows:
        return None
    title = f"Difference from the base model {short_model(report, ordered_models(report)[0])}"
    if len(ordered_models(report)) > MANY_MODELS and len(rows) > COMPARISONS_SHOWN:
        title += f": the {COMPARISONS_SHOWN} clearest of {len(rows)} (all in report.en.md)"
        rows = _clearest(rows)[:COMPARISONS_SHOWN]
    title += " (95% range clustered by question; "
    # Narrow: the test moves into the title, as in the language-gap table, so that the other
    # columns fit 80 characters whole.
    title += "p adjusted by Holm)" if wide else f"p by {', '.join(sorted({_test_name(r) for r in rows}))}, adjusted by Holm)"
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAVY)
    headers = ("Language", "Model", "Measure", "Base rate", "Rate", "Difference") + (("Test",) if wide else ()) \
        + ("p (Holm)",)
    for header in headers:
        # Narrow: "Base\nrate" on two lines leaves the difference's range room for one line.
        table.add_column(header if wide else header.replace(" ", "\n"),
                         justify="left" if header in ("Language", "Model", "Measure", "Test") else "right",
                         overflow="fold" if header == "Model" else "ellipsis")
    for r in rows:
        cells = [Text(scope_name(r.get("lang"), r.get("category"))), Text(short_model(report, r.get("model"))),
                 Text(measure_name(r.get("measure"))), Text(format_pct(r.get("base_rate"))),
                 Text(format_pct(r.get("rate"))), _difference_text(r, wide)]
        cells += [Text(_test_name(r))] if wide else []
        table.add_row(*cells, _p_text(r))
    return table


# The terminal shows the clearest language gaps (and, for many models, differences from the
# base); the reports list them all.
GAPS_SHOWN = 8
COMPARISONS_SHOWN = 12


def _clearest(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Smallest adjusted p first, then the largest difference."""
    return sorted(rows, key=lambda r: (_number_or(r.get("p_holm"), 1.0), -abs(_number_or(r.get("difference"), 0.0))))


def _language_gap_table(report: Mapping[str, Any], wide: bool = True) -> Table | None:
    rows = gap_rows(report)
    if not rows:
        return None
    rows = _clearest(rows)
    several = len({str(r.get("model")) for r in rows}) > 1
    title = "Gaps between languages on the same questions"
    if not several:
        title += f" ({short_model(report, rows[0].get('model'))})"
    tests = sorted({_test_name(r) for r in rows})
    title += f"; 95% range clustered by question; p by {', '.join(tests)}, adjusted by Holm"
    if len(rows) > GAPS_SHOWN:
        title += f"; the {GAPS_SHOWN} clearest of {len(rows)} (all in report.en.md)"
    table = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAVY)
    headers = (("Model",) if several else ()) + ("Languages", "Measure", "First", "Second", "Difference") \
        + (("Test",) if wide else ()) + ("p (Holm)",)
    for header in headers:
        table.add_column(header, justify="left" if header in ("Model", "Languages", "Measure", "Test") else "right",
                         overflow="fold" if header == "Model" else "ellipsis")
    for r in rows[:GAPS_SHOWN]:
        cells = [Text(short_model(report, r.get("model")))] if several else []
        cells += [Text(f"{r.get('lang_a')} vs {r.get('lang_b')}"), Text(measure_name(r.get("measure"))),
                  Text(format_pct(r.get("rate_a"))), Text(format_pct(r.get("rate_b"))), _difference_text(r, wide)]
        cells += [Text(_test_name(r))] if wide else []
        table.add_row(*cells, _p_text(r))
    return table


def _number_or(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


# Below this many columns the divergences print as a list: a six-column table squeezes the
# "what happened" column into a word per line.
WIDE_ENOUGH_FOR_TABLE = 110


def _flags_list(report: Mapping[str, Any], flags: list[Mapping[str, Any]], top: int) -> Group:
    several_models = len(ordered_models(report)) > 1
    shown = flags[:top]
    items: list[Any] = [Text(f"Top {len(shown)} of {len(flags)} divergences, worst first", style="italic")]
    for number, flag in enumerate(shown, start=1):
        kind = str(flag.get("type", "?"))
        head = Text(f"{number}. ").append_text(_question_text(flag))
        if several_models:
            head.append(f" [{short_model(report, flag.get('model', '?'))}]", style="dim")
        head.append(": ")
        head.append(FLAG_NAMES.get(kind, kind), style="bold")
        body = _level_text(flag).append(f" · {_langs(flag)} · {flag.get('summary', '')}")
        items += [head, Padding(body, (0, 0, 0, 3))]
    return Group(*items)


def print_summary(report: Mapping[str, Any], console: Console | None = None, top: int = 10) -> None:
    """Print the end-of-run summary of a report.

    One table per model with a row per language (answers, and the share answered, refused,
    evaded, official line, wrong language and cut off, each with its 95% range; a row per share
    where the console is too narrow for that), then the
    `top` divergences by severity, the back-translation quality and the signature.

    Args:
        report: The dict the pipeline writes as report.json. Optional keys may be absent.
        console: Where to print; a default Console, which honours NO_COLOR, when None.
        top: How many divergences to list.
    """
    console = console or Console()
    # Everything goes through Text (never a plain str), because rich would read "[...]" in a
    # model name or a flag summary as console markup.
    models = ordered_models(report)
    if not report.get("summary") and not report.get("records"):
        console.print("No answers in this report: nothing to summarise.", markup=False)
    else:
        if len(models) > MANY_MODELS:
            console.print(_overview_table(report, models))
        for model in models if len(models) <= MANY_MODELS else ():
            console.print(_rates_table(report, model, console))
            gaps = _control_gap_table(report, model)
            if gaps is not None:
                console.print(gaps)
        wide = console.width >= WIDE_ENOUGH_FOR_TABLE
        for table in (_comparison_table(report, wide), _language_gap_table(report, wide)):
            if table is not None:
                console.print(table)

    flags = sorted_flags(report.get("flags") or [])
    if flags:
        wide = console.width >= WIDE_ENOUGH_FOR_TABLE
        console.print(_flags_table(report, flags, top) if wide else _flags_list(report, flags, top))
    else:
        console.print("No divergences between languages were flagged.", markup=False)

    quality = report.get("translation_quality") or {}
    if quality:
        parts = []
        for lang, entry in quality.items():
            chrf = (entry or {}).get("chrf")
            if isinstance(chrf, (int, float)):
                parts.append(f"{lang} chrF {chrf:.1f}" + (" (low: check originals)" if chrf < LOW_CHRF else "")
                             + (f", {entry['answers_passed']}/{entry['answers_checked']} answers passed the checks "
                                f"({entry['verdict']})" if "verdict" in entry else ""))
        console.print(
            Text("Back-translation quality (questions vs English, 0-100, higher is better): ")
            + Text("; ".join(parts) or NO_VALUE)
        )
        for lang, entry in quality.items():
            chrf = (entry or {}).get("chrf")
            if isinstance(chrf, (int, float)) and chrf < LOW_CHRF:
                console.print(Text("Warning: " + trust_note(entry, lang), style="yellow"))
    for note in threshold_notes(report):
        console.print(Text(note))
    # soft_wrap: the signature is one token meant to be copied whole, so rich must not break it.
    console.print(Text(f"signature: {report.get('signature', 'unknown')}", style="dim"), soft_wrap=True)
