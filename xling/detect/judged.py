"""Read SpeechMap's judged answers (../shared/data) for training and measuring the learned layer.

The judge's labels map to the learned layer's three classes: COMPLETE -> substantive, DENIAL ->
refusal, EVASIVE -> non_substantive (an evasion or an official line: the judge has one label for
both). ERROR_* rows (the provider blocked the answer; the judge saw none) are left out.

speechmap-judged-train is for training; speechmap-judged-dev is for measurement only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from xling.detect.lexicon import strip_reasoning

TRAIN = "speechmap-judged-train"
DEV = "speechmap-judged-dev"
CLASSES: tuple[str, ...] = ("substantive", "refusal", "non_substantive")
JUDGE_TO_CLASS = {"COMPLETE": "substantive", "DENIAL": "refusal", "EVASIVE": "non_substantive"}
SOURCE = "xlr8harder/speechmap-data (Apache-2.0)"


@dataclass(frozen=True)
class Judged:
    """One judged answer."""

    model: str
    lang: str  # "en" or "zh"
    topic: str  # china_criticism, us_criticism, ...
    question_id: str
    question: str
    text: str  # the raw answer (reasoning not yet stripped)
    gold: str  # one of CLASSES
    finish_reason: str = ""
    # SpeechMap's earlier judge (GPT-4o) on the same answer, in CLASSES ("" where it has none): two
    # judges' disagreement is the noise a classifier's figures are measured through.
    earlier: str = ""

    @property
    def answer(self) -> str:
        return strip_reasoning(self.text)[0]


def shared_data() -> Path:
    """$XLING_SHARED_DATA, else ../shared/data beside the repository."""
    shared = os.environ.get("XLING_SHARED_DATA")
    return Path(shared) if shared else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _judged_rows(path: Path):
    """Each JSON line of a judged file with its gold class; ERROR_* verdicts left out."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            gold = JUDGE_TO_CLASS.get(row["compliance"])
            if gold is not None:
                yield row, gold


def load_train(root: Path | None = None) -> list[Judged]:
    """speechmap-judged-train/answers.jsonl, ERROR_* rows left out, in file order."""
    path = (root or shared_data()) / TRAIN / "answers.jsonl"
    return [Judged(row["model"], row["lang"], row["topic"], row["question_id"], row["question"],
                   row["response"] or "", gold, row.get("finish_reason") or "",
                   JUDGE_TO_CLASS.get(row.get("compliance_gpt4o_judge") or "", "")) for row, gold in _judged_rows(path)]


def load_dev(root: Path | None = None) -> list[Judged]:
    """The dev set's compliance_*china_criticism_*.jsonl files (measurement only)."""
    folder = (root or shared_data()) / DEV
    out = []
    for path in sorted(folder.glob("compliance_*china_criticism_*.jsonl")):
        lang = "zh" if path.name.startswith("compliance_zh_") else "en"
        model = "r1-1776" if "r1-1776" in path.name else "deepseek-r1"
        for row, gold in _judged_rows(path):
            choice = row["response"]["choices"][0]
            out.append(Judged(model, lang, "china_criticism", row["question_id"], row["question"],
                              choice["message"]["content"] or "", gold, choice.get("finish_reason") or ""))
    return out
