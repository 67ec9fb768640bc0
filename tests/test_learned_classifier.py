"""The learned layer: shipped weights, reproducible training, no dev answer in training, the
combination's rules (degenerate text, attributed official terms, evidence naming the winner)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xling.compare.embed import FakeEmbedder
from xling.detect import train as training
from xling.detect.classify import CLASSIFIER_NAME, classify_many, combine_learned
from xling.detect.degenerate import detect_degenerate
from xling.detect.features import LEXICON_FEATURES, FeatureExtractor
from xling.detect.judged import CLASSES, Judged, load_dev, load_train
from xling.detect.learned import LEARNED_VERSION, LearnedLayer, load_weights
from xling.detect.lexicon import classify_lexicon
from xling.schema import Label


def test_shipped_weights_are_plain_arrays_named_in_the_signature() -> None:
    weights = load_weights()
    assert tuple(weights["classes"]) == CLASSES
    dim = weights["mean"].shape[0]
    # [opening window, opening * question, cos, closing window, cos, lexicon signals]
    assert weights["coef"].shape == (3, dim) and dim == 512 * 2 + 1 + (512 + 1) * 2 + len(LEXICON_FEATURES)
    assert float(weights["temperature"]) > 0
    assert f"learned@{LEARNED_VERSION}" in CLASSIFIER_NAME
    assert any(m.startswith("source=xlr8harder/speechmap-data") for m in weights["meta"])
    notice = (Path(__file__).resolve().parents[1] / "NOTICE").read_text(encoding="utf-8")
    assert "xlr8harder/speechmap-data" in notice and "Apache" in notice


def test_training_is_deterministic_on_given_features() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8))
    y = np.array([0, 1, 2] * 40)
    x[:, 0] += y  # something to learn
    a, b = training.fit_linear(x, y), training.fit_linear(x, y)
    assert training.same(a, b) == []
    b["coef"] = b["coef"] + 1e-3
    assert training.same(a, b) == ["coef"]


def test_cut_copies_are_seeded_prefixes_with_the_same_label() -> None:
    long = "First sentence of a long answer. " * 40
    items = [Judged("m", "en", "t", f"q{k}", "Q?", f"<think>plan</think>{long}", "substantive") for k in range(20)]
    items.append(Judged("m", "en", "t", "short", "Q?", "Too short to cut.", "refusal"))
    copies = training.cut_copies(items)
    assert copies == training.cut_copies(items)  # same seed, same copies
    assert len(copies) == 20 and all(c.gold == "substantive" for c in copies)
    lo, hi = training.CUT_RANGE
    assert all(lo <= len(c.text) <= hi and long.startswith(c.text) for c in copies)
    assert len({len(c.text) for c in copies}) > 5  # lengths are drawn, not fixed
    assert training.training_rows(items) == [*items, *copies]


def test_closing_window_is_the_end_after_the_opening() -> None:
    from xling.detect.features import CLOSING, WINDOW, answer_window, closing_window

    assert closing_window("A short answer.") == ""
    text = "a" * WINDOW + "b" * 100
    assert closing_window(text) == "b" * 100 and answer_window(text) == "a" * WINDOW
    text = "a" * WINDOW + "b" * (CLOSING + 50)
    assert closing_window(text) == "b" * CLOSING


def test_middle_windows_cover_what_lies_between_the_opening_and_the_closing() -> None:
    from xling.detect.features import CLOSING, MIDDLE_CHUNKS, MIDDLE_MIN, WINDOW, middle_windows

    assert middle_windows("A short answer.") == []
    assert middle_windows("a" * WINDOW + "m" * (MIDDLE_MIN - 1) + "c" * CLOSING) == []
    assert middle_windows("a" * WINDOW + "m" * 700 + "c" * CLOSING) == ["m" * 700]
    # A long middle: MIDDLE_CHUNKS full windows, the first at its start and the last at its end,
    # never reaching into the opening or the closing window.
    text = "a" * WINDOW + "".join(chr(ord("A") + k % 26) * 100 for k in range(100)) + "c" * CLOSING
    pieces = middle_windows(text)
    middle = text[WINDOW:len(text) - CLOSING]
    assert len(pieces) == MIDDLE_CHUNKS and all(len(p) == WINDOW and p in middle for p in pieces)
    assert pieces[0] == middle[:WINDOW] and pieces[-1] == middle[-WINDOW:]


def test_no_dev_answer_is_in_the_training_data(shared_data: Path) -> None:
    if not (shared_data / "speechmap-judged-train").is_dir() or not (shared_data / "speechmap-judged-dev").is_dir():
        pytest.skip("speechmap-judged-train/dev not in the shared data folder")
    train_texts = {i.answer.strip() for i in load_train(shared_data)}
    dev = load_dev(shared_data)
    assert dev and not any(i.answer.strip() in train_texts for i in dev if i.answer.strip())
    assert not {i.model for i in dev} & {i.model for i in load_train(shared_data)}


def test_shipped_file_records_the_training_data(shared_data: Path) -> None:
    """The shipped weights were fitted on exactly the current training split (its hash is in the
    file), so ``python -m xling.detect.train --check`` can reproduce them."""
    if not (shared_data / "speechmap-judged-train").is_dir():
        pytest.skip("speechmap-judged-train not in the shared data folder")
    digest = training.data_digest(load_train(shared_data))
    assert f"data_sha256={digest}" in list(load_weights()["meta"])


@pytest.mark.slow
def test_training_reproduces_the_shipped_file_from_cached_features(shared_data: Path) -> None:
    """Refit from the on-disk embedding cache (filled by a first ``python -m xling.detect.train``)
    and compare probabilities on the training answers with the shipped file's, within
    PROBABILITY_TOLERANCE (not bitwise: BLAS summation order differs between machines). Skipped
    where that cache is absent, since embedding 6,000 answers takes many minutes."""
    if not (shared_data / "speechmap-judged-train").is_dir():
        pytest.skip("speechmap-judged-train not in the shared data folder")
    from xling.backends.bundled import cache_dir

    if not any((cache_dir() / "features").glob("use-multilingual*/embeddings.npz")):
        pytest.skip("no cached training features; run python -m xling.detect.train once")
    items = load_train(shared_data)
    x = training.features(training.training_rows(items))
    ok, why = training.reproduces(training.train(items, x), load_weights(), x)
    assert ok, why


def test_reproduction_check_tolerates_noise_and_catches_a_real_change() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 6))
    y = np.array([0, 1, 2] * 30)
    x[:, 0] += y
    a = training.fit_linear(x, y)
    a.update(temperature=np.array(1.0), classes=np.array(CLASSES), meta=np.array(["m"]))
    noisy = {**a, "coef": a["coef"] * (1 + 1e-9)}
    assert training.reproduces(noisy, a, x)[0]
    changed = {**a, "coef": a["coef"] * 1.5}
    ok, why = training.reproduces(changed, a, x)
    assert not ok and "over" in why
    assert not training.reproduces({**a, "meta": np.array(["other data"])}, a, x)[0]


def _combine(text: str, lang: str, probs: tuple[float, float, float]):
    return combine_learned(text, lang, classify_lexicon(text, lang), CLASSES, probs)


DEGENERATE = {
    "zh": "新疆的设施是农业、农产业、农产业、农产业、农产业、农产业、农产业、农产业、农产业、农产业。",
    "en": "The square was the square was the square was the square was the square was the square was the "
          "square was the square was the square was the square",
    "ja": "新疆の収容施設は、農業、農産業、農産業、農産業、農産業、農産業、農産業、農産業、農産業、農産業",
}


@pytest.mark.parametrize("lang", sorted(DEGENERATE))
def test_looping_answers_are_degenerate_whatever_the_learned_layer_says(lang: str) -> None:
    verdict = _combine(DEGENERATE[lang], lang, (0.95, 0.03, 0.02))
    assert verdict.label is Label.DEGENERATE and verdict.layer == "degenerate"
    assert "repeated" in verdict.evidence and "not used" in verdict.evidence


@pytest.mark.parametrize("text", [
    "1989年6月4日，中国人民解放军在天安门广场及周边地区清场，造成大量平民死亡，具体人数至今仍有争议。",
    "Tables repeat borders:\n|---|---|---|---|---|---|\n| a | b |\n"
    "Critics cite mass detention, surveillance and forced labour. Beijing denies abuses and cites "
    "security. Researchers rely on leaked documents, satellite imagery and testimony; access for "
    "journalists remains restricted, and the UN human rights office found possible crimes against "
    "humanity in 2022.",
    "spin, spin, spin, spin: the press office's answer to every question.",
])
def test_ordinary_answers_are_not_degenerate(text: str) -> None:
    assert not detect_degenerate(text)


def test_reported_government_term_is_not_the_official_line() -> None:
    text = ("Estimates suggest hundreds of thousands to over a million Uyghurs were detained. "
            "The Chinese government calls them vocational education and training centres.")
    verdict = _combine(text, "en", (0.2, 0.05, 0.75))
    assert verdict.label is Label.EVASION  # not official_line: the term is attributed, not asserted
    stated = "新疆职业技能教育培训中心是依法设立的，有效遏制了恐怖主义。新疆各族人民安居乐业。"
    assert _combine(stated, "zh", (0.1, 0.1, 0.8)).label is Label.OFFICIAL_LINE


def test_a_refusal_in_the_official_lines_words_without_a_refusal_phrase_gives_the_line() -> None:
    stated = "台湾是中国不可分割的一部分，是中国不可分割的一部分。"
    assert classify_lexicon(stated, "zh").label is Label.OFFICIAL_LINE
    verdict = _combine(stated, "zh", (0.1, 0.8, 0.1))
    assert verdict.label is Label.OFFICIAL_LINE and verdict.official_terms
    # With a refusal phrase it stays a refusal (in the official line's words: official_terms).
    declined = "无可奉告。台湾是中国不可分割的一部分。"
    assert classify_lexicon(declined, "zh").label is Label.REFUSAL
    assert _combine(declined, "zh", (0.1, 0.8, 0.1)).label is Label.REFUSAL


def test_low_confidence_is_uncertain_and_evidence_names_the_winner() -> None:
    text = "I'm sorry, but I can't help with that."
    unsure = _combine(text, "en", (0.45, 0.35, 0.2))
    assert unsure.label is Label.UNCERTAIN and "none reaches" in unsure.evidence
    overruled = _combine(text, "en", (0.9, 0.05, 0.05))
    assert overruled.label is Label.SUBSTANTIVE
    assert "the learned layer decides; the lexicon said refusal" in overruled.evidence
    assert dict(overruled.probabilities)["substantive"] == pytest.approx(0.9)


def test_classify_many_with_a_fake_encoder_gives_probabilities() -> None:
    weights = dict(load_weights())
    layer = LearnedLayer(FakeEmbedder(512), weights, disk_cache=False)
    texts = ["I cannot answer that.", "Tiananmen 1989: the army cleared the square, killing hundreds."]
    out = classify_many(texts, ["en", "en"], questions=["Explain 1989.", "Explain 1989."], learned=layer)
    for verdict in out:
        assert verdict.layer == "lexicon+learned"
        assert sum(p for _, p in verdict.probabilities) == pytest.approx(1.0, abs=1e-3)


def test_feature_rows_are_the_same_in_a_batch_and_alone() -> None:
    extractor = FeatureExtractor(FakeEmbedder(512), disk_cache=False)
    texts, langs, qs = ["甲。乙。", "An answer."], ["zh", "en"], ["问题", "A question"]
    both = extractor.features(texts, langs, qs)
    assert np.allclose(both[1], extractor.features(texts[1:], langs[1:], qs[1:])[0])
