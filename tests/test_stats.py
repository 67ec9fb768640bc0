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
    assert entry["ci"] == [round(x, 4) for x in difference_interval(Rate(3, 4), Rate(1, 4))]


def test_no_control_gap_without_controls() -> None:
    assert control_gaps([_record("tiananmen", Label.REFUSAL)], ["m"], ["en"]) == []
