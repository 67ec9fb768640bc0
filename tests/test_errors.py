"""The hostile inputs of issue 12, one row each: exit code, one line, no traceback, file:line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from xling.cli import main

REPO = Path(__file__).resolve().parent.parent
FAKE = ["--translator", "fake", "--embedder-translated", "fake", "--embedder-original", "fake"]
GOOD_ROW = {"model": "m1", "prompt_id": "q1", "lang": "en", "prompt": "What happened at Tiananmen Square in 1989?",
            "response": "The army cleared the square on June 4."}
ZH_ROW = {"model": "m1", "prompt_id": "q1", "lang": "zh", "prompt": "1989年天安门广场发生了什么？",
          "response": "对不起，我无法回答这个问题。"}


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text, text
    return code, captured.err


def _compare(capsys, tmp_path, *extra, model="fake/echo"):
    return _run(capsys, "compare", "--model", model, "--samples", "1", *FAKE, "--out", tmp_path / "run", *extra)


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("xling: error:")]
    assert len(lines) == 1, err
    assert "Fix:" in lines[0], lines[0]
    return lines[0]


def _bank(tmp_path, file_for=lambda lang, source: source) -> Path:
    """A copy of the quick suite whose files ``file_for`` may replace."""
    root = tmp_path / "bank"
    for lang in ("zh", "en", "ja"):
        (root / lang).mkdir(parents=True)
        shutil.copy(REPO / "prompts" / lang / "quick.jsonl", root / lang / "quick.jsonl")
    return root


# Rows of the table whose whole check is: exit 2 before anything runs, one line naming it.
@pytest.mark.parametrize("extra, expected", [
    (["--suite", "../etc/passwd"], "suite name '../etc/passwd' is not a plain name"),
    (["-M", "nosuchopt=1"], "-M nosuchopt: no such option for fake models"),
    (["-M", "foo"], "-M 'foo' is not KEY=VALUE"),
    (["-M", "batch_size=abc"], "-M batch_size='abc' is not a whole number"),
    (["-M", "batch_size=0"], "batch_size must be at least 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens 0 is below 1"),
    (["--temperature", "-1"], "--temperature -1.0 is not a number >= 0"),
    (["--top-p", "1.5"], "--top-p 1.5 is not in (0, 1]"),
    (["--samples", "0"], "--samples 0 is below 1"),
    (["--translator", "bogus"], "--translator bogus: no such translator"),
    (["--embedder-translated", "bogus"], "--embedder-translated bogus: no such embedder"),
    (["--judge", "nosuch/x"], "unknown provider 'nosuch'"),
    (["--suite", "nosuch"], "no suite 'nosuch'"),
    (["--id", "nosuch"], "--id nosuch not in suite 'quick'"),
    (["--system", "cn=用中文回答"], "'cn' is not a language xling asks in"),
    # A judge or translator on a server with no base URL: found before the answers, not after them.
    # The fake model is on no server, so -M base_url would not reach them: the fix says so.
    (["--judge", "openai-api/nourl/m"], "no base URL for the server 'nourl'. Fix: set NOURL_BASE_URL"),
    (["--translator", "llm:openai-api/nourl/m"], "(-M base_url is the compared models' server, not this one)"),
])
def test_bad_options_fail_before_any_model_runs(capsys, tmp_path, extra, expected):
    # delay=30: had any answer been generated first, the test would take minutes.
    start = time.monotonic()
    code, err = _compare(capsys, tmp_path, "-M", "delay=30", *extra)
    assert code == 2
    assert expected in _error_line(err)
    assert time.monotonic() - start < 20
    assert not (tmp_path / "run").exists()  # no empty run directory left behind
    assert "run directory" not in err  # nor announced before the mistake was found


def test_suite_path_reads_and_writes_nothing_outside(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, "compare", "--model", "fake/echo", *FAKE, "--suite", "../etc/passwd")
    assert code == 2 and "not a plain name" in _error_line(err)
    assert not any(tmp_path.iterdir())


def test_prompt_file_that_is_a_directory(capsys, tmp_path):
    root = _bank(tmp_path)
    (root / "en" / "quick.jsonl").unlink()
    (root / "en" / "quick.jsonl").mkdir()
    code, err = _compare(capsys, tmp_path, "--prompts", root)
    assert code == 2
    assert f"{root / 'en' / 'quick.jsonl'}: is a directory" in _error_line(err)


def test_out_is_a_file(capsys, tmp_path):
    (tmp_path / "run").write_text("x")
    code, err = _compare(capsys, tmp_path)
    assert code == 2 and "is a file, not a folder" in _error_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = _run(capsys, "compare", "--model", "fake/echo", *FAKE, "--out", locked / "run")
    finally:
        locked.chmod(0o700)
    assert code == 2 and "cannot be written" in _error_line(err)


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux's /sys, where nobody can make a folder")
def test_out_where_even_root_cannot_write(capsys):
    # The read-only-folder test above skips as root (CI runs as root); /sys refuses mkdir to root too.
    code, err = _run(capsys, "compare", "--model", "fake/echo", *FAKE, "--out", "/sys/xling-run")
    assert code == 2 and "run directory /sys/xling-run cannot be written" in _error_line(err)
    assert "Traceback" not in err


def test_missing_hub_model_offline_is_refused_fast(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.monotonic()
    code, err = _compare(capsys, tmp_path, model="hf/does/not/exist")
    assert code == 2 and "hf/does/not/exist" in _error_line(err)
    code, err = _compare(capsys, tmp_path, model="hf/Org/Name")
    assert code == 2 and "HF_HUB_OFFLINE" in _error_line(err)
    assert time.monotonic() - start < 5


def _finished_run(capsys, tmp_path) -> Path:
    code, _ = _compare(capsys, tmp_path)
    assert code == 0
    return tmp_path / "run"


def test_truncated_report_is_rebuilt_from_the_store(capsys, tmp_path):
    run = _finished_run(capsys, tmp_path)
    whole = json.loads((run / "report.json").read_text())
    text = (run / "report.json").read_text()
    (run / "report.json").write_text(text[: len(text) // 2])
    code, err = _run(capsys, "report", run)
    assert code == 0
    assert f"{run / 'report.json'}:" in err and "Rebuilding it from" in err
    rebuilt = json.loads((run / "report.json").read_text())
    assert rebuilt["records"] == whole["records"] and rebuilt["flags"] == whole["flags"]


def test_wrong_shape_report_without_settings_says_how(capsys, tmp_path):
    run = _finished_run(capsys, tmp_path)
    (run / "report.json").write_text("[1, 2]")
    (run / "run.json").unlink()
    code, err = _run(capsys, "report", run)
    assert code == 2
    line = _error_line(err)
    assert "holds a JSON list" in line and f"--out {run}" in line


def _replay(tmp_path, lines: list[bytes]) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_line_not_utf8_is_named_and_the_rest_analysed(capsys, tmp_path):
    path = _replay(tmp_path, [json.dumps(GOOD_ROW).encode(), b'{"model": "m1", "prompt": "\xff"}',
                              json.dumps(ZH_ROW, ensure_ascii=False).encode()])
    code, err = _compare(capsys, tmp_path, model=f"replay/{path}")
    assert code == 0
    assert f"{path}:2: not UTF-8" in err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(report["records"]) == 2 and any(f"{path}:2" in p for p in report["input_problems"])


def test_replay_malformed_lines_are_on_the_terminal(capsys, tmp_path):
    path = _replay(tmp_path, [json.dumps(GOOD_ROW).encode(), b'{"model": "m1", "prompt_id": ',
                              b'{"model": "m1", "prompt_id": "q3", "lang": "en", "prompt": "x"}',
                              json.dumps(ZH_ROW, ensure_ascii=False).encode()])
    code, err = _compare(capsys, tmp_path, model=f"replay/{path}")
    assert code == 0
    assert f"{path}:2: not valid JSON" in err and f"{path}:3: missing or non-string response" in err


@pytest.mark.parametrize("extra, expected", [
    (["--id", "q9"], "--id q9: no replayed answer to it. Fix: use one the files hold (q1)"),
    (["--lang", "ja"], "--lang ja: no replayed answer to it. Fix: use one the files hold (en, zh)"),
    (["--suite", "nosuch"], "--suite nosuch: no such suite"),
])
def test_replay_selection_that_matches_nothing_is_refused(capsys, tmp_path, extra, expected):
    # Else the run ends with an empty report and no word why.
    path = _replay(tmp_path, [json.dumps(GOOD_ROW).encode(), json.dumps(ZH_ROW, ensure_ascii=False).encode()])
    code, err = _compare(capsys, tmp_path, *extra, model=f"replay/{path}")
    assert code == 2 and expected in _error_line(err)
    assert not (tmp_path / "run").exists()


def test_replay_selection_is_checked_against_the_model_the_address_picks(capsys, tmp_path):
    other = {**GOOD_ROW, "model": "m2", "prompt_id": "q2"}
    path = _replay(tmp_path, [json.dumps(GOOD_ROW).encode(), json.dumps(other).encode()])
    code, err = _compare(capsys, tmp_path, "--id", "q2", model=f"replay/{path}#m1")  # only m2 answered q2
    assert code == 2 and "--id q2: no replayed answer to it. Fix: use one the files hold (q1)" in _error_line(err)


def test_a_negative_top_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["report", str(tmp_path), "--top", "-1"])
    assert stop.value.code == 2 and "'-1' is not a count" in capsys.readouterr().err


@pytest.mark.parametrize("lines, expected", [([b""], "the file is empty"), ([b"{bad", b"[1]"], "2 bad lines")])
def test_replay_empty_or_all_bad(capsys, tmp_path, lines, expected):
    path = _replay(tmp_path, lines)
    code, err = _compare(capsys, tmp_path, model=f"replay/{path}")
    assert code == 2
    line = _error_line(err)
    assert f"no usable answers in {path}" in line and expected in line


def test_prompt_file_with_a_bom_is_accepted(capsys, tmp_path):
    root = _bank(tmp_path)
    for lang in ("zh", "en", "ja"):
        file = root / lang / "quick.jsonl"
        file.write_bytes(b"\xef\xbb\xbf" + file.read_bytes())
    code, err = _run(capsys, "prompts", "--prompts", root, "validate", "quick")
    assert code == 0, err


def test_very_long_question_warns_with_file_and_line(capsys, tmp_path):
    root = _bank(tmp_path)
    file = root / "en" / "quick.jsonl"
    lines = file.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[0])
    item["text"] = item["text"] + " Please explain." * 400
    lines[0] = json.dumps(item)
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, err = _run(capsys, "prompts", "--prompts", root, "validate", "quick")
    assert code == 0
    assert f"xling: warning: {file}:1: the question of" in err


def test_disk_full_while_writing_reports_loses_nothing(capsys, tmp_path, monkeypatch):
    run = _finished_run(capsys, tmp_path)
    before = (run / "report.en.md").read_bytes()
    import xling.atomic

    real = xling.atomic.os.replace

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(xling.atomic.os, "replace", full)
    code, err = _compare(capsys, tmp_path, "--seed", "0")
    monkeypatch.setattr(xling.atomic.os, "replace", real)
    assert code == 2 and "the disk is full" in _error_line(err)
    assert (run / "report.en.md").read_bytes() == before  # the old report is whole
    assert not [p for p in run.iterdir() if p.name.endswith(".partial")]
    with sqlite3.connect(run / "xling.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 14 * 3


def test_a_backend_that_dies_says_answers_are_saved(capsys, tmp_path):
    code, err = _compare(capsys, tmp_path, "-M", "fail_after=5", "-M", "batch_size=1")
    assert code == 1
    line = next(line for line in err.splitlines() if line.startswith("xling: internal error"))
    assert "run the same command again to resume" in line and "xling-error.log" in line
    assert "Traceback" in (tmp_path / "run" / "xling-error.log").read_text()
    with sqlite3.connect(tmp_path / "run" / "xling.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 5


def test_help_has_no_double_defaults_and_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    for option in ("--temperature", "--top-p", "--seed", "--top"):
        block = text.split(option, 1)[1].split("\n  -", 1)[0]
        assert len(block.split()) > 3, block


def test_plain_progress_lines_when_not_a_terminal(capsys, tmp_path):
    code, err = _compare(capsys, tmp_path)
    assert code == 0
    assert "generate fake/echo: 42/42" in err
    first = err.splitlines()[0]
    assert first.endswith(str(tmp_path / "run"))


def test_prompt_file_not_utf8_names_the_line(capsys, tmp_path):
    root = _bank(tmp_path)
    file = root / "en" / "quick.jsonl"
    lines = file.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"\"text\": \"", b"\"text\": \"\xff", 1)
    file.write_bytes(b"\n".join(lines))
    code, err = _run(capsys, "prompts", "--prompts", root, "validate", "quick")
    assert code == 2 and f"{file}:3: not UTF-8" in _error_line(err)


def test_database_full_is_the_disk_full_message(capsys, tmp_path, monkeypatch):
    import sqlite3

    import xling.store

    def full(self, rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(xling.store.Store, "put_generations", full)
    code, err = _compare(capsys, tmp_path)
    assert code == 2 and "the disk is full" in _error_line(err)


def test_the_fix_and_the_resume_hint_are_separate_sentences(capsys, tmp_path, monkeypatch):
    import xling.pipeline
    from xling.prompts import PromptError

    assert _compare(capsys, tmp_path)[0] == 0  # a run whose answers the hint can point to

    def gone(*args, **kwargs):  # a mistake found once the run has started, with a fix ending in "]"
        raise PromptError("prompts/<lang>/quick.jsonl", "no suite 'quick'", "choose one of ['core', 'ito']")

    monkeypatch.setattr(xling.pipeline, "load_suite", gone)
    code, err = _compare(capsys, tmp_path)
    line = _error_line(err)
    assert code == 2 and "no suite 'quick'" in line
    assert "]. Finished answers are saved in" in line  # not "...'ito'] Finished answers"


def test_suite_system_prompt_for_an_unknown_language(capsys, tmp_path):
    root = _bank(tmp_path)
    (root / "suites.toml").write_text('[quick]\nsystem = { cn = "用中文回答" }\n', encoding="utf-8")
    code, err = _compare(capsys, tmp_path, "--prompts", root)
    line = _error_line(err)
    assert code == 2 and "suites.toml [quick.system]" in line and "zh, en, ja" in line
    code, err = _run(capsys, "prompts", "--prompts", str(root), "validate")
    assert code == 2 and "suites.toml [quick.system]" in _error_line(err)


def test_reusing_an_out_folder_for_another_run_warns_and_keeps_both_runs_answers(capsys, tmp_path):
    assert _compare(capsys, tmp_path, "--lang", "zh", model="fake/divergent")[0] == 0
    code, err = _compare(capsys, tmp_path, "--lang", "zh")  # fake/echo into the same --out
    assert code == 0
    assert "warning: " in err and "held a run of fake/divergent" in err and "its reports are replaced" in err
    code, err = _compare(capsys, tmp_path, "--lang", "zh")  # the same command again: no warning
    assert code == 0 and "held a run" not in err
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "run" / "xling.sqlite")) as db:
        models = {row[0] for row in db.execute("select model from generations")}
    assert models == {"fake/divergent", "fake/echo"}
