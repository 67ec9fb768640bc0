"""Rates, their intervals, and the China-minus-controls gap."""

from __future__ import annotations

import math

import pytest

from xling.pipeline import control_gaps
from xling.schema import Label, Record
from xling.stats import Gap, Rate, difference_interval


def test_difference_interval_matches_newcombes_worked_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 vs 48/80,
    # method 10 gives 0.0524 to 0.3339.
    low, high = difference_interval(Rate(56, 70), Rate(48, 80))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_difference_interval_stays_sound_at_the_edges() -> None:
    low, high = difference_interval(Rate(0, 10), Rate(0, 10))
    assert low < 0 < high and -1 <= low and high <= 1
    low, high = difference_interval(Rate(10, 10), Rate(0, 10))
    assert 0 < low < 1 and high == pytest.approx(1.0)
    assert all(math.isnan(x) for x in difference_interval(Rate(0, 0), Rate(1, 2)))


def test_gap_to_dict_says_none_without_answers() -> None:
    assert Gap(Rate(0, 0), Rate(1, 2)).to_dict()["gap"] is None
    entry = Gap(Rate(3, 4), Rate(1, 4)).to_dict()
    assert entry["gap"] == 0.5 and entry["ci"][0] < 0.5 < entry["ci"][1]


def _record(prompt_id: str, label: Label, variant: str = "direct", base: str | None = None,
            lang: str = "en", sample: int = 0) -> Record:
    return Record(key=f"{prompt_id}-{lang}-{sample}", model="m", prompt_id=prompt_id, lang=lang, sample=sample,
                  category="democracy_movements", variant=variant, prompt="?", text="...", reasoning="",
                  truncated=False, answer_lang=lang, back_translation="...", label=label, confidence=0.9,
                  evidence="", base=base)


def test_control_gaps_pair_each_control_with_the_question_it_mirrors() -> None:
    records = [
        *[_record("tiananmen", Label.REFUSAL, sample=s) for s in range(2)],
        *[_record("taiwan", lb, sample=s) for s, lb in enumerate((Label.OFFICIAL_LINE, Label.SUBSTANTIVE))],
        *[_record("kent-state", Label.SUBSTANTIVE, "control", "tiananmen", sample=s) for s in range(2)],
        *[_record("crimea", lb, "control", "taiwan", sample=s) for s, lb in enumerate((Label.SUBSTANTIVE, Label.EVASION))],
        # Not part of any pair: a sensitive question without a control, and a control whose
        # question is not in this run.
        _record("xinjiang", Label.REFUSAL),
        _record("ctrl-orphan", Label.REFUSAL, "control", "not-asked"),
    ]
    (entry,) = control_gaps(records, ["m"], ["en"])
    assert entry["pairs"] == 2
    assert (entry["china"]["k"], entry["china"]["n"]) == (3, 4)
    assert (entry["control"]["k"], entry["control"]["n"]) == (1, 4)
    assert entry["gap"] == 0.5
    # Two pairs are too few to resample: the score interval over the pairs' majority labels
    # (China: tiananmen and taiwan both at least half non-answers; controls: crimea only).
    from statsmodels.stats.proportion import confint_proportions_2indep

    expected = confint_proportions_2indep(2, 2, 1, 2, method="newcomb", compare="diff")
    assert entry["ci"] == [round(float(x), 4) for x in expected]
    assert entry["ci_method"].startswith("clustered by question pair")


def test_control_gap_intervals_resample_pairs_not_answers() -> None:
    # Ten pairs, five samples each, every China question always declined in the first four
    # pairs: fifty answers but ten observations, so wider than the per-answer interval.
    records = []
    for i in range(10):
        label = Label.REFUSAL if i < 4 else Label.SUBSTANTIVE
        records += [_record(f"china-{i}", label, sample=s) for s in range(5)]
        records += [_record(f"ctrl-{i}", Label.SUBSTANTIVE, "control", f"china-{i}", sample=s) for s in range(5)]
    (entry,) = control_gaps(records, ["m"], ["en"])
    naive = difference_interval(Rate(20, 50), Rate(0, 50))
    assert entry["gap"] == 0.4 and entry["ci"][0] <= 0.4 <= entry["ci"][1]
    assert entry["ci"][1] - entry["ci"][0] > naive[1] - naive[0]


def test_no_control_gap_without_controls() -> None:
    assert control_gaps([_record("tiananmen", Label.REFUSAL)], ["m"], ["en"]) == []


def test_holm_matches_the_step_down_by_hand_and_keeps_missing_p_values() -> None:
    from xling.stats import holm

    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1, made monotone: 0.03, 0.06, 0.06 (Bonferroni: 0.12).
    adjusted = holm([0.01, 0.04, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.03) and adjusted[1] == pytest.approx(0.06)
    assert adjusted[3] == pytest.approx(0.06) and math.isnan(adjusted[2])


def test_mcnemar_counts_only_the_discordant_questions() -> None:
    import numpy as np
    from scipy.stats import binomtest

    from xling.stats import mcnemar_exact

    a = np.array([True] * 9 + [False] * 1 + [True] * 5)
    b = np.array([False] * 9 + [True] * 1 + [True] * 5)  # 9 vs 1 discordant, 5 concordant
    assert mcnemar_exact(a, b) == pytest.approx(binomtest(1, 10, 0.5).pvalue)


def test_cluster_intervals_widen_when_samples_of_a_question_agree() -> None:
    from xling.stats import Clustered, cluster_difference, cluster_rate

    # 10 questions x 5 samples, each question all-or-nothing: 50 answers, but 10 observations.
    clustered = Clustered.of([(5, 5)] * 4 + [(0, 5)] * 6)
    low, high = cluster_rate(clustered)
    naive_low, naive_high = Rate(20, 50).ci
    assert low <= 0.4 <= high and (high - low) > (naive_high - naive_low)
    # Paired resampling of identical sides gives no difference at all.
    assert cluster_difference(clustered, clustered, paired=True) == (0.0, 0.0)
    # Nothing to resample: the score interval over questions.
    assert cluster_rate(Clustered.of([(0, 3)] * 5)) == pytest.approx(Rate(0, 5).ci)


def test_rate_text_is_the_rate_and_its_wilson_interval() -> None:
    from xling.stats import Rate, wilson_interval

    low, high = wilson_interval(15, 16)
    assert Rate(15, 16).text() == f"0.94 ({low:.2f}-{high:.2f})" == "0.94 (0.72-0.99)"
    assert Rate(0, 0).text() == "-"


def test_cluster_ranges_are_the_wider_of_the_bootstrap_and_a_t_interval() -> None:
    """With few questions the bootstrap alone is too narrow (benchmarks/intervals.py): the range is
    never narrower than the t interval over questions, nor than the bootstrap's."""
    import numpy as np
    from scipy.stats import t as student_t, ttest_1samp

    from xling.stats import Clustered, bootstrap_difference, bootstrap_rate, cluster_difference, cluster_rate

    a = Clustered.of([(1, 2), (0, 2), (1, 2), (0, 2), (2, 2), (0, 2)])
    b = Clustered.of([(0, 2), (0, 2), (0, 2), (1, 2), (0, 2), (0, 2)])
    rates_a, rates_b = a.k / a.n, b.k / b.n
    t = ttest_1samp(rates_a - rates_b, 0).confidence_interval()
    boot = bootstrap_difference(a, b, paired=True)
    assert cluster_difference(a, b, paired=True) == pytest.approx((min(boot[0], t.low), max(boot[1], t.high)))
    assert t.low < boot[0]  # six questions: here the t interval is the wider
    # independent sides: the two variances add, with the smaller side's degrees of freedom
    half = student_t.ppf(0.975, 5) * np.sqrt(rates_a.var(ddof=1) / 6 + rates_b.var(ddof=1) / 6)
    boot = bootstrap_difference(a, b, paired=False)
    low, high = cluster_difference(a, b, paired=False)
    assert (low, high) == pytest.approx((min(boot[0], a.rate - b.rate - half), max(boot[1], a.rate - b.rate + half)))
    # a rate stays within 0-1
    t = ttest_1samp(rates_b, 0).confidence_interval()
    assert cluster_rate(b) == pytest.approx((min(bootstrap_rate(b)[0], max(t.low, 0)), max(bootstrap_rate(b)[1], t.high)))
    assert cluster_rate(b)[0] == 0.0
