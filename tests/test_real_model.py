"""End to end on the real bundled model (Qwen2.5-Coder-0.5B-Instruct): 2 questions x 3 languages.

Real generation, real LLM back-translation, real embeddings. A 0.5B model's answers vary, so the
assertions are structural and exact: what must hold whatever the model says.
"""

from __future__ import annotations

import sqlite3

import pytest

from xling.backends.base import GenerationConfig
from xling.backends.bundled import DEFAULT, BundledModelMissing, gguf_path
from xling.config import CompareConfig
from xling.pipeline import compare

pytestmark = pytest.mark.slow
IDS = ("tiananmen-1989", "taiwan-status-loaded")


@pytest.fixture(scope="module")
def bundled_model():
    try:
        return gguf_path()
    except BundledModelMissing as err:
        pytest.skip(str(err))


def test_bundled_model_is_the_published_file(bundled_model):
    assert bundled_model.stat().st_size == DEFAULT.size
    assert (bundled_model.with_suffix(".sha256")).read_text().strip() == DEFAULT.sha256


def test_compare_end_to_end_on_the_real_model(bundled_model, tmp_path):
    config = CompareConfig(ids=IDS, samples=1, generation=GenerationConfig(max_new_tokens=48),
                           out=tmp_path / "run")
    report = compare(config)
    records = report["records"]
    assert sorted((r["prompt_id"], r["lang"]) for r in records) == sorted((i, l) for i in IDS for l in ("zh", "en", "ja"))
    assert all(r["text"].strip() for r in records), "the model answered every question"
    assert DEFAULT.sha256[:12] in report["signature"]
    for record in records:
        if record["answer_lang"] == "en":
            assert record["back_translation"] == record["text"]  # English is never re-translated
        elif record["answer_lang"] in ("zh", "ja"):
            assert record["back_translation"].strip() and record["back_translation"] != record["text"]
        assert record["label"] in {"substantive", "refusal", "evasion", "official_line", "uncertain"}
    for lang in ("zh", "ja"):
        assert 0 <= report["translation_quality"][lang]["chrf"] <= 100
    assert len(report["comparisons"]) == len(IDS) * 3  # zh-en, zh-ja, en-ja per question
    for name in ("report.json", "report.zh.md", "report.en.md", "report.ja.md", "index.html"):
        assert (tmp_path / "run" / name).stat().st_size > 0

    # The same command again generates nothing: every stored answer keeps its creation time.
    db = tmp_path / "run" / "xling.sqlite"
    before = sqlite3.connect(db).execute("SELECT key, created FROM generations ORDER BY key").fetchall()
    again = compare(config)
    after = sqlite3.connect(db).execute("SELECT key, created FROM generations ORDER BY key").fetchall()
    assert before == after and len(after) == 6
    assert [r["text"] for r in again["records"]] == [r["text"] for r in records]
