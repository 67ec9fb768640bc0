"""A finished run's re-run reads languages, labels and embeddings back from its store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import xling.compare.embed as embed
import xling.detect.classify as classify
from xling.analysis_cache import CachedEmbedder, cached_classify
from xling.config import CompareConfig
from xling.pipeline import compare
from xling.store import Store

FAKE = dict(translator="fake", embedder_translated="fake", embedder_original="fake")


def test_rerun_builds_no_embedder_and_classifies_nothing(tmp_path, monkeypatch):
    config = CompareConfig(models=("fake/divergent",), samples=1, out=tmp_path / "run", **FAKE)
    first = compare(config)
    calls = {"embedders": 0, "classified": 0}
    real_create, real_classify = embed.create_embedder, classify.classify_many

    def counting_create(name):
        calls["embedders"] += 1
        return real_create(name)

    def counting_classify(texts, langs, *args, **kwargs):
        calls["classified"] += len(texts)
        return real_classify(texts, langs, *args, **kwargs)

    monkeypatch.setattr(embed, "create_embedder", counting_create)
    monkeypatch.setattr(classify, "classify_many", counting_classify)
    again = compare(config)
    assert calls == {"embedders": 0, "classified": 0}
    assert again["records"] == first["records"] and again["flags"] == first["flags"]
    with sqlite3.connect(tmp_path / "run" / "xling.sqlite") as db:
        stages = {row[0] for row in db.execute("SELECT DISTINCT stage FROM analysis")}
    assert f"classify:{classify.signed_classifier_name()}" in stages and "embed:fake-bow" in stages


def test_a_new_stage_name_computes_afresh(tmp_path):
    seen = []

    def labeller(texts, langs, questions):
        seen.extend(texts)
        return real(texts, langs, questions=questions)

    real = classify.classify_many
    with Store(tmp_path / "s.sqlite") as store:
        cached_classify(store, "v1", ["I cannot answer that."], ["en"], ["Q?"], labeller)
        cached_classify(store, "v1", ["I cannot answer that."], ["en"], ["Q?"], labeller)
        assert len(seen) == 1
        again = cached_classify(store, "v2", ["I cannot answer that."], ["en"], ["Q?"], labeller)
        assert len(seen) == 2 and again[0].label.value == "refusal"
        # the same answer to another question is another input: the learned layer reads both
        cached_classify(store, "v2", ["I cannot answer that."], ["en"], ["Another question?"], labeller)
        assert len(seen) == 3
        vectors = CachedEmbedder("fake", store).embed(["a b", "c"])
        assert np.allclose(vectors, embed.FakeEmbedder().embed(["a b", "c"]))
        assert np.allclose(CachedEmbedder("fake", store).embed(["c"]), vectors[1:])


def test_labels_are_committed_a_batch_at_a_time(tmp_path, monkeypatch):
    # A replay of thousands of answers labels for minutes: a kill midway keeps the finished
    # batches, and each one is shown.
    import xling.analysis_cache as analysis_cache

    monkeypatch.setattr(analysis_cache, "CLASSIFY_BATCH", 2)
    texts = [f"I cannot answer question {n}." for n in range(5)]
    calls, heard = [], []

    def labeller(texts, langs, questions):
        calls.append(len(texts))
        if calls == [2, 2]:  # killed while labelling the second batch
            raise KeyboardInterrupt
        return classify.classify_many(texts, langs, questions=questions)

    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            cached_classify(store, "v1", texts, ["en"] * 5, ["Q?"] * 5, labeller)
        calls.clear()
        labels = cached_classify(store, "v1", texts, ["en"] * 5, ["Q?"] * 5, labeller,
                                 lambda done, total: heard.append((done, total)))
    assert calls == [2, 1]  # the first two answers were not labelled again
    assert heard == [(4, 5), (5, 5)] and {label.label.value for label in labels} == {"refusal"}


def test_changed_classifier_rules_change_the_name_and_label_afresh(tmp_path):
    # The combination rules change between releases without a new weights or lexicon version; a run
    # labelled before such a change must not read its old verdicts back, and its signature must
    # not match a run labelled after it.
    source = tmp_path / "detect"
    source.mkdir()
    for module in classify.RULE_MODULES:
        (source / f"{module}.py").write_bytes((Path(classify.__file__).parent / f"{module}.py").read_bytes())
    before = classify.rules_version(source)
    assert before == classify.rules_version() and classify.signed_classifier_name().endswith(f"+rules@{before}")
    with (source / "degenerate.py").open("a") as handle:
        handle.write("\nECHO_SIMILARITY = 0.7\n")
    after = classify.rules_version(source)
    assert after != before
    seen = []

    def labeller(texts, langs, questions):
        seen.extend(texts)
        return classify.classify_many(texts, langs, questions=questions, layers=("lexicon",))

    with Store(tmp_path / "s.sqlite") as store:
        for version in (before, before, after):
            cached_classify(store, f"{classify.CLASSIFIER_NAME}+rules@{version}", ["I cannot answer that."], ["en"],
                            ["Q?"], labeller)
        assert len(seen) == 2


def test_embedding_rows_share_pages_and_an_older_store_still_opens(tmp_path):
    vectors = {f"sentence {i}": np.full(512, i, dtype=np.float32).tobytes() for i in range(1000)}
    with Store(tmp_path / "new.sqlite") as store:
        store.put_analysis("embed:x", vectors.items())
    with sqlite3.connect(tmp_path / "old.sqlite") as db:  # what xling wrote before PAGE_SIZE
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
    with Store(tmp_path / "old.sqlite") as store:
        store.put_analysis("embed:x", vectors.items())
        assert store.get_analysis("embed:x", list(vectors)) == vectors
    sizes = {}
    for name in ("new", "old"):
        with sqlite3.connect(tmp_path / f"{name}.sqlite") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes[name] = [db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count")]
    assert sizes["new"][0] == 16384 and sizes["old"][0] == 4096
    # 2 KiB rows: one a page at 4 KiB, seven at 16 KiB, so the new file is about half the size
    assert sizes["new"][0] * sizes["new"][1] < 0.65 * sizes["old"][0] * sizes["old"][1]
