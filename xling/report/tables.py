"""The tables a researcher cites, computed from report.json's records alone (so `xling report`
rebuilds them and a test can recompute them): rates per model with clustered intervals, every
model against the first (the base), each model's gaps between languages, and the reference
study's Table 1 and Table 2 with its refusal dictionary beside xling's labels.

Every row is flat (no nesting), so the tables export as CSV and Parquet as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any, NamedTuple

from xling.detect.lexicon import REFERENCE_DICTIONARY
from xling.stats import (
    CLUSTER_METHOD,
    TEST_METHOD,
    Clustered,
    cluster_difference,
    cluster_rate,
    fisher_exact_p,
    holm,
    mcnemar_exact,
    rounded,
)

ALL = "all"
MCNEMAR = "McNemar exact (paired questions)"
FISHER = "Fisher exact"
NO_TEST = "none (no answer has this label on either side)"

Record = Mapping[str, Any]


class Measure(NamedTuple):
    """One column of the comparison tables: which records count, and which records it is over."""

    key: str
    header: str
    counts: Callable[[Record], bool]
    over: Callable[[Record], bool]


def outcome(record: Record) -> str:
    return str(record.get("outcome") or "answer")


def _answered(record: Record) -> bool:
    return outcome(record) == "answer"


def _every(record: Record) -> bool:
    return True


def _label(name: str) -> Callable[[Record], bool]:
    return lambda record: record.get("label") == name


def _drifted(record: Record) -> bool:
    return record.get("answer_lang") not in (record.get("lang"), "unknown", None)


# Label rates are over the answers the model gave; "blocked" is over every request, since a
# blocked request has no answer to label.
MEASURES: tuple[Measure, ...] = (
    Measure("substantive", "Answered", _label("substantive"), _answered),
    Measure("refusal", "Refused", _label("refusal"), _answered),
    Measure("evasion", "Evaded", _label("evasion"), _answered),
    Measure("official_line", "Official line", _label("official_line"), _answered),
    Measure("degenerate", "Degenerate", _label("degenerate"), _answered),
    Measure("wrong_language", "Wrong language", _drifted, _answered),
    Measure("blocked", "Blocked by the provider", lambda r: outcome(r) == "blocked", _every),
)
MEASURE_NAMES = {m.key: m.header for m in MEASURES}


def dictionary_refusal(text: str) -> bool:
    return any(term in text for term in REFERENCE_DICTIONARY)


def _clusters(records: Sequence[Record], measure: Measure) -> dict[str, tuple[int, int]]:
    """Question id -> (answers with the measure, answers it is over)."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        if measure.over(record):
            cell = out[str(record.get("prompt_id"))]
            cell[0] += bool(measure.counts(record))
            cell[1] += 1
    return {q: (k, n) for q, (k, n) in out.items() if n}


def _clustered(counts: Mapping[str, tuple[int, int]], ids: Sequence[str]) -> Clustered:
    return Clustered.of([counts[q] for q in ids])


def _rate_row(counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    ids = sorted(counts)
    c = _clustered(counts, ids)
    low, high = cluster_rate(c)
    return {"k": int(c.k.sum()), "n": int(c.n.sum()), "questions": len(ids), "rate": rounded(c.rate),
            "ci_low": rounded(low), "ci_high": rounded(high)}


def _difference(a: Mapping[str, tuple[int, int]], b: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """rate(a) - rate(b): paired (McNemar) when both sides are the same questions, else Fisher."""
    paired = set(a) == set(b)
    ids_a, ids_b = sorted(a), sorted(b)
    ca, cb = _clustered(a, ids_a), _clustered(b, ids_b)
    low, high = cluster_difference(ca, cb, paired)
    if not ca.k.sum() and not cb.k.sum():
        test, p = NO_TEST, float("nan")
    elif paired:
        test, p = MCNEMAR, mcnemar_exact(ca.majority, cb.majority)
    else:
        test, p = FISHER, fisher_exact_p(ca.majority, cb.majority)
    return {"difference": rounded(ca.rate - cb.rate), "ci_low": rounded(low), "ci_high": rounded(high),
            "test": test, "p": rounded(p, 6), "paired_questions": len(ids_a) if paired else 0}


def _scopes(records: Sequence[Record], langs: Sequence[str]) -> list[tuple[str, str, str]]:
    """(family, lang, category) of every table row: each language, all languages, each category."""
    categories = sorted({str(r.get("category")) for r in records})
    return ([("by language", lang, ALL) for lang in [*langs, ALL]]
            + [("by category", ALL, category) for category in categories])


def _in_scope(records: Sequence[Record], model: str, lang: str, category: str) -> list[Record]:
    return [r for r in records if r.get("model") == model and (lang == ALL or r.get("lang") == lang)
            and (category == ALL or str(r.get("category")) == category)]


def _apply_holm(rows: list[dict[str, Any]], family_key: str | None) -> None:
    families: dict[Any, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        families[row.get(family_key) if family_key else None].append(i)
    for members in families.values():
        adjusted = holm([float("nan") if rows[i]["p"] is None else rows[i]["p"] for i in members])
        for i, p in zip(members, adjusted):
            rows[i]["p_holm"] = rounded(p, 6)


def model_rates(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for model in models:
        for family, lang, category in _scopes(records, langs):
            mine = _in_scope(records, model, lang, category)
            for measure in MEASURES:
                counts = _clusters(mine, measure)
                if counts:
                    rows.append({"model": model, "family": family, "lang": lang, "category": category,
                                 "measure": measure.key, **_rate_row(counts)})
    return rows


def model_comparisons(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> list[dict[str, Any]]:
    """Every model after the first against the first, per scope and measure."""
    rows: list[dict[str, Any]] = []
    if len(models) < 2:
        return rows
    base = models[0]
    for model in models[1:]:
        for family, lang, category in _scopes(records, langs):
            theirs, ours = _in_scope(records, base, lang, category), _in_scope(records, model, lang, category)
            for measure in MEASURES:
                a, b = _clusters(ours, measure), _clusters(theirs, measure)
                if not a or not b:
                    continue
                rows.append({"model": model, "base": base, "family": family, "lang": lang, "category": category,
                             "measure": measure.key, "rate": _rate_row(a)["rate"], "base_rate": _rate_row(b)["rate"],
                             "n": sum(n for _, n in a.values()), "base_n": sum(n for _, n in b.values()),
                             **_difference(a, b)})
    _apply_holm(rows, "family")
    return rows


def language_gaps(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> list[dict[str, Any]]:
    """Per model and pair of languages: the difference on the questions asked in both (paired)."""
    rows: list[dict[str, Any]] = []
    for model in models:
        for lang_a, lang_b in combinations(langs, 2):
            for measure in MEASURES:
                a = _clusters(_in_scope(records, model, lang_a, ALL), measure)
                b = _clusters(_in_scope(records, model, lang_b, ALL), measure)
                common = set(a) & set(b)
                if not common:
                    continue
                a = {q: a[q] for q in common}
                b = {q: b[q] for q in common}
                rows.append({"model": model, "lang_a": lang_a, "lang_b": lang_b, "measure": measure.key,
                             "rate_a": _rate_row(a)["rate"], "rate_b": _rate_row(b)["rate"],
                             "n_a": sum(n for _, n in a.values()), "n_b": sum(n for _, n in b.values()),
                             **_difference(a, b)})
    _apply_holm(rows, None)
    return rows


_NON_ANSWER = Measure("non_answer", "Not answered", lambda r: r.get("label") != "substantive", _answered)
_DICTIONARY = Measure("dictionary_refusal", "Dictionary refusal",
                      lambda r: dictionary_refusal(str(r.get("text") or "")), _answered)
_MISSED = Measure("missed_by_dictionary", "Not answered, missed by the dictionary",
                  lambda r: r.get("label") != "substantive" and not dictionary_refusal(str(r.get("text") or "")),
                  _answered)


def reference_tables(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> list[dict[str, Any]]:
    """The reference study's Table 1 (per model and language) and Table 2 (per category), with
    the dictionary's refusal rate beside xling's non-answer rate and what the dictionary misses."""
    rows = []
    for model in models:
        scopes = [("table1", lang, ALL) for lang in langs]
        scopes += [("table2", lang, category) for lang in langs
                   for category in sorted({str(r.get("category")) for r in records if r.get("lang") == lang})]
        for table, lang, category in scopes:
            mine = _in_scope(records, model, lang, category)
            entry: dict[str, Any] = {"table": table, "model": model, "lang": lang, "category": category}
            for measure in (_NON_ANSWER, _DICTIONARY, _MISSED):
                counts = _clusters(mine, measure)
                if not counts:
                    break
                stats = _rate_row(counts)
                entry.update({"n": stats["n"], "questions": stats["questions"], f"{measure.key}_k": stats["k"],
                              f"{measure.key}_rate": stats["rate"], f"{measure.key}_ci_low": stats["ci_low"],
                              f"{measure.key}_ci_high": stats["ci_high"]})
            else:
                rows.append(entry)
    return rows


def build_tables(report: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison keys of report.json, from its records, models and languages."""
    records = [r for r in report.get("records") or [] if isinstance(r, Mapping)]
    models = list(report.get("models") or dict.fromkeys(str(r.get("model")) for r in records))
    langs = list(report.get("langs") or dict.fromkeys(str(r.get("lang")) for r in records))
    return {
        "statistics": {
            "base_model": models[0] if models else None,
            "intervals": CLUSTER_METHOD,
            "tests": TEST_METHOD,
            "holm_families": {"model_comparisons": "each family ('by language', 'by category') separately",
                              "language_gaps": "all language gaps of the run together"},
            "measures": {m.key: m.header for m in MEASURES},
            "reference_dictionary": list(REFERENCE_DICTIONARY),
        },
        "model_rates": model_rates(records, models, langs),
        "model_comparisons": model_comparisons(records, models, langs),
        "language_gaps": language_gaps(records, models, langs),
        "reference_tables": reference_tables(records, models, langs),
    }


def with_tables(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report with its comparison keys, computed when an older report.json lacks them."""
    if all(key in report for key in ("statistics", "model_rates", "model_comparisons", "language_gaps")):
        return dict(report)
    return {**report, **build_tables(report)}


def significant(row: Mapping[str, Any], alpha: float = 0.05) -> bool:
    p = row.get("p_holm")
    return isinstance(p, (int, float)) and p < alpha

