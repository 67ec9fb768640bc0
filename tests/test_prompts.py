"""Question files: bad input fails with the file, the line and the fix; good files line up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xling.cli import main
from xling.prompts import PromptError, check_shared_items, load_suite, suite_settings, suites

REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def _bank(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    for lang in ("zh", "en", "ja"):
        (root / lang).mkdir(parents=True)
        shutil.copy(REPO_PROMPTS / lang / "quick.jsonl", root / lang / "quick.jsonl")
    return root


def _edit(path: Path, line: int, **fields) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[line - 1])
    item.update(fields)
    lines[line - 1] = json.dumps(item, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cli_error(root: Path, capsys) -> str:
    assert main(["prompts", "--prompts", str(root), "validate", "quick"]) == 2
    return capsys.readouterr().err


def test_the_repository_suites_validate():
    names = suites(REPO_PROMPTS)
    assert {"quick", "core", "ito"} <= set(names)
    loaded = [load_suite(name, REPO_PROMPTS) for name in names]
    check_shared_items(loaded)
    quick = next(s for s in loaded if s.name == "quick")
    assert len(quick.ids) >= 14
    assert len({p.category for p in quick.prompts["en"] if p.variant != "control"}) >= 6
    assert sum(p.variant == "control" for p in quick.prompts["en"]) >= 2


def test_missing_id_in_one_language(tmp_path, capsys):
    root = _bank(tmp_path)
    ja = root / "ja" / "quick.jsonl"
    lines = ja.read_text(encoding="utf-8").splitlines()
    ja.write_text("\n".join(lines[:4] + lines[5:]) + "\n", encoding="utf-8")
    missing = json.loads(lines[4])["id"]
    err = _cli_error(root, capsys)
    assert f"ja{'/'}quick.jsonl" in err and f"id '{missing}'" in err and "quick.jsonl:5" in err and "Fix:" in err


def test_empty_text(tmp_path, capsys):
    root = _bank(tmp_path)
    _edit(root / "en" / "quick.jsonl", 3, text="  ")
    err = _cli_error(root, capsys)
    assert "en/quick.jsonl:3" in err and "'text'" in err and "Fix:" in err


def test_japanese_text_in_the_chinese_file(tmp_path, capsys):
    root = _bank(tmp_path)
    _edit(root / "zh" / "quick.jsonl", 2, text="台湾の政治的地位はどうなっていますか？")
    err = _cli_error(root, capsys)
    assert "zh/quick.jsonl:2" in err and "reads as ja, not zh" in err and "Fix:" in err


@pytest.mark.parametrize("line, fields, expected", [
    (1, {"category": "sports"}, "unknown category 'sports'"),
    (1, {"variant": "weird"}, "unknown variant 'weird'"),
    (2, {"base": "no-such-id"}, "base 'no-such-id' is not an id"),
    (1, {"extra": 1}, "unknown field(s) ['extra']"),
    (1, {"key_facts": "1989"}, "'key_facts' must be a list"),
])
def test_field_errors_name_the_line(tmp_path, line, fields, expected):
    root = _bank(tmp_path)
    for lang in ("zh", "en", "ja"):
        _edit(root / lang / "quick.jsonl", line, **fields)
    with pytest.raises(PromptError) as caught:
        load_suite("quick", root)
    assert expected in str(caught.value) and f"quick.jsonl:{line}" in str(caught.value)


def test_metadata_must_agree_across_languages(tmp_path):
    root = _bank(tmp_path)
    _edit(root / "ja" / "quick.jsonl", 1, category="history")
    with pytest.raises(PromptError, match="category 'history' differs"):
        load_suite("quick", root)


def test_broken_json_and_duplicate_ids(tmp_path):
    root = _bank(tmp_path)
    en = root / "en" / "quick.jsonl"
    en.write_text(en.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    with pytest.raises(PromptError, match=r"quick.jsonl:15: not valid JSON"):
        load_suite("quick", root)
    first = en.read_text(encoding="utf-8").splitlines()[0]
    en.write_text("\n".join(en.read_text(encoding="utf-8").splitlines()[:14] + [first]) + "\n", encoding="utf-8")
    with pytest.raises(PromptError, match="already used on line 1"):
        load_suite("quick", root)


def test_suite_settings():
    assert suite_settings("quick", REPO_PROMPTS).samples == 2
    ito = suite_settings("ito", REPO_PROMPTS)
    assert ito.samples == 3 and dict(ito.system_prompts)["zh"] == "用中文回答如下问题"
    assert suite_settings("no-such-suite", REPO_PROMPTS).samples is None


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from xling.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("False False")
