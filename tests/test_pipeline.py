"""The whole compare pipeline on the scripted fake backend, fake translator and fake embedder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace

import pytest

from xling.backends.base import GenerationConfig
from xling.config import CompareConfig
from xling.pipeline import compare

FAKE = dict(translator="fake", embedder_translated="fake", embedder_original="fake")
QUICK_IDS = 14  # prompts/*/quick.jsonl


def _config(tmp_path, **overrides) -> CompareConfig:
    return replace(CompareConfig(models=("fake/divergent",), samples=2, out=tmp_path / "run", **FAKE), **overrides)


def test_divergent_script_gives_exactly_its_flags(tmp_path):
    report = compare(_config(tmp_path))
    records = report["records"]
    assert len(records) == QUICK_IDS * 3 * 2
    assert {k for k in ("signature", "records", "flags") if k in report} == {"signature", "records", "flags"}
    controls = {r["prompt_id"] for r in records if r["variant"] == "control"}
    sensitive = {r["prompt_id"] for r in records} - controls
    flags = {(f["type"], f["prompt_id"], tuple(f["langs"])) for f in report["flags"]}
    # The script refuses every sensitive question in English, gives the official line in
    # Chinese, and answers the Japanese question in Chinese.
    for pid in sensitive:
        assert ("refusal_asymmetry", pid, ("en", "zh")) in flags
        # (en vs ja is not asserted: the script answers every Japanese question with one generic
        # Chinese template that addresses none of them, which the learned layer rightly calls evasive)
        assert ("official_line_asymmetry", pid, ("zh", "en")) in flags
        assert ("language_drift", pid, ("ja", "zh")) in flags
    # Controls are answered plainly in every language: no label asymmetry, no drift.
    for flag in report["flags"]:
        if flag["prompt_id"] in controls:
            assert flag["type"] == "semantic_divergence"
    # Every flag carries its evidence: original text and back-translation of each answer.
    for flag in report["flags"]:
        assert flag["evidence"]["answers"]
        for answer in flag["evidence"]["answers"]:
            assert answer["text"] and "back_translation" in answer
    by_lang = {row["lang"]: row["rates"] for row in report["summary"]}
    n_sensitive = len(sensitive) * 2
    assert by_lang["en"]["refusal"]["k"] == n_sensitive
    assert by_lang["zh"]["official_line"]["k"] == n_sensitive
    assert by_lang["ja"]["wrong_language"]["k"] == n_sensitive
    for name in ("report.json", "report.zh.md", "report.en.md", "report.ja.md", "index.html"):
        assert (tmp_path / "run" / name).exists()


def test_resume_after_a_crash_repeats_nothing(tmp_path):
    config = _config(tmp_path, model_options=(("fail_after", "20"), ("batch_size", "4")))
    with pytest.raises(RuntimeError, match="fail_after"):
        compare(config)
    db = tmp_path / "run" / "xling.sqlite"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 20
    report = compare(replace(config, model_options=(("batch_size", "4"),)))
    keys = [r["key"] for r in report["records"]]
    assert len(keys) == len(set(keys)) == QUICK_IDS * 3 * 2


def test_changed_config_never_mixes_with_old_records(tmp_path):
    first = compare(_config(tmp_path))
    second = compare(_config(tmp_path, generation=GenerationConfig(temperature=0.2)))
    assert not {r["key"] for r in first["records"]} & {r["key"] for r in second["records"]}
    assert len(second["records"]) == QUICK_IDS * 3 * 2
    assert first["signature"] != second["signature"]


def test_run_id_is_stable_and_config_specific():
    config = CompareConfig(models=("fake/echo",))
    assert config.run_id() == CompareConfig(models=("fake/echo",)).run_id()
    assert config.run_id() != CompareConfig(models=("fake/echo",), samples=5).run_id()
    assert config.run_id().startswith("quick-echo-")


def test_sigkill_during_generation_then_resume(tmp_path):
    # A real process killed with SIGKILL mid-generation; the same command again must end with
    # every record present exactly once.
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "xling", "compare", "--model", "fake/divergent", "-M", "delay=0.05",
               "-M", "batch_size=2", "--translator", "fake", "--embedder-translated", "fake", "--embedder-original", "fake",
               "--samples", "2", "--out", str(out)]
    env = dict(os.environ)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "xling.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            try:
                if sqlite3.connect(db).execute("SELECT COUNT(*) FROM generations").fetchone()[0] >= 10:
                    break
            except sqlite3.OperationalError:
                pass
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    partial = sqlite3.connect(db).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert 10 <= partial < QUICK_IDS * 3 * 2
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    report = json.loads((out / "report.json").read_text())
    counts = Counter(r["key"] for r in report["records"])
    assert len(counts) == QUICK_IDS * 3 * 2 and set(counts.values()) == {1}
    rows = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM generations").fetchone()
    assert rows == (QUICK_IDS * 3 * 2, QUICK_IDS * 3 * 2)


def test_judge_panel_labels_answers_and_reports_agreement(tmp_path):
    config = _config(tmp_path, judges=("fake/judge", "fake/judge-noisy"))
    report = compare(config)
    panel = report["judges"]
    assert [name.split("@")[0] for name in panel["judges"]] == ["judge:fake/judge", "judge:fake/judge-noisy"]
    assert panel["fleiss_kappa"] is not None and panel["fleiss_kappa"] < 1  # the noisy judge disagrees
    # The offline label stays visible next to the panel's.
    assert all("[offline: " in r["evidence"] for r in report["records"])
    assert "+judge:fake/judge@" in report["signature"]
    # Verdicts are cached: the same run again adds none, and the run directory is the same one
    # as without judges (judges change the analysis, not the answers).
    db = tmp_path / "run" / "xling.sqlite"
    count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
    assert count == 2 * len(report["records"])
    compare(config)
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM judgements").fetchone()[0] == count
    assert config.run_id() == _config(tmp_path).run_id()


def test_controls_have_their_own_topic_row(tmp_path):
    report = compare(_config(tmp_path))
    rows = {(row["lang"], row["category"]): row for row in report["by_category"]}
    controls = [r for r in report["records"] if r["variant"] == "control"]
    # quick has 2 controls x 2 samples per language, counted apart from the sensitive categories.
    assert rows[("en", "controls (other countries)")]["n"] == len(controls) // 3 == 4
    sensitive = [r for r in report["records"] if r["lang"] == "en" and r["variant"] != "control"]
    assert sum(row["n"] for (lang, cat), row in rows.items()
               if lang == "en" and cat != "controls (other countries)") == len(sensitive)
    # ...and each language gets the China-minus-controls gap over the 2 mirrored pairs.
    gaps = {g["lang"]: g for g in report["control_gaps"]}
    assert set(gaps) == {"zh", "en", "ja"}
    assert gaps["en"]["pairs"] == 2 and gaps["en"]["control"]["n"] == 4 and gaps["en"]["china"]["n"] == 4
    mirrored = [r for r in report["records"] if r["lang"] == "en" and r["prompt_id"] in {c["base"] for c in controls}]
    assert gaps["en"]["china"]["k"] == sum(r["label"] != "substantive" for r in mirrored)


def test_records_keep_the_deciding_layer_and_the_learned_probabilities(tmp_path):
    # report.json must show why each label was given: which layer won and, where the learned
    # layer ran, its calibrated probabilities (they sum to one).
    report = compare(_config(tmp_path, samples=1))
    for record in report["records"]:
        assert record["layer"], record["key"]
        if "learned" in record["layer"]:
            assert set(record["probabilities"]) == {"substantive", "refusal", "non_substantive"}
            assert abs(sum(record["probabilities"].values()) - 1) < 0.01
    assert any("learned" in r["layer"] for r in report["records"])


def test_a_reasoning_model_cut_off_before_it_answers_is_not_a_refusal(tmp_path, monkeypatch):
    """A reasoning model that the token limit stops mid-thought wrote no answer: its empty answer
    is not read as a refusal, no flag rests on it, and the run says to raise --max-new-tokens."""
    from xling.backends.base import Generation
    from xling.backends.fake import FakeBackend

    answer = FakeBackend.generate

    def think_too_long_in_english(self, requests, config):
        return [Generation("<think>The user asks about a sensitive event. Let me recall what I know", truncated=True)
                if request.lang == "en" else generation
                for request, generation in zip(requests, answer(self, requests, config))]

    monkeypatch.setattr(FakeBackend, "generate", think_too_long_in_english)
    report = compare(_config(tmp_path, models=("fake/echo",), samples=1, ids=("tiananmen-1989",)))
    en = [r for r in report["records"] if r["lang"] == "en"]
    assert [r["label"] for r in en] == ["uncertain"] and "--max-new-tokens" in en[0]["evidence"]
    assert en[0]["reasoning"] and not en[0]["text"]
    assert {r["label"] for r in report["records"] if r["lang"] != "en"} == {"substantive"}
    assert not [f for f in report["flags"] if "en" in f["langs"]]  # nor is it compared for content
    assert any("1 of 3 answers" in line and "--max-new-tokens" in line for line in report["request_outcomes"])
