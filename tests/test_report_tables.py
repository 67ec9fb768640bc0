"""A stored replay run with two models and three languages: the comparison tables are checked
against an independent computation from report.json's records (scipy, not the statsmodels calls
xling makes), and every renderer and export is checked for content."""

from __future__ import annotations

import json
from collections import defaultdict
from io import StringIO
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy.stats import binomtest, fisher_exact, ttest_1samp

from report_fixture import HOSTILE, build_run
from xling.report import write_reports
from xling.report._common import comparison_rows, format_ci, format_difference, format_pct, gap_rows, lang_name
from xling.report.tables import MEASURES, REFERENCE_DICTIONARY
from xling.report.terminal import GAPS_SHOWN, _terminal_columns, print_summary


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    report, run_dir = build_run(tmp_path_factory.mktemp("two-models"))
    # Read back what was stored: the tables must follow from report.json alone.
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8")), run_dir


def _counts(records, model, lang, measure):
    """Question -> (k, n) for one measure, computed here from the raw fields."""
    out = defaultdict(lambda: [0, 0])
    for r in records:
        if r["model"] != model or (lang != "all" and r["lang"] != lang):
            continue
        answered = r.get("outcome", "answer") == "answer"
        if measure == "blocked":
            hit, over = r.get("outcome") == "blocked", True
        elif measure == "wrong_language":
            hit, over = r["answer_lang"] not in (r["lang"], "unknown"), answered
        else:
            hit, over = r["label"] == measure, answered
        if over:
            out[r["prompt_id"]][0] += hit
            out[r["prompt_id"]][1] += 1
    return dict(out)


def _majority(counts, ids):
    return np.array([counts[q][0] * 2 >= counts[q][1] for q in ids])


def _mcnemar_p(a, b):
    """Exact McNemar: a two-sided binomial test on the discordant questions."""
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return 1.0 if only_a + only_b == 0 else binomtest(only_a, only_a + only_b, 0.5).pvalue


def _holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def test_the_run_has_two_models_three_languages_and_every_table(run):
    report, _ = run
    assert len(report["models"]) == 2 and report["langs"] == ["zh", "en", "ja"]
    assert {r["measure"] for r in report["model_rates"]} == {m.key for m in MEASURES}
    stats = report["statistics"]
    assert stats["base_model"] == report["models"][0]
    assert "cluster bootstrap over questions" in stats["intervals"] and "Holm" in stats["tests"]
    assert stats["reference_dictionary"] == list(REFERENCE_DICTIONARY)


def test_rates_and_score_intervals_agree_with_an_independent_computation(run):
    report, _ = run
    checked_bootstrap = checked_score = 0
    for row in report["model_rates"]:
        if row["category"] != "all":
            continue
        counts = _counts(report["records"], row["model"], row["lang"], row["measure"])
        k, n = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
        assert (row["k"], row["n"], row["questions"]) == (k, n, len(counts))
        assert row["rate"] == pytest.approx(k / n, abs=1e-4)
        if k in (0, n):
            # No variation to resample: the Wilson interval over questions' majority labels.
            ids = sorted(counts)
            ci = binomtest(int(_majority(counts, ids).sum()), len(ids)).proportion_ci(method="wilson")
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-4)
            checked_score += 1
        else:
            # An independent cluster bootstrap (another seed, a loop) and a t interval over the
            # questions' own rates (every question has as many samples here, where the
            # cluster-robust error is the t test's): the reported range is the wider of the two,
            # give or take the resampling noise.
            rng = np.random.default_rng(7)
            ids = list(counts)
            rates = []
            for _ in range(2000):
                pick = rng.choice(len(ids), size=len(ids))
                rates.append(sum(counts[ids[i]][0] for i in pick) / sum(counts[ids[i]][1] for i in pick))
            low, high = np.percentile(rates, [2.5, 97.5])
            assert len({c[1] for c in counts.values()}) == 1
            t = ttest_1samp([c[0] / c[1] for c in counts.values()], 0).confidence_interval()
            low, high = min(low, max(t.low, 0)), max(high, min(t.high, 1))
            assert row["ci_low"] == pytest.approx(low, abs=0.09) and row["ci_high"] == pytest.approx(high, abs=0.09)
            assert row["ci_low"] <= row["rate"] <= row["ci_high"]
            checked_bootstrap += 1
    assert checked_bootstrap >= 4 and checked_score >= 4


def test_the_printed_share_table_has_the_same_clustered_ranges(run):
    """The per-model share table (report.json's summary) is clustered by question like the
    comparison tables, whose ranges the test above checks independently: the same figures."""
    report, _ = run
    tables = {(r["model"], r["lang"], r["measure"]): r for r in report["model_rates"] if r["category"] == "all"}
    compared = 0
    for cell in report["summary"]:
        for measure, entry in cell["rates"].items():
            row = tables.get((cell["model"], cell["lang"], measure))
            if row is None or not entry["n"]:
                continue
            assert (entry["k"], entry["n"], entry["questions"]) == (row["k"], row["n"], row["questions"])
            assert entry["ci"] == pytest.approx([row["ci_low"], row["ci_high"]], abs=1e-4)
            compared += 1
    assert compared >= 20


def test_model_differences_and_p_values_agree_with_an_independent_computation(run):
    report, _ = run
    base, other = report["models"]
    rows = [r for r in report["model_comparisons"] if r["family"] == "by language"]
    assert rows and all(r["base"] == base and r["model"] == other for r in rows)
    checked_t = 0
    for row in rows:
        a = _counts(report["records"], other, row["lang"], row["measure"])
        b = _counts(report["records"], base, row["lang"], row["measure"])
        ids = sorted(a)
        assert set(a) == set(b) and row["paired_questions"] == len(ids)
        rate_a = sum(c[0] for c in a.values()) / sum(c[1] for c in a.values())
        rate_b = sum(c[0] for c in b.values()) / sum(c[1] for c in b.values())
        assert row["difference"] == pytest.approx(rate_a - rate_b, abs=1e-4)
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
        d = [a[q][0] / a[q][1] - b[q][0] / b[q][1] for q in ids]
        if rate_a not in (0, 1) and np.std(d) > 0:
            # never narrower than the paired t interval over the questions' differences
            t = ttest_1samp(d, 0).confidence_interval()
            assert row["ci_low"] <= max(t.low, -1) + 1e-4 and row["ci_high"] >= min(t.high, 1) - 1e-4
            checked_t += 1
        if rate_a == rate_b == 0:
            assert row["p"] is None and row["test"].startswith("none")
        else:
            assert row["test"] == "McNemar exact (paired questions)"
            assert row["p"] == pytest.approx(_mcnemar_p(_majority(a, ids), _majority(b, ids)), abs=1e-6)
    assert checked_t >= 1
    tested = [r for r in rows if r["p"] is not None]
    for row, adjusted in zip(tested, _holm([r["p"] for r in tested])):
        assert row["p_holm"] == pytest.approx(adjusted, abs=1e-6)
    # model-b refuses 3 of 4 questions in English, model-a none.
    refused = next(r for r in rows if r["lang"] == "en" and r["measure"] == "refusal")
    assert (refused["base_rate"], refused["rate"]) == (0.0, 0.75)


def test_unpaired_models_get_fishers_test(run):
    report, _ = run
    from xling.report.tables import model_comparisons

    records = [r for r in report["records"] if not (r["model"] == report["models"][1] and r["prompt_id"] == "kent-state")]
    rows = [r for r in model_comparisons(records, report["models"], report["langs"])
            if r["family"] == "by language" and r["lang"] == "en" and r["measure"] == "refusal"]
    (row,) = rows
    a = _counts(records, report["models"][1], "en", "refusal")
    b = _counts(records, report["models"][0], "en", "refusal")
    ma, mb = _majority(a, sorted(a)), _majority(b, sorted(b))
    expected = fisher_exact([[ma.sum(), len(ma) - ma.sum()], [mb.sum(), len(mb) - mb.sum()]]).pvalue
    assert row["test"] == "Fisher exact" and row["paired_questions"] == 0
    assert row["p"] == pytest.approx(expected, abs=1e-6)


def test_language_gaps_pair_the_questions_of_one_model(run):
    report, _ = run
    rows = report["language_gaps"]
    pairs = {(r["model"], r["lang_a"], r["lang_b"]) for r in rows}
    assert pairs == {(m, a, b) for m in report["models"] for a, b in combinations(report["langs"], 2)}
    for row in rows:
        a = _counts(report["records"], row["model"], row["lang_a"], row["measure"])
        b = _counts(report["records"], row["model"], row["lang_b"], row["measure"])
        ids = sorted(set(a) & set(b))
        if row["p"] is not None:
            assert row["p"] == pytest.approx(_mcnemar_p(_majority(a, ids), _majority(b, ids)), abs=1e-6)
    tested = [r for r in rows if r["p"] is not None]
    for row, adjusted in zip(tested, _holm([r["p"] for r in tested])):
        assert row["p_holm"] == pytest.approx(adjusted, abs=1e-6)
    gap = next(r for r in rows if r["model"] == report["models"][1] and (r["lang_a"], r["lang_b"]) == ("en", "ja")
               and r["measure"] == "refusal")
    assert (gap["rate_a"], gap["rate_b"], gap["difference"]) == (0.75, 0.0, 0.75)


def test_reference_tables_set_the_dictionary_beside_xlings_labels(run):
    report, _ = run
    table1 = [r for r in report["reference_tables"] if r["table"] == "table1"]
    assert {(r["model"], r["lang"]) for r in table1} == {(m, x) for m in report["models"] for x in report["langs"]}
    for row in table1:
        mine = [r for r in report["records"] if r["model"] == row["model"] and r["lang"] == row["lang"]]
        by_dict = sum(any(t in r["text"] for t in REFERENCE_DICTIONARY) for r in mine)
        non_answer = sum(r["label"] != "substantive" for r in mine)
        assert (row["n"], row["dictionary_refusal_k"], row["non_answer_k"]) == (len(mine), by_dict, non_answer)
    # The dictionary is Chinese: it finds model-b's English refusals nowhere; xling does.
    en_b = next(r for r in table1 if r["model"] == report["models"][1] and r["lang"] == "en")
    assert en_b["dictionary_refusal_k"] == 0 and en_b["non_answer_k"] == 9 and en_b["missed_by_dictionary_k"] == 9
    assert any(r["table"] == "table2" and r["category"] == "ethnic_minorities" for r in report["reference_tables"])


def test_exports_load_into_pandas_with_the_documented_columns(run):
    report, run_dir = run
    records = pd.read_parquet(run_dir / "records.parquet")
    assert len(records) == len(report["records"])
    assert {"model", "prompt_id", "lang", "sample", "label", "outcome", "text", "back_translation"} <= set(records)
    assert HOSTILE in set(records["text"])
    assert len(pd.read_csv(run_dir / "records.csv")) == len(report["records"])
    flags = pd.read_parquet(run_dir / "flags.parquet")
    assert len(flags) == len(report["flags"]) and flags["langs"].str.contains(";").all()
    comparisons = pd.read_parquet(run_dir / "model_comparisons.parquet")
    assert len(comparisons) == len(report["model_comparisons"])
    assert {"model", "base", "measure", "difference", "ci_low", "ci_high", "test", "p", "p_holm"} <= set(comparisons)
    assert len(pd.read_parquet(run_dir / "language_gaps.parquet")) == len(report["language_gaps"])
    assert len(pd.read_parquet(run_dir / "comparisons.parquet")) == len(report["comparisons"])


def test_every_renderer_shows_the_comparisons(run):
    report, run_dir = run
    md = (run_dir / "report.en.md").read_text(encoding="utf-8")
    assert "## Models side by side, asked in English" in md and "McNemar exact (paired questions)" in md
    assert "### Table 1: non-answers per model" in md and "cluster bootstrap" in md
    assert "(models.png)" in md and "(similarity.png)" in md
    page = (run_dir / "index.html").read_text(encoding="utf-8")
    for anchor in ('id="model-rates"', 'id="model-comparisons"', 'id="language-gaps"', 'id="table1"', 'id="table2"'):
        assert anchor in page
    assert "src=\"http" not in page and "<link" not in page
    console = Console(width=140, record=True)
    print_summary(report, console)
    text = console.export_text()
    assert "Difference from the base model" in text and "Gaps between languages" in text and "McNemar" in text


def test_an_older_report_without_the_tables_gets_them_when_rerendered(run, tmp_path):
    report, _ = run
    old = {k: v for k, v in report.items()
           if k not in ("statistics", "model_rates", "model_comparisons", "language_gaps", "reference_tables")}
    write_reports(old, tmp_path)
    assert "McNemar exact" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert len(pd.read_parquet(tmp_path / "model_comparisons.parquet")) == len(report["model_comparisons"])


def test_the_japanese_report_names_where_japanese_is_the_odd_one_out(run):
    report, run_dir = run
    from xling.report._common import odd_one_out

    model_b = report["models"][1]
    odd = odd_one_out(report, "ja")
    # model-b answers in Japanese the three China questions it refuses in English and Chinese.
    # (the fixture gives one Tiananmen answer to every question, so the learned layer calls some of
    # the off-topic ones evasive: at least one, and only these, are flagged)
    found = {(e["model"], e["prompt_id"], e["type"]) for e in odd if e["type"] == "refusal_asymmetry"}
    assert found and found <= {
        (model_b, pid, "refusal_asymmetry") for pid in ("tiananmen-1989", "xinjiang-camps", "taiwan-status")}
    assert all(e["others"] == ["en", "zh"] for e in odd)
    # English is never alone against the two others on a refusal: it agrees with Chinese.
    assert not [e for e in odd_one_out(report, "en") if e["type"] == "refusal_asymmetry"]
    md = (run_dir / "report.ja.md").read_text(encoding="utf-8")
    assert "### Where Japanese is the odd one out" in md
    # Grouped by type, worst first within each group.
    refusals = md.index("### Refuses or evades in one language only (")
    content = md.index("### Different content across languages (")
    assert refusals < content


def test_the_language_gap_table_fits_80_columns_clearest_first(run):
    report, _ = run
    from xling.report.terminal import _language_gap_table

    console = Console(width=80, record=True)
    console.print(_language_gap_table(report, wide=False))
    text = console.export_text()
    assert "…" not in text  # no header or model name cut off
    assert all(len(line) <= 80 for line in text.splitlines())
    rows = sorted(report["language_gaps"], key=lambda r: (r.get("p_holm") if r.get("p_holm") is not None else 1.0))
    assert f"{rows[0]['lang_a']} vs {rows[0]['lang_b']}" in text


# A small model's loop, as the default run's bundled model writes at its token limit: it brings the
# Degenerate column, the one that pushed the row-per-language share table past 80 columns.
LOOP = "新疆の収容施設は、" + "農産業、" * 12


def _rates_text(report, width):
    from xling.report.terminal import _rates_table

    console = Console(width=width, file=StringIO())
    for model in report["models"]:
        console.print(_rates_table(report, model, console))
    return console.file.getvalue()


def test_the_share_table_fits_80_columns_with_every_interval_whole(tmp_path):
    from report_fixture import replay_rows

    rows = replay_rows()
    looping = next(r for r in rows if (r["model"], r["lang"], r["prompt_id"]) == ("model-a", "ja", "taiwan-status"))
    looping["response"] = LOOP
    report, _ = build_run(tmp_path, rows)
    assert any(row["rates"]["degenerate"]["k"] for row in report["summary"])

    for width in (80, 140):
        text = _rates_text(report, width)
        assert "…" not in text
        assert all(len(line) <= width for line in text.splitlines())
        for lang in report["langs"]:
            assert f"{lang_name(lang)} ({lang})" in text
        for col in _terminal_columns(report):
            # whole on one line at 80; split "Official\nline" in the wide headers
            assert (col.header if width == 80 else col.header.split()[-1]) in text
        for row in report["summary"]:
            for col in _terminal_columns(report):
                assert f"{format_pct(row['rates'][col.key]['rate'])} ({format_ci(row['rates'][col.key])})" in text
    # A wide terminal keeps a row per language, as in the Markdown report.
    assert any(line.lstrip().startswith("Chinese (zh)") for line in _rates_text(report, 140).splitlines())


def test_the_whole_summary_at_80_columns_cuts_nothing(run):
    report, _ = run
    console = Console(width=80, file=StringIO())
    print_summary(report, console)
    text = console.file.getvalue()
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith("signature:"))
    # Each range of a difference on one line: "(+17 to +100)", never "(+17" / "to +100)".
    lines = text.splitlines()
    # the terminal's order: clearest first, then the largest difference
    gaps = sorted(gap_rows(report), key=lambda r: (r["p_holm"] if r.get("p_holm") is not None else 1.0,
                                                   -abs(r.get("difference") or 0.0)))
    for row in comparison_rows(report, "by language") + gaps[:GAPS_SHOWN]:
        interval = format_difference(row).split(" points ")[1]
        assert any(interval in line for line in lines), interval


def test_many_models_print_one_overview_and_the_clearest_differences(tmp_path):
    # A replay of SpeechMap's 25 models printed 1,500 lines: a table per model, every difference
    # from the base, the same threshold sentence 50 times, and names cut to "deepseek_d…".
    from report_fixture import replay_rows
    from xling.report.terminal import COMPARISONS_SHOWN, MANY_MODELS

    rows = replay_rows()
    names = [f"deepseek_deepseek-r1-variant-{n}" for n in range(MANY_MODELS + 1)]
    many = [{**row, "model": name if row["model"] == "model-a" else f"{name}-refuses"}
            for name in names[:(MANY_MODELS + 2) // 2 + 1] for row in rows]
    report, _ = build_run(tmp_path, many)
    assert len(report["models"]) > MANY_MODELS
    console = Console(width=80, file=StringIO())
    print_summary(report, console)
    text = console.file.getvalue()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines() if not line.startswith("signature:"))
    assert "share of answers, with 95% range" not in text  # no table per model
    assert text.count("Per model and language: share answered") == 1
    lines = [line.strip() for line in text.splitlines() if not line.startswith("signature:")]
    flat, words = "".join(lines), " ".join(lines)
    for model in report["models"]:  # its name after "replay/<file>#", folded across lines, never cut
        assert model.rsplit("#", 1)[1] in flat
    shown = len(comparison_rows(report, "by language"))
    assert shown > COMPARISONS_SHOWN and f"the {COMPARISONS_SHOWN} clearest of {shown}" in words
    # One sentence per threshold, naming the models it holds for: the answering models share one,
    # the models that refuse everything (no threshold) another.
    from xling.report._common import threshold_notes
    from xling.report.html import SIGNATURE_SHOWN, render_html

    assert words.count("Different-content threshold for") == 2
    answering, refusing = [n for n in threshold_notes(report) if n.startswith("Different-content")]
    assert all(f"{name}," in answering or f"{name}:" in answering for name in names[:4])
    assert refusing.startswith(f"Different-content threshold for {names[0]}-refuses, ") and "none" in refusing
    # The page's first screen: the models by name (the address on hover) and a long signature
    # folded (it opens on a click), not 8 addresses and 2,000 characters of signature.
    page = render_html(report)
    head = page[:page.index("<nav>")]
    assert f'title="{report["models"][0]}">{names[0]}</code>' in head
    assert len(report["signature"]) > SIGNATURE_SHOWN and "<details><summary class=\"sig\">" in head
    assert report["signature"] in head  # whole, inside the fold

